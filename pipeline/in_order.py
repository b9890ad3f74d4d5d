"""Submit each input unit as a task, get the outputs back in input order: the one loop every runner
of a build shares (a thread pool in the in-process build, Prefect's thread-pool or Dask task runner
in the flow).

Outputs are committed in input order (exact dedup keeps the first copy, a re-run resumes at the
first uncommitted input), so an output finished early waits for the ones before it. The window
bounds that wait: at most `window` units are submitted past the first one not yet handed on, so
finished outputs never pile up in memory behind a slow input.

Given each unit's size, the window widens past `window` (up to WIDEST times it) while the units in
flight hold at most AHEAD_BYTES of input. Crawl files differ in cost by tens of times (one WARC of
forum threads against one of redirects): with a window of two per worker, a worker that finished
the small ones ahead of a slow one sat idle until it was handed on: on 40 of the shared crawl files
a 2-worker build ran 1.3x the 1-worker one, and 1.6x with the wider window. Big inputs (1 GB Common
Crawl WARCs) keep the plain window, so memory still follows `window` outputs; a unit of unknown
size (0) counts as AHEAD_BYTES.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

Unit = TypeVar("Unit")
AHEAD_BYTES = 256 * 2**20
WIDEST = 8


class Future(Protocol):
    """What a submit returns: concurrent.futures.Future and PrefectFuture both are one."""

    def result(self): ...


def in_input_order(units: list[Unit], submit: Callable[[Unit], Future], window: int,
                   failed: Callable[[Unit, Exception], object] | None = None,
                   size: Callable[[Unit], int] | None = None) -> Iterator:
    """Each unit's result, in input order, with up to `window` units submitted at once (more for
    small units, given their `size` in bytes: see the module doc). A task that raises gives
    `failed(unit, exc)` where `failed` is given (the runner lost the task: a dead Dask worker),
    else the exception. Closing the iterator early cancels the tasks not yet started."""
    window = max(1, window)
    weight = (lambda unit: size(unit) or AHEAD_BYTES) if size is not None else (lambda unit: AHEAD_BYTES)
    running: deque[tuple[Unit, Future]] = deque()
    in_flight = 0

    def full() -> bool:
        return len(running) >= window and (in_flight >= AHEAD_BYTES or len(running) >= WIDEST * window)

    try:
        for unit in units:
            running.append((unit, submit(unit)))
            in_flight += weight(unit)
            while running and full():
                done, future = running.popleft()
                in_flight -= weight(done)
                yield _result(done, future, failed)
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
