"""The logger of the current Prefect run, so what a flow says reaches the server and the UI.

Outside a run (a flow's `.fn` called directly, a unit test of a helper) it is the plain
`tokenmill` logger. Progress bars stay on the terminal: they are rich, not log lines.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger


def in_prefect_run() -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    return get_run_logger() if in_prefect_run() else logging.getLogger("tokenmill")
