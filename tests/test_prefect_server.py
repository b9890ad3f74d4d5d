"""The README's server path, as a new user runs it, against a real `prefect server start` on loopback,
on SQLite and — as docker-compose runs it — on PostgreSQL: create the work pool, deploy prefect.yaml,
start a worker, run `build-corpus/daily`, and see the train-after-build run that its `corpus.built`
event triggers complete (with a training budget of a few seconds, from TOKENMILL_TRAIN_MAX_SECONDS).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.prefect_stack import PG_USER, pg, postgres_database, prefect_server, start, stop

REPO = Path(__file__).resolve().parent.parent
# The README's commands, word for word (checked below); run with this interpreter's `prefect`.
POOL = "prefect work-pool create tokenmill --type process"
DEPLOY = "prefect --no-prompt deploy --all"
WORKER = "prefect worker start --pool tokenmill"
RUN = "prefect deployment run build-corpus/daily"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.slow


def prefect(command: str) -> list[str]:
    return [sys.executable, "-m", *command.split()]


def test_the_readme_gives_these_commands():
    readme = (REPO / "README.md").read_text()
    for command in (POOL, DEPLOY, WORKER, RUN, "prefect server start"):
        assert command in readme


def client_env(server, tmp_path: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)  # prefect.yaml's build steps run `python`
    return {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "PREFECT_API_URL": server.api,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "TOKENMILL_HOME": str(tmp_path / "home"),
        "TOKENMILL_WAREHOUSE": str(tmp_path / "warehouse"),
        "TOKENMILL_TRAIN_MAX_SECONDS": "3",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


def flow_runs(server) -> dict[str, dict]:
    runs = server.call("POST", "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"})
    flows = {f["id"]: f["name"] for f in server.call("POST", "/flows/filter", {})}
    return {flows[r["flow_id"]]: r for r in runs if r["state_type"] != "SCHEDULED"}


def wait_for_training(server, worker_log: Path, timeout: float = 420) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = flow_runs(server)
        failed = [name for name, r in runs.items() if r["state_type"] in FINAL - {"COMPLETED"}]
        if failed or runs.get("train-after-build", {}).get("state_type") in FINAL:
            assert not failed, f"{failed} did not complete:\n" + worker_log.read_text()[-4000:]
            return runs
        time.sleep(1)
    pytest.fail(f"no completed train-after-build run after {timeout:.0f} s: {runs}\n" + worker_log.read_text()[-4000:])


def readme_path(server, tmp_path: Path) -> dict[str, dict]:
    import subprocess

    env = client_env(server, tmp_path)
    for command in (POOL, DEPLOY):
        done = subprocess.run(prefect(command), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    worker_log = tmp_path / "worker.log"
    worker = start(prefect(WORKER), worker_log, cwd=tmp_path, env=env)
    try:
        done = subprocess.run(prefect(RUN), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs = wait_for_training(server, worker_log)
    finally:
        stop(worker)  # before the server: a worker outliving its server retries for ever
    return runs


def events_named(server, name: str, timeout: float = 60) -> list[dict]:
    """The server's events of that name. The server persists events in batches, a few seconds after
    they arrive, so one emitted as a flow run ends may not be readable yet when the run shows COMPLETED."""
    deadline = time.monotonic() + timeout
    while True:
        found = server.call("POST", "/events/filter", {"filter": {"event": {"name": [name]}}})["events"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def check_runs(server, runs: dict[str, dict], tmp_path: Path) -> None:
    warehouse = str(tmp_path / "warehouse")
    build, train = runs["build-corpus"], runs["train-after-build"]
    assert build["state_type"] == train["state_type"] == "COMPLETED"
    assert build["parameters"]["warehouse"] == warehouse  # absolute, from TOKENMILL_WAREHOUSE
    assert all(Path(p).is_absolute() for p in build["parameters"]["inputs"])
    # The trigger rendered the event into parameters: exactly the version the build committed.
    built = events_named(server, "corpus.built")
    assert len(built) == 1
    payload = built[0]["payload"]
    assert payload["warehouse"] == warehouse and payload["dataset"] == "sample"
    assert train["parameters"]["dataset"] == f"{warehouse}/sample"
    assert str(train["parameters"]["version"]) == str(payload["docs_version"])
    assert train["parameters"]["build_id"] == payload["build_id"]
    assert "max_seconds" not in train["parameters"]  # the budget came from the worker's environment

    trained = events_named(server, "model.trained")
    assert len(trained) == 1
    run_dir = Path(trained[0]["payload"]["run_dir"])
    assert run_dir.parent == tmp_path / "warehouse" / "runs" and (run_dir / "metrics.parquet").is_file()
    assert trained[0]["payload"]["val_bpb"] > 0
    assert json.loads((run_dir / "lineage.json").read_text())["config"]["max_seconds"] == 3

    keys = {a["key"] for a in server.call("POST", "/artifacts/filter", {}) if a["key"]}
    assert {"sample-funnel", "sample-data-card", "sample-training"} <= keys
    logs = server.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [build["id"]]},
                                                         "level": {"ge_": 20}}})
    assert any("docs version" in log["message"] for log in logs)  # run logs reach the server at INFO
    limits = [limit["name"] for limit in server.call("POST", "/v2/concurrency_limits/filter", {})]
    assert any(name.startswith("build-sample-") for name in limits)


def test_readme_server_path_on_sqlite(tmp_path):
    with prefect_server(tmp_path / "server", f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}") as server:
        check_runs(server, readme_path(server, tmp_path), tmp_path)


def test_readme_server_path_on_postgresql(tmp_path):
    with postgres_database() as database:
        url = f"postgresql+asyncpg://{PG_USER}@127.0.0.1:5432/{database}"
        with prefect_server(tmp_path / "server", url) as server:
            check_runs(server, readme_path(server, tmp_path), tmp_path)
            # Read back from PostgreSQL itself: Prefect keeps tokenmill's runs there, subflow included.
            rows = pg(database, "SELECT flow.name, flow_run.state_type::text AS state FROM flow_run "
                                "JOIN flow ON flow.id = flow_run.flow_id WHERE flow_run.state_type != 'SCHEDULED'")
            assert {(r["name"], r["state"]) for r in rows} == {
                ("build-corpus", "COMPLETED"), ("near-dedup", "COMPLETED"), ("train-after-build", "COMPLETED")}
