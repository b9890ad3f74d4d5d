"""The server that build worker processes are forked from (multiprocessing's forkserver), which has
imported the pipeline once so that each worker starts without importing it again.

Kept free of heavy imports so the CLI can start the server first thing: it imports the pipeline
(about half a CPU-second) on another core while the CLI imports and checks its own copy, instead of
after it, which the workers' first input would otherwise wait for.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

PRELOAD = ["pipeline.process"]


def forkserver_context() -> BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_forkserver() -> None:
    """Start the server now (it would start with the first worker); a no-op once it runs."""
    from multiprocessing import forkserver

    forkserver_context()
    forkserver.ensure_running()
