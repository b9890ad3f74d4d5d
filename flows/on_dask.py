"""Dask for a build's inputs: a `LocalCluster` on this machine, or an existing cluster by its
scheduler address (`--dask-address`, or TOKENMILL_DASK_ADDRESS).

The inputs run as `process-input` tasks through prefect-dask (flows/input_tasks.py), each in a
supervised child process of its Dask worker's thread, kept for that thread's next inputs. Dask
workers must therefore be allowed children: a LocalCluster made here is; an existing cluster's
workers need `DASK_DISTRIBUTED__WORKER__DAEMON=False` (see README).
"""

from __future__ import annotations

import contextlib

from flows.settings import dask_address  # noqa: F401 - the one "address or TOKENMILL_DASK_ADDRESS"


def dask_runner(address: str | None, workers: int):
    """prefect-dask's runner: on the cluster at `address`, else on a new LocalCluster of `workers`
    single-threaded worker processes."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": ":0"})


@contextlib.contextmanager
def worker_may_start_children():
    """Dask worker processes started meanwhile (a LocalCluster's) may start the supervised child an
    input runs in. Without Dask installed there is nothing to set."""
    try:
        import dask
    except ImportError:
        yield
        return
    with dask.config.set({"distributed.worker.daemon": False}):
        yield
