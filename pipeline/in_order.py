"""Submit each input unit as a task, get the outputs back in input order: the one loop every runner
of a build shares (a thread pool in the in-process build, Prefect's thread-pool or Dask task runner
in the flow).

Outputs are committed in input order (exact dedup keeps the first copy, a re-run resumes at the
first uncommitted input), so an output finished early waits for the ones before it. The window
bounds that wait: at most `window` units are submitted past the first one not yet handed on, so
finished outputs never pile up in memory behind a slow input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

Unit = TypeVar("Unit")


class Future(Protocol):
    """What a submit returns: concurrent.futures.Future and PrefectFuture both are one."""

    def result(self): ...


def in_input_order(units: list[Unit], submit: Callable[[Unit], Future], window: int,
                   failed: Callable[[Unit, Exception], object] | None = None) -> Iterator:
    """Each unit's result, in input order, with up to `window` units submitted at once. A task that
    raises gives `failed(unit, exc)` where `failed` is given (the runner lost the task: a dead Dask
    worker), else the exception. Closing the iterator early cancels the tasks not yet started."""
    running: deque[tuple[Unit, Future]] = deque()
    try:
        for unit in units:
            running.append((unit, submit(unit)))
            if len(running) >= max(1, window):
                yield _result(*running.popleft(), failed)
        while running:
            yield _result(*running.popleft(), failed)
    finally:
        for _, future in running:
            cancel = getattr(future, "cancel", None)
            if cancel is not None:
                cancel()


def _result(unit: Unit, future: Future, failed: Callable | None):
    if failed is None:
        return future.result()
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - handed to `failed`, which says what it means for the unit
        return failed(unit, exc)
