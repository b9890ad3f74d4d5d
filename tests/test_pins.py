"""Libraries whose internals we read: pinned exactly, checked at import, and a public fallback that
works when the installed version is another one."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline import pins

REPO = Path(__file__).resolve().parent.parent
WARC = REPO / "sample" / "warc" / "cc-main-2024-22_whirlwind_1page.warc.gz"


def test_every_library_read_by_its_internals_is_pinned_exactly_in_pyproject():
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for package, version in pins.PINNED.items():
        assert f"{package}=={version}" in requirements, package
        assert pins.installed_version(package) == version, package  # the environment tests run in


def test_another_version_warns_and_says_what_is_used_instead(monkeypatch):
    monkeypatch.setitem(pins.PINNED, "warcio", "0.0.1")
    with pytest.warns(RuntimeWarning, match=r"warcio 1\.8\.1 is installed, .* warcio 0\.0\.1: the public path"):
        assert pins.internals_usable("warcio", "the public path") is False
    monkeypatch.undo()
    assert pins.internals_usable("warcio", "the public path") is True


# Run in a fresh interpreter: the checks happen at import.
FALLBACK_RUN = r"""
import json, sys, warnings
from pipeline import pins
if sys.argv[2] == "other":
    pins.PINNED.update(warcio="0.0.1", trafilatura="0.0.1", htmldate="0.0.1")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from pipeline.config import BuildConfig
    from pipeline.extract import Extractor
    from pipeline.readers import expand_inputs, read_unit
cfg = BuildConfig()
records = list(read_unit(expand_inputs([sys.argv[1]])[0], cfg.read))
pages = [Extractor(cfg.extract)(r) for r in records]
print(json.dumps({"warnings": sorted(str(w.message).split()[0] for w in caught if w.category is RuntimeWarning),
                  "pages": [[p.text, p.title, p.date.isoformat() if p.date else None] for p in pages]}))
"""


def run_fallback(versions: str) -> dict:
    out = subprocess.run([sys.executable, "-c", FALLBACK_RUN, str(WARC), versions], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_other_versions_the_public_paths_read_and_extract_the_same_page():
    pinned, other = run_fallback("pinned"), run_fallback("other")
    assert pinned["warnings"] == []
    assert other["warnings"] == ["htmldate", "trafilatura", "warcio"]
    assert len(pinned["pages"]) == 1
    # the public reader, parser, XPaths, full cascade and title give the same page; the date may differ
    # (htmldate's find_date searches more), so it is compared only where both found one
    [(text, title, day)], [(other_text, other_title, other_day)] = pinned["pages"], other["pages"]
    assert (other_text, other_title) == (text, title) and len(text) > 200
    assert day is None or other_day is None or day == other_day
