"""prefect.yaml and what its deployments rely on, without a server: the training run's settings are
the sample's (not a 30,000-second plan), its budget comes from TOKENMILL_TRAIN_MAX_SECONDS, paths are
absolute, and two builds of one dataset never run at once (a Prefect concurrency limit per dataset).
The whole path on a real server is tests/test_prefect_server.py."""

from __future__ import annotations

import inspect
import re
import threading
import time
from pathlib import Path

import yaml
from prefect import flow

from flows import events
from flows.dataset_limit import limit_name, one_build_per_dataset
from flows.settings import DEFAULT_TRAIN_SECONDS, train_max_seconds, warehouse_root
from flows.train_after_build import OVERRIDES, train_after_build

REPO = Path(__file__).resolve().parent.parent
PREFECT_YAML = yaml.safe_load((REPO / "prefect.yaml").read_text())


def deployment(name: str) -> dict:
    return next(d for d in PREFECT_YAML["deployments"] if d["name"] == name)


def test_the_triggered_training_uses_the_samples_settings_written_out():
    defaults = {name: p.default for name, p in inspect.signature(train_after_build.fn).parameters.items()}
    parameters = deployment("on-corpus-built")["parameters"]
    assert parameters["overrides"] == OVERRIDES
    assert {k: v for k, v in parameters.items() if k != "overrides"} == {
        k: defaults[k] for k in ("vocab_size", "preset", "prompt")}
    assert "max_seconds" not in parameters and defaults["max_seconds"] is None  # from the worker's environment


def test_the_training_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("TOKENMILL_TRAIN_MAX_SECONDS", raising=False)
    assert train_max_seconds() == DEFAULT_TRAIN_SECONDS == 120
    monkeypatch.setenv("TOKENMILL_TRAIN_MAX_SECONDS", "7.5")
    assert train_max_seconds() == 7.5


def test_the_trigger_is_our_corpus_built_event_rendered_into_parameters():
    (trigger,) = deployment("on-corpus-built")["triggers"]
    assert trigger["expect"] == [events.CORPUS_BUILT]
    assert trigger["match"]["prefect.resource.id"] == events.DATASET_RESOURCE + "*"
    rendered = set(re.findall(r"event\.payload\.(\w+)", str(trigger["parameters"])))
    assert rendered == {"warehouse", "dataset", "docs_version", "build_id"}
    build = deployment("daily")
    assert build["work_pool"]["name"] == deployment("on-corpus-built")["work_pool"]["name"] == "tokenmill"
    assert build["schedules"][0]["cron"]


def test_a_relative_warehouse_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENMILL_WAREHOUSE", "wh")
    assert warehouse_root() == str(tmp_path / "wh")
    monkeypatch.setenv("TOKENMILL_WAREHOUSE", "s3://bucket/wh")
    assert warehouse_root() == "s3://bucket/wh"
    assert limit_name("wh", "d") != limit_name(str(tmp_path / "other"), "d")


@flow
@one_build_per_dataset
def hold(warehouse: str, dataset: str, seconds: float) -> tuple[float, float]:
    started = time.monotonic()
    time.sleep(seconds)
    return started, time.monotonic()


def run_together(*datasets: str, tmp_path: Path) -> list[tuple[float, float]]:
    spans: dict[int, tuple[float, float]] = {}
    threads = [threading.Thread(target=lambda i=i, d=d: spans.__setitem__(i, hold(str(tmp_path), d, 2.0)))
               for i, d in enumerate(datasets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return [spans[i] for i in range(len(datasets))]


def test_two_builds_of_one_dataset_take_turns_and_of_two_datasets_do_not(tmp_path):
    (a0, a1), (b0, b1) = sorted(run_together("same", "same", tmp_path=tmp_path))
    assert b0 >= a1  # the second waited for the first's slot
    (c0, c1), (d0, d1) = sorted(run_together("one", "other", tmp_path=tmp_path))
    assert d0 < c1  # different datasets: side by side
