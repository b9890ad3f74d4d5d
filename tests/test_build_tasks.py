"""One execution path: the flow runs each input as a `process-input` Prefect task (one task run per
input, recorded by the API) on Prefect's thread-pool runner, each thread supervising a worker
process; the dataset equals the in-process build's, which runs the same supervised workers on a
plain thread pool without Prefect."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flows.build_corpus import build_corpus
from flows.build_steps import run_build
from pipeline.config import BuildConfig
from warehouse.layout import DatasetPaths

from tests.test_build_dask import dataset_rows

REPO = Path(__file__).resolve().parent.parent
INPUTS = sorted(str(p) for p in (REPO / "sample" / "warc").iterdir()) + [str(REPO / "sample" / "html")]


def process_input_runs(flow_run_id, expected: int, timeout: float = 60) -> list:
    """The flow run's `process-input` task runs. The server records task runs from the events the
    client sends, in batches, so the last ones may appear a few seconds after the flow ends."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            inputs = [r for r in runs if r.task_key.startswith("process-input") or r.name.startswith("process-input")]
            done = [r for r in inputs if r.state_type is not None and r.state_type.value == "COMPLETED"]
            if len(done) >= expected or time.monotonic() > deadline:
                return inputs


@pytest.mark.slow
def test_the_flow_runs_each_input_as_a_task_and_builds_the_in_process_dataset(tmp_path):
    cfg = BuildConfig(workers=2)
    units = 6  # 4 WARC files and 2 HTML pages
    state = build_corpus(INPUTS, warehouse=str(tmp_path), dataset="flow", config=cfg, progress=False,
                         return_state=True)
    summary = state.result()
    assert summary.inputs == units and summary.failed == []
    runs = process_input_runs(state.state_details.flow_run_id, units)
    assert len(runs) == units, [r.name for r in runs]
    assert {r.state_type.value for r in runs} == {"COMPLETED"}

    in_process = run_build(INPUTS, DatasetPaths(str(tmp_path), "plain"), cfg, progress=False)
    assert in_process.failed == [] and in_process.inputs == units
    flow_rows, plain_rows = dataset_rows(DatasetPaths(str(tmp_path), "flow")), dataset_rows(DatasetPaths(str(tmp_path), "plain"))
    assert flow_rows["docs"].height > 0 and flow_rows["shards"].height == units
    for table in plain_rows:
        assert flow_rows[table].equals(plain_rows[table]), table
