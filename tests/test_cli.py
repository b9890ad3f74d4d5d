"""The `tokenmill` command line: clear one-line errors, and the extract command on real pages."""

import json
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
