"""The supervised workers: a record past its hard budget, or one that kills its worker, costs that
record only; an environmental failure leaves its input unbuilt. Faults are injected with a pipeline
whose extract stage misbehaves on marked records, in real worker processes."""

from __future__ import annotations

import errno
import json
import os
import signal
import time

import pytest

from pipeline.config import BuildConfig
from pipeline.process import DocumentPipeline
from pipeline.readers import expand_inputs
from pipeline.workers import HARD_GRACE_SECONDS, UnitFailure, run_supervised

CFG = BuildConfig(extract={"max_seconds": 0.5}, quality={"gopher_quality": {"enabled": False},
                  "c4": {"enabled": False}, "fineweb": {"enabled": False}, "gopher_repetition": {"enabled": False}},
                  langid={"languages": [], "min_score": 0})


class _Faulty:
    """Wraps the extract stage: HANG blocks in a way SIGALRM cannot interrupt (as a long lxml call
    does), CRASH kills the process as a segfault would, DISK fails as a lost disk does."""

    def __init__(self, stage):
        self.stage, self.name = stage, stage.name

    def __call__(self, doc):
        body = doc.record.body
        if "HANG" in body:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
            time.sleep(3600)
        if "CRASH" in body:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "DISK" in body:
            raise OSError(errno.EIO, "Input/output error")
        return self.stage(doc)


class FaultyPipeline(DocumentPipeline):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.stages[0] = _Faulty(self.stages[0])


def jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


def outcome(out):
    rows = [(r["source_offset"], "doc") for r in out.docs] + [(r["source_offset"], r["reason"]) for r in out.rejects]
    return sorted(rows)


def test_a_record_that_sigalrm_cannot_stop_is_rejected_after_the_hard_budget_and_its_neighbours_kept(tmp_path):
    units = expand_inputs([jsonl(tmp_path / "a.jsonl", ["first words", "HANG here", "third words"]),
                           jsonl(tmp_path / "b.jsonl", ["other file"])])
    started = time.monotonic()
    outs = list(run_supervised(units, CFG, workers=1, factory=FaultyPipeline))
    elapsed = time.monotonic() - started
    assert outcome(outs[0]) == [(0, "doc"), (1, "extract_timeout"), (2, "doc")]
    assert outcome(outs[1]) == [(0, "doc")]
    (timeout,) = [r for r in outs[0].rejects if r["reason"] == "extract_timeout"]
    assert (timeout["stage"], timeout["detail"]) == ("extract", "over 5.5 s: its worker was stopped")
    assert outs[0].stages["extract"].records_in == 3 and outs[0].stages["extract"].dropped == 1
    assert elapsed < 0.5 + HARD_GRACE_SECONDS + 20  # one budget, plus worker starts on a loaded machine


def test_a_record_that_kills_its_worker_twice_is_rejected_and_the_rest_of_its_input_kept(tmp_path):
    units = expand_inputs([jsonl(tmp_path / "a.jsonl", ["one", "CRASH", "three"])])
    (out,) = run_supervised(units, CFG, workers=2, factory=FaultyPipeline)
    assert outcome(out) == [(0, "doc"), (1, "worker_crashed"), (2, "doc")]
    (crash,) = out.rejects
    assert "died on it twice" in crash["detail"] and str(-signal.SIGSEGV) in crash["detail"]


def test_an_environmental_failure_is_a_unit_failure_not_a_reject(tmp_path):
    units = expand_inputs([jsonl(tmp_path / "a.jsonl", ["one", "DISK", "three"]), jsonl(tmp_path / "b.jsonl", ["b"])])
    first, second = run_supervised(units, CFG, workers=2, factory=FaultyPipeline)
    assert isinstance(first, UnitFailure) and "Input/output error" in first.error
    assert outcome(second) == [(0, "doc")]


def test_a_file_that_cannot_be_opened_is_no_verdict_on_its_data(tmp_path):
    from pipeline.config import ReadConfig
    from pipeline.readers import read_unit
    from pipeline.records import InputUnavailable

    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing-target.jsonl")  # a mount that went away
    (unit,) = expand_inputs([str(tmp_path)])
    with pytest.raises(InputUnavailable, match="gone.jsonl: FileNotFoundError"):
        list(read_unit(unit, ReadConfig()))


def test_a_threads_worker_process_serves_its_next_units_and_ends_with_the_build(tmp_path):
    from pipeline.workers import stop_thread_workers, thread_worker

    a, b = expand_inputs([jsonl(tmp_path / "a.jsonl", ["one"]), jsonl(tmp_path / "b.jsonl", ["CRASH", "two"])])
    worker = thread_worker(CFG, FaultyPipeline)
    assert outcome(worker.run(a)) == [(0, "doc")]
    first_child = worker._process.pid
    assert thread_worker(CFG, FaultyPipeline) is worker  # one start-up per thread, not per input
    assert outcome(worker.run(a)) == [(0, "doc")] and worker._process.pid == first_child
    assert outcome(worker.run(b)) == [(0, "worker_crashed"), (1, "doc")]  # replaced twice, still this thread's
    stop_thread_workers()
    assert worker.stopped and "stopped" in worker.run(a).error
    assert thread_worker(CFG, FaultyPipeline) is not worker
    stop_thread_workers()


def test_a_build_that_stops_early_stops_its_running_workers_at_once(tmp_path):
    units = expand_inputs([jsonl(tmp_path / "a.jsonl", ["first"]), jsonl(tmp_path / "b.jsonl", ["HANG here"])])
    outs = run_supervised(units, CFG, workers=2, factory=FaultyPipeline)
    assert outcome(next(outs)) == [(0, "doc")]
    time.sleep(1)  # the second unit is in its hang by now
    started = time.monotonic()
    outs.close()
    assert time.monotonic() - started < 0.5 + HARD_GRACE_SECONDS / 2  # not held to the record's budget
