"""Deployments a Prefect server runs: `build-corpus/<name>` and `train-after-build/<name>`.

`tokenmill serve` (what docker-compose.yml starts) registers them with the server in
PREFECT_API_URL and runs their flow runs in this process, so `prefect deployment run
build-corpus/sample` builds the bundled sample into the warehouse.
"""

from __future__ import annotations

from prefect import serve

from flows.build_corpus import build_corpus
from flows.settings import SAMPLE_INPUTS, warehouse_root
from flows.train_after_build import train_after_build


def serve_deployments(name: str = "sample", inputs: list[str] | None = None, warehouse: str | None = None) -> None:
    warehouse = warehouse or warehouse_root()
    inputs = inputs or SAMPLE_INPUTS
    serve(
        build_corpus.to_deployment(name=name, parameters={"inputs": inputs, "warehouse": warehouse, "dataset": name}),
        train_after_build.to_deployment(name=name, parameters={"dataset": f"{warehouse}/{name}"}),
    )
