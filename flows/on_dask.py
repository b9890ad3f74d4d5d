"""Inputs of a build as Prefect tasks on a Dask cluster: a `LocalCluster` on this machine, or an
existing cluster by its scheduler address (`--dask-address`, or TOKENMILL_DASK_ADDRESS).

Each input is one `process-input` task run (its state, retries and logs per input in the Prefect
UI). The task runs the input in a supervised child process of its Dask worker
(`pipeline.workers.run_supervised`), so a record past its hard time budget, or one that kills its
process, costs that record on a cluster as it does on one machine. Dask workers must therefore be
allowed children: a LocalCluster made here is; an existing cluster's workers need
`DASK_DISTRIBUTED__WORKER__DAEMON=False` (see README). The flow process gets the outputs back in
input order, a bounded window ahead, and commits them itself: commits stay ordered and exactly-once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.settings import dask_address  # noqa: F401 - the one "address or TOKENMILL_DASK_ADDRESS"
from pipeline.config import BuildConfig
from pipeline.process import UnitOutput
from pipeline.readers import InputUnit
from pipeline.workers import UnitFailure, run_supervised


def dask_runner(address: str | None, workers: int):
    """prefect-dask's runner: on the cluster at `address`, else on a new LocalCluster of `workers`
    single-threaded worker processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": ":0"})


def _process_input(unit: InputUnit, cfg: BuildConfig) -> UnitOutput | UnitFailure:
    if multiprocessing.current_process().daemon:
        raise RuntimeError("this Dask worker is a daemon process and cannot start the supervised worker an input "
                           "runs in: start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    (out,) = run_supervised([unit], cfg, 1)
    return out


process_input = task(_process_input, name="process-input", cache_policy=NO_CACHE, retries=1)


def run_on_dask(units: list[InputUnit], cfg: BuildConfig, workers: int,
                address: str | None) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output in input order, computed as `process-input` tasks on Dask workers."""
    import dask

    # Worker processes that may start children (the supervised process each input runs in).
    with dask.config.set({"distributed.worker.daemon": False}), dask_runner(address, workers) as runner:
        futures: dict[int, object] = {}
        window = 2 * max(workers, 1)  # outputs waiting to be committed in order never pile up
        for i, unit in enumerate(units):
            futures[i] = runner.submit(process_input, parameters={"unit": unit, "cfg": cfg})
            if i - window + 1 in futures:
                yield _result(futures.pop(i - window + 1), units[i - window + 1])
        for i in sorted(futures):
            yield _result(futures.pop(i), units[i])


def _result(future, unit: InputUnit) -> UnitOutput | UnitFailure:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost worker or cluster: the input is read again next build
        return UnitFailure(unit, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
