"""Training on real text: loss falls, a resumed run is bit-identical, runs record what they used,
sampling gives text, and two DDP processes compute what one process does."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from model.checkpoint import checkpoint_path, load_checkpoint
from model.config import TrainConfigError, load_train_config
from model.data import eval_windows
from model.sample import sample_run
from model.train import train
from tokenizer.cli import tokenize_text
from tokenizer.tokensdir import TokensDir

REPO = Path(__file__).resolve().parent.parent
VOCAB = 512

# A model small enough for a test, trained with settings that learn fast.
TINY = dict(preset="tiny", batch_size=8, lr=3e-3, warmup_steps=5, num_threads=1, log_interval=1, sample_tokens=0)


@pytest.fixture(scope="module")
def tokens_dir(shared_data, tmp_path_factory) -> Path:
    """tinyshakespeare as `tokenmill tokenize --text` lays it out: SentencePiece BPE trained on the
    first 90 %, the last 10 % as validation (as nanoGPT splits it)."""
    out = tmp_path_factory.mktemp("tokens") / "tok"
    tokenize_text([shared_data / "prose" / "tinyshakespeare.txt"], out, vocab_size=VOCAB, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def trained_run(tokens_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(tokens_dir, run, load_train_config(None, **TINY, eval_interval=20), max_tokens=40 * 8 * 64)
    return run


def _losses(run: Path) -> list[float]:
    return pl.read_parquet(run / "metrics.parquet")["train_loss"].drop_nulls().to_list()


@pytest.mark.shared
def test_loss_falls_on_real_text_within_a_few_dozen_steps(trained_run):
    losses = _losses(trained_run)
    assert len(losses) == 40
    assert losses[0] > 5.8  # about ln(512) = 6.24: it starts knowing nothing
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0


@pytest.mark.shared
def test_validation_is_reported_in_bits_per_byte(trained_run, tokens_dir):
    frame = pl.read_parquet(trained_run / "metrics.parquet")
    assert frame.columns == ["step", "tokens", "elapsed_s", "lr", "train_loss", "val_loss", "val_bpb", "tokens_per_s", "mfu"]
    evals = frame.drop_nulls("val_loss")
    assert evals["step"].to_list() == [20, 40]
    meta = json.loads((tokens_dir / "meta.json").read_text())
    for loss, bpb in zip(evals["val_loss"], evals["val_bpb"]):
        assert bpb == pytest.approx(loss * meta["val_tokens"] / (np.log(2) * meta["val_bytes"]))


@pytest.mark.shared
def test_lineage_names_the_tokens_their_dataset_version_tokenizer_config_and_code(trained_run, tokens_dir, shared_data):
    lineage = json.loads((trained_run / "lineage.json").read_text())
    assert lineage["tokens_dir"] == str(tokens_dir.resolve())
    meta = json.loads((tokens_dir / "meta.json").read_text())
    assert lineage["dataset"] == [str(shared_data / "prose" / "tinyshakespeare.txt")] and lineage["dataset_version"] is None
    assert lineage["tokenizer_id"] == meta["tokenizer_id"] and lineage["tokenizer_id"].startswith("bpe-512-")
    assert lineage["config"]["preset"] == "tiny" and lineage["config"]["lr"] == 3e-3
    assert re.fullmatch(r"[0-9a-f]{40}", lineage["git_commit"]) or lineage["git_commit"] == "unknown"  # outside a repository
    assert lineage["torch_version"] == torch.__version__


@pytest.mark.shared
def test_checkpoint_loads_without_unpickling_code(trained_run):
    state = torch.load(checkpoint_path(trained_run), weights_only=True)
    assert state["schedule"]["step"] == 40
    assert {"model", "optimizer", "data", "rng", "config", "gpt_config"} <= set(state)


@pytest.mark.shared
def test_sampling_returns_decodable_text_that_continues_the_prompt(trained_run):
    text = sample_run(trained_run, prompt="ROMEO:", temperature=0.8, top_k=50, max_new_tokens=40)
    assert isinstance(text, str) and text.startswith("ROMEO:")
    assert len(text) > len("ROMEO:") + 20
    greedy = sample_run(trained_run, prompt="ROMEO:", temperature=0, max_new_tokens=20)
    assert greedy == sample_run(trained_run, prompt="ROMEO:", temperature=0, max_new_tokens=20)


@pytest.mark.shared
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tokens_dir, tmp_path):
    # Evaluations and samples mid-run must not disturb the random streams either.
    cfg = load_train_config(None, **TINY | {"sample_tokens": 16}, eval_interval=4, model={"dropout": 0.1})
    budget = 12 * 8 * 64
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(tokens_dir, whole, cfg, max_tokens=budget)
    first = train(tokens_dir, parts, cfg, max_tokens=budget, stop_at_step=6)
    assert first.stopped_by == "stop_at_step" and first.steps == 6
    second = train(tokens_dir, parts, resume=True, max_tokens=budget)
    assert second.steps == 12 and second.stopped_by == "max_tokens"
    assert _losses(parts) == _losses(whole)
    a, b = load_checkpoint(whole)["model"], load_checkpoint(parts)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.shared
def test_accumulating_two_half_batches_trains_as_one_whole_batch(tokens_dir, tmp_path):
    budget = 8 * 8 * 64
    train(tokens_dir, tmp_path / "whole", load_train_config(None, **TINY), max_tokens=budget)
    train(tokens_dir, tmp_path / "halves", load_train_config(None, **TINY | {"batch_size": 4, "grad_accum": 2}), max_tokens=budget)
    np.testing.assert_allclose(_losses(tmp_path / "halves"), _losses(tmp_path / "whole"), rtol=1e-5)


@pytest.mark.shared
def test_the_bf16_autocast_path_cuda_uses_trains_on_cpu_too(tokens_dir, tmp_path):
    # The mixed-precision path (bf16 matmuls and attention, fp32 rotary and loss) runs on CPU with
    # precision="bf16", so its dtype handling is tested where no GPU is.
    budget = 30 * 8 * 64
    train(tokens_dir, tmp_path / "fp32", load_train_config(None, **TINY), max_tokens=budget)
    train(tokens_dir, tmp_path / "bf16", load_train_config(None, **TINY | {"precision": "bf16"}), max_tokens=budget)
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert len(bf16) == len(fp32) == 30 and all(np.isfinite(bf16))
    assert bf16 != fp32  # it really ran in bf16
    assert abs(bf16[0] - fp32[0]) < 0.05 * fp32[0]  # the same model at step 0, to bf16 precision
    assert np.mean(bf16[-5:]) < bf16[0] - 0.5


@pytest.mark.shared
def test_a_compiled_model_trains_as_the_eager_one_does(tokens_dir, tmp_path):
    budget = 10 * 8 * 64
    train(tokens_dir, tmp_path / "eager", load_train_config(None, **TINY), max_tokens=budget)
    train(tokens_dir, tmp_path / "compiled", load_train_config(None, **TINY | {"compile": True}), max_tokens=budget)
    np.testing.assert_allclose(_losses(tmp_path / "compiled"), _losses(tmp_path / "eager"), rtol=1e-3)


@pytest.mark.shared
def test_a_time_budget_stops_the_run_and_decays_the_learning_rate(tokens_dir, tmp_path):
    result = train(tokens_dir, tmp_path / "run", load_train_config(None, **TINY), max_seconds=1.0)
    assert result.stopped_by == "max_seconds" and result.steps > 0
    lr = pl.read_parquet(tmp_path / "run" / "metrics.parquet")["lr"]
    assert lr[-1] < 0.5 * TINY["lr"] < lr.max()


@pytest.mark.shared
def test_a_finished_run_directory_is_not_overwritten(trained_run, tokens_dir):
    with pytest.raises(FileExistsError, match="resume"):
        train(tokens_dir, trained_run, load_train_config(None, **TINY), max_tokens=512)


@pytest.mark.shared
def test_resuming_with_different_training_settings_is_refused(trained_run, tokens_dir):
    with pytest.raises(ValueError, match="lr"):
        train(tokens_dir, trained_run, load_train_config(None, **TINY | {"lr": 1e-2}), resume=True, max_tokens=80 * 512)


@pytest.mark.shared
def test_validation_windows_cover_the_split_without_overlap(tokens_dir):
    splits = TokensDir.open(tokens_dir)
    starts = eval_windows(splits.val.n_tokens, 64, max_tokens=10**9)
    assert np.all(np.diff(starts) == 64) and starts[-1] + 64 < splits.val.n_tokens
    capped = eval_windows(splits.val.n_tokens, 64, max_tokens=64 * 10)
    assert len(capped) == 10 and capped[0] == 0 and capped[-1] == starts[-1]


def test_config_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "train.toml"
    bad.write_text('preset = "tiny"\n[model]\nn_layr = 3\n')
    with pytest.raises(TrainConfigError, match="n_layr"):
        load_train_config(bad)
    bad.write_text('preset = "tiny"\nlr = -1\n')
    with pytest.raises(TrainConfigError, match="lr"):
        load_train_config(bad)


def test_yaml_config_overrides_a_preset_and_cli_values_override_the_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("preset: tiny\nlr: 0.002\nmodel:\n  n_layer: 3\n")
    cfg = load_train_config(path, lr=0.005, max_seconds=None)
    assert cfg.lr == 0.005 and cfg.gpt_config(vocab_size=500).n_layer == 3
    assert cfg.gpt_config(vocab_size=500).vocab_size == 512  # padded to a multiple of 64


DDP_WORKER = """
import json, os, sys
import torch
torch.set_num_threads(1)
from model.config import load_train_config
from model.train import train
tokens, out, cfg_json, budget = sys.argv[1:5]
result = train(tokens, out, load_train_config(None, **json.loads(cfg_json)), max_tokens=int(budget))
with open(os.path.join(out, f"result{os.environ['RANK']}.json"), "w") as f:
    json.dump({"val_loss": result.val_loss, "train_loss": result.train_loss}, f)
"""


@pytest.mark.shared
def test_two_ddp_processes_train_as_one_process_with_their_combined_batch(tokens_dir, tmp_path):
    # Each rank takes its rows of one global batch, so 2 ranks x 4 rows sees exactly the data of
    # 1 process x 8 rows; averaged gradients then give the same losses, up to float rounding.
    budget, common = 10 * 8 * 64, TINY | {"eval_interval": 5}
    single = tmp_path / "single"
    train(tokens_dir, single, load_train_config(None, **common), max_tokens=budget)
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER)
    ddp = tmp_path / "ddp"
    ddp.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={port}", str(worker), str(tokens_dir), str(ddp), json.dumps(common | {"batch_size": 4}), str(budget)],
        env=env, check=True, timeout=120, capture_output=True,
    )
    ranks = [json.loads((ddp / f"result{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank reports the all-reduced figures
    np.testing.assert_allclose(_losses(ddp), _losses(single), rtol=2e-5)
    val = pl.read_parquet(single / "metrics.parquet")["val_loss"].drop_nulls().to_list()
    np.testing.assert_allclose(pl.read_parquet(ddp / "metrics.parquet")["val_loss"].drop_nulls().to_list(), val, rtol=2e-5)


@pytest.mark.shared
def test_samples_are_not_repeated_after_a_resume(tokens_dir, tmp_path, monkeypatch):
    # A run killed after an evaluation wrote its sample but before the next checkpoint: the resumed
    # run redoes those steps, and samples.txt must read as the uninterrupted run's.
    import model.train

    cfg = load_train_config(None, **TINY | {"sample_tokens": 8}, eval_interval=2, checkpoint_interval=4)
    budget = 12 * 8 * 64
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(tokens_dir, whole, cfg, max_tokens=budget)
    real_save = model.train.save_checkpoint

    def killed_at_step_6(run_dir, state):
        if state["schedule"]["step"] == 6:
            raise KeyboardInterrupt  # as a kill would: after step 6's sample, before its checkpoint
        return real_save(run_dir, state)

    monkeypatch.setattr(model.train, "save_checkpoint", killed_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(tokens_dir, parts, cfg, max_tokens=budget, stop_at_step=6)
    monkeypatch.setattr(model.train, "save_checkpoint", real_save)
    assert load_checkpoint(parts)["schedule"]["step"] == 4
    train(tokens_dir, parts, resume=True, max_tokens=budget)
    headers = [line.split(" (")[0] for line in (parts / "samples.txt").read_text().splitlines() if line.startswith("--- step")]
    assert headers == [f"--- step {s}" for s in (2, 4, 6, 8, 10, 12)]
    assert (parts / "samples.txt").read_text() == (whole / "samples.txt").read_text()


@pytest.mark.shared
def test_resuming_a_run_killed_after_its_final_checkpoint_adds_no_evaluation(tokens_dir, tmp_path, monkeypatch):
    # Killed between the final checkpoint and the end (chaos seed 11003 found it): the resumed run
    # has nothing left to train and must not evaluate again, which appended a second step-12 sample.
    import model.train

    cfg = load_train_config(None, **TINY | {"sample_tokens": 8}, eval_interval=3)
    budget = 12 * 8 * 64
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    done = train(tokens_dir, whole, cfg, max_tokens=budget)

    real_save = model.train.save

    def killed_after_the_final_checkpoint(run):
        real_save(run)
        if run.step == 12:
            raise KeyboardInterrupt  # as a kill would: the checkpoint is written, the process had not exited

    monkeypatch.setattr(model.train, "save", killed_after_the_final_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(tokens_dir, parts, cfg, max_tokens=budget)
    monkeypatch.undo()
    resumed = train(tokens_dir, parts, resume=True, max_tokens=budget)
    assert (parts / "samples.txt").read_text() == (whole / "samples.txt").read_text()
    assert pl.read_parquet(parts / "metrics.parquet")["val_loss"].drop_nulls().to_list() == \
        pl.read_parquet(whole / "metrics.parquet")["val_loss"].drop_nulls().to_list()
    assert (resumed.steps, resumed.val_loss, resumed.val_bpb) == (done.steps, done.val_loss, done.val_bpb)


@pytest.mark.parametrize("damage", ["empty", "truncated"])
@pytest.mark.shared
def test_a_damaged_checkpoint_is_one_error_naming_the_file(trained_run, tmp_path, damage):
    import shutil

    from model.checkpoint import CheckpointError
    from warehouse.errors import TokenmillError

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = checkpoint_path(run)
    data = path.read_bytes()
    path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(CheckpointError) as caught:
        sample_run(run, prompt="ROMEO:", max_new_tokens=2)
    assert isinstance(caught.value, TokenmillError)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["sample", str(run)])
    assert result.exit_code == 2 and result.output == f"error: {message}\n"


@pytest.mark.shared
def test_a_prompt_with_the_space_symbol_encodes_at_sampling_as_at_packing(trained_run, monkeypatch):
    import model.sample
    from tokenizer.tokensdir import TOKENIZER_NAME, load_codec

    prompt = "ROMEO\u2581and \u2581\u2581JULIET\n"  # "▁" is SentencePiece's space symbol
    packed, _ = load_codec(trained_run / TOKENIZER_NAME).encode_documents([prompt])  # what pack.py writes
    fed = []
    real_generate = model.sample.generate

    def record(model_, idx, *args, **kwargs):
        fed.append(idx[0].tolist())
        return real_generate(model_, idx, *args, **kwargs)

    monkeypatch.setattr(model.sample, "generate", record)
    assert sample_run(trained_run, prompt=prompt, max_new_tokens=0) == prompt
    assert fed == [packed.tolist()]
