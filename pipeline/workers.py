"""Worker processes that can be stopped: every record has a hard time budget, and a record that kills
its worker costs that record, not its input.

`SupervisedWorker(cfg).run(unit)` processes one input unit in a child process and returns its
`UnitOutput`, or a `UnitFailure` when the unit could not be processed for a reason outside its
data. The child (forkserver: it starts from a server that has imported the pipeline) says in
shared memory which record and stage it is running, and since when; the calling thread watches:

- a record still running `hard_seconds` after it started (SIGALRM, the extractor's own soft limit,
  cannot interrupt a long lxml call) gets the child SIGKILLed and replaced; the unit runs again
  with that record rejected as `<stage>_timeout`, so no page holds a build past its budget;
- a child that dies inside a record (segfault, out of memory) gets the unit run again; a record it
  dies in twice is rejected as `worker_crashed` and the rest of the unit is kept;
- a child that dies outside a record, twice, or a unit whose reading fails for an environmental
  reason (`pipeline.records.is_environmental`), is a `UnitFailure`: the build does not mark it done.

A re-run of a unit is deterministic (the same records in the same order), so a record is named by
its index in the unit, and the verdicts on earlier attempts' records are handed to the next one.

One child serves many units: `thread_worker(cfg)` is the calling thread's own (started on first
use, reused for every unit that thread runs, stopped by `stop_thread_workers`). Whatever runs the
units in parallel — the threads of `run_supervised` here, Prefect's thread-pool task runner, the
threads of Dask workers (flows/input_tasks.py) — therefore runs each in a supervised child, and
the supervision has this one home. `run_supervised` is the Prefect-free runner the in-process
build uses: a thread pool, outputs in input order (pipeline/in_order.py).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from pipeline.config import BuildConfig
from pipeline.forkserver import forkserver_context
from pipeline.in_order import in_input_order
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
class _Attempts:
    """What earlier attempts of one unit found."""

    verdicts: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    record_crashes: dict[int, int] = field(default_factory=dict)
    unit_crashes: int = 0


class SupervisedWorker:
    """One child process running units, watched by the thread that calls `run`. Not shared between
    threads (one unit at a time); `stop` may come from any thread, and ends a `run` in progress
    with a UnitFailure rather than a restart."""

    def __init__(self, cfg: BuildConfig, factory: Callable[[BuildConfig], DocumentPipeline] = DocumentPipeline):
        self._context = forkserver_context()
        self._config_json = cfg.model_dump_json()
        self._factory = factory
        self._stage_names = [stage.name for stage in document_stages(cfg)]
        self._budget = hard_seconds(cfg)
        self._process: multiprocessing.Process | None = None
        self._conn: Connection | None = None
        self._slot = None
        self._stopped = False
        self._exitcode: int | None = None

    def _start(self) -> None:
        self._slot = self._context.Array("d", 3, lock=False)
        self._slot[0] = _IDLE
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_worker_main, args=(child, self._config_json, self._slot,
                                                                         self._factory), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def _kill(self) -> int | None:
        """Kill the child (it may be dead already); its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        process.kill()
        process.join()
        self._conn.close()
        return process.exitcode

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Kill the child for good: a `run` in progress (on another thread) returns a UnitFailure."""
        self._stopped = True
        self._kill()

    def run(self, unit: InputUnit) -> UnitOutput | UnitFailure:
        """The unit's output; a record past its budget, or one its child dies in twice, rejected."""
        history = _Attempts()
        while True:
            if self._stopped:
                return _stopped_failure(unit)
            if self._process is None:
                self._start()
            try:
                self._conn.send((unit, history.verdicts))
            except OSError:  # it died idle, between units (or was stopped): a fresh one takes the unit
                self._kill()
                continue
            outcome, timed_out = self._watch(unit)
            if outcome is not None:
                return outcome
            if self._lost(history, timed_out):
                return UnitFailure(unit, f"worker process died (exit code {self._exitcode})")

    def _watch(self, unit: InputUnit) -> tuple[UnitOutput | UnitFailure | None, bool]:
        """The child's answer; or None and whether it ran past the budget, when it did not answer."""
        process, conn, slot = self._process, self._conn, self._slot
        while True:
            try:
                signalled = set(wait([conn, process.sentinel], _POLL_SECONDS))
            except (OSError, ValueError):  # its pipe was closed under it: stopped from another thread
                signalled = None
            if self._stopped:
                return _stopped_failure(unit), False
            if signalled is None:
                return None, False
            if conn in signalled:
                try:
                    status, result = conn.recv()
                except (EOFError, OSError):
                    return None, False
                return (result if status == "ok" else UnitFailure(unit, result)), False
            if process.sentinel in signalled:
                return None, False
            if slot[0] >= 0 and time.monotonic() - slot[2] > self._budget:
                return None, True

    def _lost(self, history: _Attempts, timed_out: bool) -> bool:
        """The child did not finish the unit: blame its record where one was running. True when the
        unit is given up (its child died outside any record too often)."""
        slot = self._slot
        self._exitcode = self._kill()  # first, so the slot below is the dead child's last word
        record, stage = int(slot[0]), self._stage_names[int(slot[1])]
        if timed_out and record >= 0 and time.monotonic() - slot[2] > self._budget:
            history.verdicts[record] = (stage, f"{stage}_timeout", f"over {self._budget:g} s: its worker was stopped")
        elif timed_out:
            pass  # it moved on to the next record as it was stopped: nothing to blame, just run it again
        elif record >= 0:
            history.record_crashes[record] = history.record_crashes.get(record, 0) + 1
            if history.record_crashes[record] >= 2:
                history.verdicts[record] = (stage, "worker_crashed", "its worker process died on it twice "
                                            f"(exit code {self._exitcode})")
        else:
            history.unit_crashes += 1
            return history.unit_crashes > WORKER_CRASH_RETRIES
        return False


def _stopped_failure(unit: InputUnit) -> UnitFailure:
    return UnitFailure(unit, "stopped: the build ended before this input was processed")


_per_thread = threading.local()  # .worker: this thread's SupervisedWorker, .key: the config it runs
_started: list[SupervisedWorker] = []  # every thread's, for stop_thread_workers
_started_lock = threading.Lock()


def thread_worker(cfg: BuildConfig, factory: Callable[[BuildConfig], DocumentPipeline] = DocumentPipeline
                  ) -> SupervisedWorker:
    """This thread's supervised worker for `cfg`, started on first use and reused for the thread's
    next units. One child per thread: a unit of another config stops the previous one's (a Dask
    worker thread serving one build, then another)."""
    key = (cfg.model_dump_json(), factory)
    worker = getattr(_per_thread, "worker", None)
    if worker is not None and not worker.stopped and _per_thread.key == key:
        return worker
    if worker is not None:
        worker.stop()
    worker = _per_thread.worker = SupervisedWorker(cfg, factory)
    _per_thread.key = key
    with _started_lock:
        _started[:] = [w for w in _started if not w.stopped] + [worker]
    return worker


def stop_thread_workers() -> None:
    """Stop every thread's supervised workers (a build's end: their threads are done with them)."""
    with _started_lock:
        workers, _started[:] = list(_started), []
    for worker in workers:
        worker.stop()


def run_supervised(
    units: list[InputUnit],
    cfg: BuildConfig,
    workers: int,
    factory: Callable[[BuildConfig], DocumentPipeline] = DocumentPipeline,
) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output (or failure) in input order, at most `workers` units processed at once,
    each by a thread's supervised worker. `factory` builds a worker's pipeline (tests inject faults
    with it). No Prefect here: this is the in-process build's runner."""
    workers = max(1, workers)
    own: list[SupervisedWorker] = []
    closing = threading.Lock()  # held while a thread adds its worker, and by the end, which stops them all
    ended = False
    local = threading.local()

    def run(unit: InputUnit) -> UnitOutput | UnitFailure:
        worker = getattr(local, "worker", None)
        if worker is None:
            with closing:
                if ended:
                    return _stopped_failure(unit)
                worker = local.worker = SupervisedWorker(cfg, factory)
                own.append(worker)
        return worker.run(unit)

    executor = ThreadPoolExecutor(workers, thread_name_prefix="tokenmill-unit")
    try:
        yield from in_input_order(units, lambda unit: executor.submit(run, unit), 2 * workers,
                                  size=lambda unit: unit.size_bytes)
    finally:
        with closing:
            ended = True
            for worker in own:
                worker.stop()  # a unit still running (the consumer stopped early) ends now
        executor.shutdown(wait=True, cancel_futures=True)
