"""A real `prefect server start` on loopback for tests, on SQLite or on the machine's PostgreSQL, and
the processes around it. Every process is started here and stopped here, by its PID.

PostgreSQL is the project's own (127.0.0.1:5432, trust auth, as on every machine of the project,
CI's included): a test gets a database of its own, dropped afterwards. Where no PostgreSQL
answers the test skips, and under CI=true it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, os.environ.get("TOKENMILL_PG_USER", "postgres")


def pg(database: str, statement: str, *args):
    import asyncpg

    async def run():
        connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
        try:
            return await connection.fetch(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


@contextmanager
def postgres_database():
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError:
        message = f"no PostgreSQL at {PG_HOST}:{PG_PORT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI always has it")
        pytest.skip(message)
    name = f"tokenmill_prefect_{uuid.uuid4().hex[:8]}"
    pg("test", f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        pg("test", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM and wait (a worker hands back its runs and exits); SIGKILL if it will not. Then the
    rest of its process group (flow-run processes a worker started) by the group's id."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """A long-running process in a session of its own (so `stop` reaches its children), output to `log`."""
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


class PrefectServer:
    def __init__(self, api: str, process: subprocess.Popen, log: Path):
        self.api, self.process, self.log = api, process, log

    def call(self, method: str, path: str, body: dict | None = None, attempts: int = 3):
        """One API call (the tests make only reads and the health check, so asking again is safe).
        A call that times out is asked again, twice: the server shares 2 cores with the worker's
        build and training run, and once on CI a read of the flow runs took over 30 s."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"null")
            except TimeoutError:
                if attempt == attempts - 1 or self.process.poll() is not None:
                    raise


@contextmanager
def prefect_server(home: Path, database_url: str, startup_timeout: float = 180):
    """`prefect server start` on 127.0.0.1 and a free port, as docker-compose's prefect-server runs it."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    process = start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    log, env=env)
    server = PrefectServer(f"http://127.0.0.1:{port}/api", process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if server.call("GET", "/health") is True:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Prefect server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        yield server
    finally:
        stop(process)
