"""`tokenmill report`: one self-contained HTML page of plots about a dataset version, rendered by a
real browser (headless Chromium, Debian's `chromium`; `make test` installs it where it can)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from flows.build_corpus import build_corpus
from flows.train_after_build import train_after_build
from warehouse.layout import DatasetPaths
from warehouse.read import docs_version

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample"
PLOTS = ("funnel", "rejects", "languages", "quality", "duplicates", "tokens", "loss")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """The gov.uk WARC and the two books of the sample, built, tokenized and trained for a second."""
    root = tmp_path_factory.mktemp("wh")
    inputs = [str(SAMPLE / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"), str(SAMPLE / "html")]
    build_corpus(inputs, warehouse=str(root), dataset="r", progress=False)
    train_after_build(f"{root}/r", max_seconds=1, overrides={"batch_size": 4, "eval_interval": 2, "eval_tokens": 2048,
                                                            "log_interval": 1, "sample_tokens": 0})
    return f"{root}/r"


@pytest.fixture(scope="module")
def report(dataset) -> Path:
    done = subprocess.run([sys.executable, "-m", "flows.cli", "report", dataset], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(done.stdout.strip())
    assert path == Path(dataset) / "reports" / f"docs-v{docs_version(DatasetPaths.parse(dataset))}.html"
    return path


def test_the_report_is_one_file_that_fetches_nothing(report):
    page = report.read_text()
    # Nothing to load at view time: no scripts, stylesheets, images or frames from anywhere.
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"url\((?!#)", page)  # only references inside the page (SVG clip paths)
    for plot in PLOTS:
        assert re.search(rf'<figure id="{plot}">.*?<svg\b.*?</svg>', page, re.S), plot


def test_the_report_of_a_dataset_never_built_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "flows.cli", "report", str(tmp_path / "nothing")], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "has this dataset been built" in done.stderr


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "no `chromium` on PATH (make test installs Debian's package where apt-get can)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI always installs it")
        pytest.skip(message)
    return path


def headless(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", *args], capture_output=True, text=True, timeout=180)


def test_chromium_renders_every_plot(report, tmp_path):
    dom = headless("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    # As the browser parsed it: each figure holds an SVG with drawn marks (bars, lines, text).
    for plot in PLOTS:
        figure = re.search(rf'<figure id="{plot}">(.*?)</figure>', dom.stdout, re.S)
        assert figure, plot
        assert re.search(r"<svg\b", figure.group(1)) and len(re.findall(r"<path\b", figure.group(1))) >= 3, plot

    shot = tmp_path / "report.png"
    done = headless(f"--screenshot={shot}", "--window-size=1200,5000", report.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    # matplotlib's first colour (#1f77b4) fills the funnel, language-less bars and histograms.
    blue = np.all(np.abs(pixels - np.array([0x1F, 0x77, 0xB4]) / 255) < 0.03, axis=-1)
    assert blue.sum() > 20_000, f"only {blue.sum()} pixels of plot colour rendered"
    not_white = np.any(pixels < 0.95, axis=-1)
    assert not_white.mean() > 0.05


def test_the_report_follows_the_latest_training_run(dataset, report):
    page = report.read_text()
    run = max(Path(DatasetPaths.parse(dataset).root, "runs").iterdir())
    assert f"run {run.name}: dataset version {docs_version(DatasetPaths.parse(dataset))}," in page
