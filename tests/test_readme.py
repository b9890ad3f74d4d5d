"""The README's commands as written: every command and option its synopsis names exists, each
command of the synopsis runs on the bundled sample, and the training example runs (time-capped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flows.cli import app

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
runner = CliRunner()


def readme_commands(block: str) -> list[list[str]]:
    """Every `tokenmill ...` command of an sh block, as words (line continuations joined, comments
    and anything before `tokenmill`, such as `taskset ... env ...`, dropped)."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0]
        if "tokenmill " in line:
            commands.append(line[line.index("tokenmill "):].split()[1:])
    return commands


SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.S)
SYNOPSIS = next(block for block in SH_BLOCKS if "tokenmill build INPUT..." in block)  # the Commands section
EXAMPLES = [block for block in SH_BLOCKS if block is not SYNOPSIS and "tokenmill " in block]


def synopsis() -> dict[str, list[str]]:
    """The Commands section: command name -> its line's words."""
    return {words[0]: words for words in readme_commands(SYNOPSIS)}


def test_every_command_and_option_of_the_synopsis_exists():
    commands = typer.main.get_command(app).commands
    documented = synopsis()
    assert {"build", "stats", "extract", "dedup", "tokenize", "train", "sample", "plan"} <= set(documented)
    for name, words in documented.items():
        command = commands[name]
        if hasattr(command, "commands"):  # a command group (`tokenmill quality train`): its subcommand
            command = command.commands[words[1]]
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        named = set(re.findall(r"--[a-z][a-z-]*", " ".join(words)))
        assert named <= options, (name, named - options)


def ok(args: list[str]) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_each_synopsis_command_runs_on_the_bundled_sample(tmp_path, monkeypatch):
    warc = REPO / "sample" / "warc" / "cc-main-2024-22_whirlwind_1page.warc.gz"
    recrawl = REPO / "sample" / "warc" / "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz"
    dataset, tokens, run = f"{tmp_path}/wh/sample", tmp_path / "tok", tmp_path / "run"
    monkeypatch.setenv("TOKENMILL_WAREHOUSE", str(tmp_path / "wh"))  # build honours it, as the deployments do
    default = REPO / "data" / "warehouse" / "sample"  # `make demo` may have built it before the tests ran
    default_commits = sorted(default.glob("*/_delta_log/*.json"))
    assert "build " in ok(["build", REPO / "sample" / "html", recrawl, "--dataset", "sample", "--workers", "1"])
    assert "funnel" in ok(["stats", dataset])
    assert "Escopete" in ok(["extract", warc])
    assert "near-dedup:" in ok(["dedup", dataset])
    assert ok(["report", dataset, "--out", tmp_path / "report.html"]).strip() == str(tmp_path / "report.html")
    assert "decontamination:" in ok(["decontaminate", dataset, "--against", REPO / "sample" / "README.md", "--ngram", 13])
    assert "exported docs version" in ok(["export", dataset, "--format", "jsonl", "--out", tmp_path / "export",
                                          "--shard-mb", 1])
    assert (tmp_path / "wh" / "sample" / "docs").is_dir() and sorted(default.glob("*/_delta_log/*.json")) == default_commits
    ok(["tokenize", "--dataset", dataset, "--out", tokens, "--vocab-size", 512, "--model-type", "bpe", "--val-fraction", 0.2])
    assert "steps" in ok(["train", tokens, "--out", run, "--preset", "tiny", "--max-tokens", 2048, "--max-seconds", 60])
    assert ok(["sample", run, "--prompt", "The", "--temperature", 0.8, "--top-k", 20, "--max-new-tokens", 8]).strip()
    assert "compute-optimal" in ok(["plan", "--flops", 1e17])
    assert "compute-optimal" in ok(["plan", "--gpu-hours", 1, "--peak-tflops", 100])
    assert "compute-optimal" in ok(["plan", "--dollars", 10, "--price", 2, "--peak-tflops", 100])


@pytest.mark.shared
def test_the_training_example_runs_as_written(shared_data, tmp_path, monkeypatch):
    """README's "Training from scratch" commands, run from the repo root; only --max-seconds is cut."""
    monkeypatch.chdir(REPO)
    (block,) = [block for block in EXAMPLES if " TOK " in block]
    example = readme_commands(block)
    assert [words[0] for words in example] == ["tokenize", "train"]
    for words in example:
        words = [{"TOK": str(tmp_path / "TOK"), "RUN": str(tmp_path / "RUN")}.get(w, w) for w in words]
        # The README names the shared data where a checkout beside it finds it; elsewhere it is
        # wherever TOKENMILL_SHARED_DATA says.
        words = [str(shared_data / w.removeprefix("../shared/data/")) if w.startswith("../shared/data/") else w
                 for w in words]
        if "--max-seconds" in words:
            words[words.index("--max-seconds") + 1] = "5"
        ok(words)
    assert (tmp_path / "RUN" / "metrics.parquet").is_file()
