"""One build at a time per dataset: a Prefect global concurrency limit named after the dataset.

Two build-corpus runs of one dataset would interleave their commits and near-dedup passes (seen:
one failed in near-dedup and `stats/shards` held every input twice). The limit is per dataset —
the warehouse and the name — so builds of different datasets still run side by side, from any
deployment or the CLI. A second run waits for the slot. Slots are leases that the holder renews,
so a killed run frees its slot when its lease runs out.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import typing
from collections.abc import Callable
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

from flows.run_logger import in_prefect_run, run_logger
from flows.settings import absolute
from warehouse.layout import DatasetPaths


def limit_name(warehouse: str, dataset: str) -> str:
    """`build-<dataset>-<hash of its absolute location>`: readable in the UI, unique per dataset."""
    digest = hashlib.sha1(DatasetPaths(absolute(warehouse), dataset).base.encode()).hexdigest()[:10]
    return f"build-{re.sub(r'[^A-Za-z0-9_.-]', '_', dataset)}-{digest}"


@contextmanager
def dataset_slot(warehouse: str, dataset: str):
    """Hold the dataset's only slot while the block runs (a no-op outside a Prefect run)."""
    if not in_prefect_run():
        yield
        return
    name = limit_name(warehouse, dataset)
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass
    run_logger().info("waiting for concurrency slot %s (one build at a time per dataset)", name)
    with concurrency(name, occupy=1, strict=True):
        yield


def one_build_per_dataset(fn: Callable) -> Callable:
    """Decorate a flow function taking `warehouse` and `dataset` so it runs inside `dataset_slot`."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with dataset_slot(bound.arguments["warehouse"], bound.arguments["dataset"]):
            return fn(*args, **kwargs)

    # Prefect validates parameters against the signature; its string annotations (PEP 563) name
    # types of fn's module, which this module's namespace lacks, so hand over the resolved ones.
    hints = typing.get_type_hints(fn)
    wrapper.__signature__ = signature.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()],
        return_annotation=hints.get("return", signature.return_annotation),
    )
    return wrapper
