"""The `decontaminate` flow: documents sharing an n-gram with evaluation sets leave the dataset.

Run on its own (`tokenmill decontaminate DIR/NAME --against FILE...`) or as the last step of
`build-corpus` when the build config names evaluation files (`[decontaminate] against = [...]`).
The n-gram index is built once per run, in this process; the docs table is streamed past it.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.build_steps import log_decontamination
from flows.run_logger import run_logger
from pipeline.config import DecontaminateConfig
from pipeline.decontaminate import DecontaminationReport, NgramIndex, decontaminate_dataset
from warehouse.layout import DatasetPaths

build_index = task(NgramIndex.build, name="decontamination-index", cache_policy=NO_CACHE)
remove_matches = task(decontaminate_dataset, name="decontaminate-docs", cache_policy=NO_CACHE)


@flow(name="decontaminate")
def decontaminate(
    ds: DatasetPaths, cfg: DecontaminateConfig, build_id: str | None = None, progress: bool = True
) -> DecontaminationReport:
    index = build_index(cfg.against, cfg.ngram, progress)
    report = remove_matches(ds, index, build_id, progress)
    log_decontamination(run_logger(), ds, report)
    return report
