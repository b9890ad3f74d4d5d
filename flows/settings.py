"""Prefect defaults for running with no server to start by hand, and the paths deployments use."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from warehouse.layout import DEFAULT_ROOT

PROJECT_DATA = Path(os.environ.get("TOKENMILL_HOME", "data"))
REPO = Path(__file__).resolve().parent.parent
# The bundled real crawl sample (sample/README.md) that `make demo` and `build-corpus/daily` build.
SAMPLE_INPUTS = [str(REPO / "sample" / "warc"), str(REPO / "sample" / "html")]
# Training budget of train-after-build when TOKENMILL_TRAIN_MAX_SECONDS is unset: what `make demo` trains.
DEFAULT_TRAIN_SECONDS = 120.0

DEFAULTS = {
    "PREFECT_HOME": str((PROJECT_DATA / "prefect").resolve()),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The temporary API server needs more than Prefect's default 20 s on a loaded 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # The terminal shows tokenmill's own tables and progress bars, and Prefect's warnings; the run
    # logs still reach the API (its handler has no level of its own) at Prefect's default, INFO.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
}


def dask_address(address: str | None) -> str | None:
    """The Dask scheduler to use: `address`, else TOKENMILL_DASK_ADDRESS, else none (no Prefect import)."""
    return address or os.environ.get("TOKENMILL_DASK_ADDRESS") or None


def absolute(path: str) -> str:
    """A local path made absolute (a flow run's working directory is not the caller's); URLs as given."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def warehouse_root() -> str:
    """Where the demo and the deployments keep their warehouse: TOKENMILL_WAREHOUSE (docker-compose
    sets it), else the CLI's default; always absolute."""
    return absolute(os.environ.get("TOKENMILL_WAREHOUSE", DEFAULT_ROOT))


def train_max_seconds() -> float:
    """The training budget of a train-after-build run: TOKENMILL_TRAIN_MAX_SECONDS, else DEFAULT_TRAIN_SECONDS."""
    return float(os.environ.get("TOKENMILL_TRAIN_MAX_SECONDS") or DEFAULT_TRAIN_SECONDS)


def configure_prefect() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect creates its home without parents; a fresh clone has no data/ folder yet.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


def prefect_api_configured() -> bool:
    """True when Prefect would talk to a real API: PREFECT_API_URL in the environment, in the active
    profile of $PREFECT_HOME/profiles.toml, or in ./prefect.toml. Read here with tomllib because
    importing Prefect's settings alone costs 1.5 CPU-seconds (a `.env` file is not consulted)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    profiles = _toml(Path(os.environ.get("PREFECT_PROFILES_PATH")
                          or Path(os.environ["PREFECT_HOME"]).expanduser() / "profiles.toml"))
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    if profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"):
        return True
    return bool(_toml(Path("prefect.toml")).get("api", {}).get("url"))


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


# prefect.yaml's build steps read the deployments' values here, so they are written down once:
# `python -m flows.settings warehouse|repo` prints one value.
VALUES = {"warehouse": warehouse_root, "repo": lambda: str(REPO)}

if __name__ == "__main__":
    print(VALUES[sys.argv[1]]())
