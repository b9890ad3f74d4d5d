"""The `tokenmill` command line: clear one-line errors, and the extract command on real pages."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_missing_input_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nope.warc.gz"
    assert str(missing) in error_line(runner.invoke(app, ["build", str(missing), "--warehouse", str(tmp_path)]))


def test_a_bad_config_is_one_line_naming_the_field(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[quality.fineweb]\nline_punct_thr = 'high'\n")
    sample = str(REPO / "sample" / "warc")
    line = error_line(runner.invoke(app, ["build", sample, "--config", str(config), "--warehouse", str(tmp_path)]))
    assert "quality.fineweb.line_punct_thr" in line


def test_stats_of_a_dataset_never_built_says_so(tmp_path):
    assert "has this dataset been built" in error_line(runner.invoke(app, ["stats", str(tmp_path / "nothing")]))


def test_extract_prints_one_json_line_per_page_of_a_real_warc():
    warc = REPO / "sample" / "warc" / "cc-main-2024-22_whirlwind_1page.warc.gz"
    result = runner.invoke(app, ["extract", str(warc)])
    assert result.exit_code == 0, result.output
    pages = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(pages) == 1
    assert pages[0]["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert "Escopete" in pages[0]["title"] and len(pages[0]["text"]) > 200


def test_plan_turns_a_budget_into_a_config():
    result = runner.invoke(app, ["plan", "--flops", "1e18"])
    assert result.exit_code == 0, result.output
    assert "max_tokens:" in result.output and "compute-optimal" in result.output


def test_build_with_no_prefect_api_configured_never_imports_prefect(tmp_path):
    """No temporary API server to start and no Prefect import: the fixed cost of a small build."""
    page = tmp_path / "one.jsonl"
    page.write_text(json.dumps({"text": "A single short record. " * 20}) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(REPO))
    build = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", "build", str(page), "--warehouse", str(tmp_path / "wh")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert "records in" in build.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in build.stderr.splitlines() if line.startswith("import time:")}
    assert "flows.build_steps" in imported
    assert not {name for name in imported if name.split(".")[0] == "prefect"}


# What near dedup of a few documents must not load into the build's process (issue #16: under
# 500 MB per process, under 3 CPU-seconds for a one-page build): scipy and numba (with its llvmlite)
# cost about 1.2 CPU-seconds and 250 MB there, datasketch is how scipy.integrate came in.
HEAVY_FOR_A_SMALL_BUILD = ("scipy", "numba", "llvmlite", "datasketch", "prefect", "torch")


def test_a_small_build_that_keeps_its_page_runs_near_dedup_without_scipy_or_numba(tmp_path):
    """The parent process of `tokenmill build`, whose page is kept so near dedup signs it, imports
    none of the heavy modules and stays under the issue's 500 MB (it peaks near 350 MB)."""
    report = tmp_path / "report.json"
    script = (
        "import atexit, json, sys\n"
        "def report():\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        f"    json.dump({{'modules': sorted(sys.modules), 'hwm_kb': int(status['VmHWM'].split()[0])}}, open({str(report)!r}, 'w'))\n"
        "atexit.register(report)\n"
        "from flows.cli import app\n"
        "app(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(REPO))
    build = subprocess.run(
        [sys.executable, "-c", script, "build", str(REPO / "sample" / "html" / "pg14263_katrine.htm"),
         "--warehouse", str(tmp_path / "wh"), "--workers", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert "1 documents signed of 1" in build.stdout  # kept, and near dedup ran on it
    parent = json.loads(report.read_text())
    assert not [name for name in parent["modules"] if name.split(".")[0] in HEAVY_FOR_A_SMALL_BUILD]
    assert "pipeline.dedup.stage" in parent["modules"]
    assert parent["hwm_kb"] < 500 * 1024


def test_a_prefect_api_in_the_environment_or_the_active_profile_is_found(tmp_path, monkeypatch):
    from flows.settings import prefect_api_configured

    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert not prefect_api_configured()
    (tmp_path / "profiles.toml").write_text(
        'active = "local"\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n[profiles.other]\n'
    )
    assert prefect_api_configured()
    monkeypatch.setenv("PREFECT_PROFILE", "other")
    assert not prefect_api_configured()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api_configured()


def test_a_budget_out_of_range_is_one_line():
    assert "give exactly one budget" in error_line(runner.invoke(app, ["plan"]))


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only TokenmillError becomes a one-line message; a ValueError from a bug is not hidden."""
    import model.plan

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(model.plan, "plan_budget", broken)
    result = runner.invoke(app, ["plan", "--flops", "1e18"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "error:" not in result.output


def test_every_user_error_class_is_a_tokenmill_error():
    from model.config import TrainConfigError
    from model.device import DeviceError
    from pipeline.config import ConfigError
    from pipeline.readers import InputNotFound, UnsupportedInput
    from tokenizer.sources import TokenizeError
    from tokenizer.tokenfile import TokenFileError
    from tokenizer.tokensdir import TokensDirError
    from tokenizer.train import TokenizerTrainingError
    from warehouse.errors import TokenmillError
    from warehouse.read import DatasetNotFound, UnsupportedTable

    for cls in (TrainConfigError, TokensDirError, ConfigError, InputNotFound, UnsupportedInput, TokenizeError,
                TokenFileError, TokenizerTrainingError, DatasetNotFound, UnsupportedTable, DeviceError):
        assert issubclass(cls, TokenmillError), cls


def test_no_prefect_with_dask_asked_for_is_one_line_before_any_input_is_read(tmp_path):
    sample = str(REPO / "sample" / "warc")
    wh = tmp_path / "wh"
    line = error_line(runner.invoke(app, ["build", sample, "--warehouse", str(wh), "--no-prefect"],
                                    env={"TOKENMILL_DASK_ADDRESS": "tcp://127.0.0.1:9"}))
    assert "tcp://127.0.0.1:9" in line and "TOKENMILL_DASK_ADDRESS" in line
    line = error_line(runner.invoke(app, ["build", sample, "--warehouse", str(wh), "--no-prefect", "--runner", "dask"]))
    assert "runner 'dask'" in line
    assert not (wh / "default" / "docs").exists()  # nothing committed


def test_a_prefect_build_passes_wait_to_the_flow_which_takes_slot_then_lock(tmp_path, monkeypatch):
    """The flow takes the dataset's concurrency slot, then the writer lock with `lock_wait`; the CLI
    must not hold the lock around it (a deployment run takes them in that order: no deadlock)."""
    import flows.build_corpus
    from warehouse.lock import _HELD

    seen = {}

    def fake_flow(inputs, **kwargs):
        seen.update(kwargs, lock_held=dict(_HELD))
        raise SystemExit(0)

    monkeypatch.setattr(flows.build_corpus, "build_corpus", fake_flow)
    runner.invoke(app, ["build", str(REPO / "sample" / "warc"), "--warehouse", str(tmp_path), "--prefect", "--wait", "7"])
    assert seen["lock_wait"] == 7 and seen["lock_held"] == {}
