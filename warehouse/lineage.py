"""The code version the warehouse records with what it stores: builds' `code_version`, training
runs' lineage.json."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(short: bool = False) -> str:
    """The commit this code was loaded from; "unknown" outside a repository or before the first commit."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", *(["--short"] if short else []), "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
