"""Worker processes that can be stopped: every record has a hard time budget, and a record that kills
its worker costs that record, not its input.

`run_supervised(units, cfg, workers)` yields, in input order, each unit's `UnitOutput`, or a
`UnitFailure` when the unit could not be processed for a reason outside its data. Each worker is a
process (forkserver: it starts from a server that has imported the pipeline) that says in shared
memory which record and stage it is running, and since when. The parent watches:

- a record still running `hard_seconds` after it started (SIGALRM, the extractor's own soft limit,
  cannot interrupt a long lxml call) gets its worker SIGKILLed and replaced; the unit runs again
  with that record rejected as `<stage>_timeout`, so no page holds a build past its budget;
- a worker that dies inside a record (segfault, out of memory) gets the unit run again; a record it
  dies in twice is rejected as `worker_crashed` and the rest of the unit is kept;
- a worker that dies outside a record, twice, or a unit whose reading fails for an environmental
  reason (`pipeline.records.is_environmental`), is a `UnitFailure`: the build does not mark it done.

A re-run of a unit is deterministic (the same records in the same order), so a record is named by
its index in the unit, and the verdicts on earlier attempts' records are handed to the next one.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from pipeline.config import BuildConfig
from pipeline.process import DocumentPipeline, UnitOutput, document_stages
from pipeline.readers import InputUnit

# Past SIGALRM's soft limit (extract.max_seconds) a record gets this much longer before its worker is stopped.
HARD_GRACE_SECONDS = 5.0
# A worker dying outside any record (so no record can be blamed) is retried this many times.
WORKER_CRASH_RETRIES = 1
_IDLE = -1.0
_POLL_SECONDS = 0.2


@dataclass
class UnitFailure:
    """A unit left unbuilt because of its environment, not its data; the next build reads it again."""

    unit: InputUnit
    error: str


def hard_seconds(cfg: BuildConfig) -> float:
    return cfg.extract.max_seconds + HARD_GRACE_SECONDS


class _SharedWatch:
    """The `RecordWatch` a worker writes: [record index, stage position, started (monotonic)]."""

    def __init__(self, slot, verdicts: dict[int, tuple[str, str, str]]):
        self.slot, self.verdicts = slot, verdicts

    def running(self, index: int, stage: int) -> None:
        if stage == 0:
            self.slot[2] = time.monotonic()  # one budget for the whole record, from its first stage
        self.slot[1] = stage
        self.slot[0] = index

    def idle(self) -> None:
        self.slot[0] = _IDLE


def _worker_main(conn: Connection, config_json: str, slot, factory: Callable[[BuildConfig], DocumentPipeline]) -> None:
    pipeline = factory(BuildConfig.model_validate_json(config_json))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        unit, verdicts = task
        slot[0] = _IDLE
        try:
            conn.send(("ok", pipeline.process_unit(unit, _SharedWatch(slot, verdicts))))
        except Exception as exc:  # noqa: BLE001 - process_unit raises only for environmental failures
            conn.send(("failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}"))


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: Connection
    slot: object
    task: int | None = None


@dataclass
class _Attempts:
    """What earlier attempts of one unit found."""

    verdicts: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    record_crashes: dict[int, int] = field(default_factory=dict)
    unit_crashes: int = 0


def run_supervised(
    units: list[InputUnit],
    cfg: BuildConfig,
    workers: int,
    factory: Callable[[BuildConfig], DocumentPipeline] = DocumentPipeline,
) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output (or failure) in input order, at most `workers` units processed at once.
    `factory` builds a worker's pipeline (tests inject faults with it)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipeline.process"])
    stage_names = [stage.name for stage in document_stages(cfg)]
    budget = hard_seconds(cfg)
    config_json = cfg.model_dump_json()
    attempts = {i: _Attempts() for i in range(len(units))}
    pending = list(range(len(units)))
    ready: dict[int, UnitOutput | UnitFailure] = {}
    pool: list[_Worker] = []
    next_index = 0

    def start_worker() -> _Worker:
        slot = context.Array("d", 3, lock=False)
        slot[0] = _IDLE
        parent, child = context.Pipe()
        process = context.Process(target=_worker_main, args=(child, config_json, slot, factory), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent, slot)

    def stop(worker: _Worker) -> None:
        """Kill the worker (it may be dead already) and put a fresh one in its place."""
        worker.process.kill()
        worker.process.join()
        worker.conn.close()
        pool[pool.index(worker)] = start_worker()

    def lost(worker: _Worker, timed_out: bool) -> None:
        """The worker's unit did not finish: blame its record where one was running, then retry."""
        i, history = worker.task, attempts[worker.task]
        stop(worker)  # first, so the slot below is the dead worker's last word
        record, stage = int(worker.slot[0]), stage_names[int(worker.slot[1])]
        if timed_out and record >= 0 and time.monotonic() - worker.slot[2] > budget:
            history.verdicts[record] = (stage, f"{stage}_timeout", f"over {budget:g} s: its worker was stopped")
        elif timed_out:
            pass  # it moved on to the next record as it was stopped: nothing to blame, just run it again
        elif record >= 0:
            history.record_crashes[record] = history.record_crashes.get(record, 0) + 1
            if history.record_crashes[record] >= 2:
                history.verdicts[record] = (stage, "worker_crashed", "its worker process died on it twice "
                                            f"(exit code {worker.process.exitcode})")
        else:
            history.unit_crashes += 1
            if history.unit_crashes > WORKER_CRASH_RETRIES:
                ready[i] = UnitFailure(units[i], f"worker process died (exit code {worker.process.exitcode})")
                return
        pending.append(i)
        pending.sort()

    try:
        pool.extend(start_worker() for _ in range(max(1, workers)))
        while next_index < len(units):
            for worker in pool:
                # A bounded window: outputs waiting to be yielded in order never pile up in memory.
                if worker.task is None and pending and pending[0] < next_index + 2 * len(pool):
                    worker.task = pending.pop(0)
                    worker.conn.send((units[worker.task], attempts[worker.task].verdicts))
            busy = [w for w in pool if w.task is not None]
            signalled = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], _POLL_SECONDS))
            now = time.monotonic()
            for worker in busy:
                if worker.conn in signalled:
                    try:
                        status, result = worker.conn.recv()
                    except (EOFError, OSError):
                        lost(worker, timed_out=False)
                        continue
                    ready[worker.task] = result if status == "ok" else UnitFailure(units[worker.task], result)
                    worker.task = None
                elif worker.process.sentinel in signalled:
                    lost(worker, timed_out=False)
                elif worker.slot[0] >= 0 and now - worker.slot[2] > budget:
                    lost(worker, timed_out=True)
            while next_index in ready:
                yield ready.pop(next_index)
                next_index += 1
    finally:
        for worker in pool:
            worker.process.kill()
            worker.process.join()
            worker.conn.close()
