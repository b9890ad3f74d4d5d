"""A build's inputs as Prefect tasks: one `process-input` task run per input (its state, retries and
logs per input in the Prefect UI), on the task runner the build asks for.

- `runner` "process" (the default): Prefect's `ThreadPoolTaskRunner` with `workers` threads in the
  flow process;
- `runner` "dask": prefect-dask's `DaskTaskRunner`, on a new `LocalCluster` of `workers` processes
  or on the cluster at `--dask-address` (flows/on_dask.py).

Either way the task runs its input in the supervised child process of the thread it runs on
(`pipeline.workers.thread_worker`: started on the thread's first input, reused for the next), so a
record past its hard time budget, or one that kills its process, costs that record wherever it
runs. The flow process gets the outputs back in input order, a bounded window ahead
(`pipeline.in_order`), and commits them itself: commits stay ordered and exactly-once. The same
loop, with a plain thread pool and no Prefect, is the in-process build's (`run_supervised`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from flows.on_dask import dask_runner, worker_may_start_children
from pipeline.config import BuildConfig
from pipeline.in_order import in_input_order
from pipeline.process import UnitOutput
from pipeline.readers import InputUnit
from pipeline.workers import UnitFailure, stop_thread_workers, thread_worker

RUNNERS = ("process", "dask")


def _process_input(unit: InputUnit, cfg: BuildConfig) -> UnitOutput | UnitFailure:
    if multiprocessing.current_process().daemon:
        raise RuntimeError("this Dask worker is a daemon process and cannot start the supervised worker an input "
                           "runs in: start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    out = thread_worker(cfg).run(unit)
    log = get_run_logger()
    if isinstance(out, UnitFailure):
        log.warning("not built, read again by the next build: %s: %s", unit.key, out.error)
    else:
        log.info("%s: %d records, %d docs, %d rejects", unit.key, out.records, len(out.docs), len(out.rejects))
    return out


# Retried once for an exception (a lost Dask worker); a UnitFailure is an answer, not an exception.
process_input = task(_process_input, name="process-input", cache_policy=NO_CACHE, retries=1)


def task_runner(runner: str, workers: int, dask_address: str | None):
    """The Prefect task runner for `runner` (see the module doc); any `dask_address` means Dask."""
    if runner == "dask" or dask_address:
        return dask_runner(dask_address, workers)
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=workers)


def run_as_tasks(units: list[InputUnit], cfg: BuildConfig, workers: int, runner: str = "process",
                 dask_address: str | None = None) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output in input order, each computed by a `process-input` task run."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    on_dask = runner == "dask" or bool(dask_address)
    with (worker_may_start_children() if on_dask else contextlib.nullcontext()), \
            task_runner(runner, workers, dask_address) as tasks:
        try:
            yield from in_input_order(
                units, lambda unit: tasks.submit(process_input, parameters={"unit": unit, "cfg": cfg}),
                2 * max(workers, 1), _lost, size=lambda unit: unit.size_bytes)
        finally:
            stop_thread_workers()  # this process's (the thread runner's); Dask workers' end with them


def _lost(unit: InputUnit, exc: Exception) -> UnitFailure:
    """A task that failed for good (a lost Dask worker or cluster): the input is read again next build."""
    return UnitFailure(unit, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
