"""Prefect defaults for running with no server to start by hand."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DATA = Path(os.environ.get("TOKENMILL_HOME", "data"))

DEFAULTS = {
    "PREFECT_HOME": str((PROJECT_DATA / "prefect").resolve()),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The temporary API server needs more than Prefect's default 20 s on a loaded 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def configure_prefect() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect creates its home without parents; a fresh clone has no data/ folder yet.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
