"""Shared fixtures. Tests on ../shared/data find it through TOKENMILL_SHARED_DATA (default
../shared/data next to the repo); they skip with a reason where it is absent, and fail under CI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Flows under test talk to their own temporary Prefect API, never the user's (set before prefect loads).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="tokenmill-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SAMPLE = REPO / "sample"


def _shared_data_dir() -> Path:
    return Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not path.is_dir():
        message = f"shared test data not found at {path} (set TOKENMILL_SHARED_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI always has it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


def _build_plain(inputs: list[str], ds, cfg) -> None:
    """A build's per-input processing and commits, in this process, without Prefect or near dedup:
    for tests that need a real built dataset fast."""
    from flows.build_steps import commit_inputs, group_tables, run_units, unit_tables
    from pipeline.readers import expand_inputs

    for out in run_units(expand_inputs(inputs), cfg, workers=1):
        tables = group_tables([(out, unit_tables(out, "test-build", cfg.quality.keep_rejected_text))], None, "test-build")
        commit_inputs(ds, [out.unit.key], tables)


@pytest.fixture(scope="session")
def build_plain():
    return _build_plain


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` skip, saying why, where torch sees no GPU (CI never has one)."""
    cuda_tests = [item for item in items if "cuda" in item.keywords]
    if not cuda_tests:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU; torch sees none here")
        for item in cuda_tests:
            item.add_marker(skip)
