"""prefect.yaml and what its deployments rely on, without a server: the training run's settings are
the sample's (not a 30,000-second plan), its budget comes from TOKENMILL_TRAIN_MAX_SECONDS, paths are
absolute, and two builds of one dataset never run at once (a Prefect concurrency limit per dataset).
The whole path on a real server is tests/test_prefect_server.py."""

from __future__ import annotations

import functools
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


ARRIVED: dict[str, threading.Semaphore] = {}  # per test: one release per run that reached the flow
MEET: dict[str, threading.Barrier] = {}


def arrives(fn):
    """Count a run as arrived before it asks for the dataset's slot."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ARRIVED[signature.bind(*args, **kwargs).arguments["meet"]].release()
        return fn(*args, **kwargs)
    return wrapper


@flow
@arrives
@one_build_per_dataset
def hold(warehouse: str, dataset: str, meet: str) -> tuple[float, float]:
    """Inside the slot. Same dataset: wait until the other run has arrived too, then hold the slot
    2 s so it asks for the slot while it is held. Different datasets: meet the other run inside its
    own slot (a barrier), which only succeeds if both hold their slots at once."""
    started = time.monotonic()
    if meet.startswith("turns"):
        assert ARRIVED[meet].acquire(timeout=60) and ARRIVED[meet].acquire(timeout=60), "the other run never started"
        ARRIVED[meet].release(2)
        time.sleep(2.0)
    else:
        MEET[meet].wait(timeout=60)  # BrokenBarrierError (the flow fails) if the runs were serialized
    return started, time.monotonic()


def run_together(*datasets: str, tmp_path: Path, meet: str) -> list[tuple[float, float]]:
    ARRIVED[meet], MEET[meet] = threading.Semaphore(0), threading.Barrier(len(datasets))
    spans: dict[int, tuple[float, float]] = {}
    threads = [threading.Thread(target=lambda i=i, d=d: spans.__setitem__(i, hold(str(tmp_path), d, meet=meet)))
               for i, d in enumerate(datasets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert len(spans) == len(datasets), "a run failed or hung (see its log above)"
    return [spans[i] for i in range(len(datasets))]


def test_two_builds_of_one_dataset_take_turns_and_of_two_datasets_do_not(tmp_path):
    (a0, a1), (b0, b1) = sorted(run_together("same", "same", tmp_path=tmp_path, meet="turns"))
    assert b0 >= a1  # the second asked while the first held the slot, and waited for it
    # Different datasets: each run meets the other inside its slot; serialized runs could not.
    (c0, c1), (d0, d1) = sorted(run_together("one", "other", tmp_path=tmp_path, meet="side-by-side"))
    assert d0 < c1
