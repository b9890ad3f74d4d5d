"""A dataset's writer lock held by another process, as a concurrent build holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.layout import DatasetPaths

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def lock_held_elsewhere(ds: DatasetPaths, holder: str) -> Iterator[subprocess.Popen]:
    """Yields once the other process holds the lock; kills it on the way out (if the test has not)."""
    code = ("import time; from warehouse.layout import DatasetPaths; from warehouse.lock import writer_lock\n"
            f"with writer_lock(DatasetPaths({ds.root!r}, {ds.name!r}), {holder!r}):\n"
            "    print('held', flush=True); time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
