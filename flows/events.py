"""The events tokenmill emits to Prefect, which chain its deployments (prefect.yaml's triggers).

`corpus.built`: build-corpus committed a new docs version of a dataset; train-after-build's
`on-corpus-built` deployment is triggered by it. Training chains on this event of our own rather
than on Prefect's flow-run state events: a trigger on `prefect.flow-run.Completed` fires about
15 minutes late for scheduled runs (their Pending event "follows" a Scheduled event that the
scheduler never emits, so the server holds it back waiting for that one).
`model.trained`: train-after-build finished a run; for whatever comes next (evaluation, export).
"""

from __future__ import annotations

from prefect.events import emit_event

CORPUS_BUILT = "corpus.built"
MODEL_TRAINED = "model.trained"
DATASET_RESOURCE = "tokenmill.dataset."  # + the dataset's name


def dataset_resource(warehouse: str, dataset: str) -> dict[str, str]:
    return {"prefect.resource.id": DATASET_RESOURCE + dataset, "prefect.resource.name": dataset,
            "tokenmill.warehouse": warehouse}


def corpus_built(warehouse: str, dataset: str, docs_version: int, build_id: str) -> None:
    emit_event(CORPUS_BUILT, resource=dataset_resource(warehouse, dataset), payload={
        "warehouse": warehouse, "dataset": dataset, "docs_version": docs_version, "build_id": build_id,
    })


def model_trained(warehouse: str, dataset: str, docs_version: int | None, run_dir: str, val_bpb: float | None) -> None:
    run_id = run_dir.rstrip("/").rpartition("/")[2]
    emit_event(
        MODEL_TRAINED,
        resource={"prefect.resource.id": f"tokenmill.run.{run_id}", "prefect.resource.name": run_id},
        related=[{**dataset_resource(warehouse, dataset), "prefect.resource.role": "dataset"}],
        payload={"run_dir": run_dir, "val_bpb": val_bpb, "dataset": dataset, "docs_version": docs_version},
    )
