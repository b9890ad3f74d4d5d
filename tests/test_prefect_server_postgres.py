"""The stack docker-compose.yml describes, without Docker: a Prefect server on PostgreSQL, and a
`tokenmill build` that reports its `build-corpus` flow run to it. The run's final state is read
back from PostgreSQL itself, so the test shows that Prefect keeps tokenmill's runs there.

PostgreSQL is the project's own (127.0.0.1:5432, trust auth, as on every machine of the project,
CI's included); the test creates a database of its own and drops it afterwards. Where no
PostgreSQL answers the test skips, and under CI=true it fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, os.environ.get("TOKENMILL_PG_USER", "postgres")
SAMPLE_WARC = REPO / "sample" / "warc" / "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz"


def _pg(database: str, statement: str, *args):
    import asyncpg

    async def run():
        connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
        try:
            return await connection.fetch(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture
def postgres_database():
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError:
        message = f"no PostgreSQL at {PG_HOST}:{PG_PORT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI always has it")
        pytest.skip(message)
    name = f"tokenmill_prefect_{uuid.uuid4().hex[:8]}"
    _pg("test", f'CREATE DATABASE "{name}"')
    yield name
    _pg("test", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_server(postgres_database, tmp_path):
    """`prefect server start` on PostgreSQL, as the compose file's prefect-server service runs it."""
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "server-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{postgres_database}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("Prefect server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield api, postgres_database
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_a_build_reports_its_flow_run_to_a_prefect_server_on_postgresql(prefect_server, tmp_path):
    api, database = prefect_server
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home"),
           "TOKENMILL_HOME": str(tmp_path / "home")}
    build = subprocess.run(
        [sys.executable, "-m", "flows.cli", "build", str(SAMPLE_WARC), "--warehouse", str(tmp_path / "wh"),
         "--dataset", "pg"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]

    runs = _pg(database, """
        SELECT flow.name, flow_run.state_type::text AS state, flow_run.parameters::text AS parameters
        FROM flow_run JOIN flow ON flow.id = flow_run.flow_id ORDER BY flow_run.created
    """)
    by_flow = {row["name"]: row for row in runs}
    assert by_flow["build-corpus"]["state"] == "COMPLETED"
    assert SAMPLE_WARC.name in by_flow["build-corpus"]["parameters"]
    assert by_flow["near-dedup"]["state"] == "COMPLETED"  # the subflow, recorded on the same server
    tasks = _pg(database, "SELECT task_run.name FROM task_run")
    assert any(row["name"].startswith("dedup-sign-shard") for row in tasks)
