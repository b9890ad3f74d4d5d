"""The loop every runner shares: outputs in input order, a bounded number of units in flight."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from pipeline.in_order import AHEAD_BYTES, WIDEST, in_input_order


def _run(sizes: list[int], window: int, sized: bool) -> tuple[list[int], int]:
    """Unit 0 blocks until every other unit that may run has run; how far past it they got."""
    started: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def work(i: int) -> int:
        if i == 0:
            release.wait(timeout=2)  # the slow input at the head of the queue
        with lock:
            started.append(i)
        return i

    with ThreadPoolExecutor(2) as pool:
        def submit(i: int):
            future = pool.submit(work, i)
            return future

        results = in_input_order(list(range(len(sizes))), submit, window,
                                 size=(lambda i: sizes[i]) if sized else None)
        first = next(results)  # waits for unit 0, which waits out its 2 s
        ahead = max(started)
        release.set()
        order = [first, *results]
    return order, ahead


def test_outputs_come_in_input_order_and_the_plain_window_bounds_units_in_flight():
    order, ahead = _run([10**6] * 40, window=4, sized=False)
    assert order == list(range(40))
    assert ahead == 3  # units 1-3 ran while unit 0 held the head: window 4


def test_small_inputs_widen_the_window_so_a_worker_is_not_idle_behind_a_slow_one():
    order, ahead = _run([10**6] * 40, window=4, sized=True)
    assert order == list(range(40))
    assert ahead == WIDEST * 4 - 1  # 1 MB inputs: up to WIDEST windows ahead


def test_big_or_unsized_inputs_keep_the_plain_window():
    big = AHEAD_BYTES // 2
    assert _run([big] * 12, window=4, sized=True)[1] == 3
    assert _run([0] * 12, window=4, sized=True)[1] == 3  # unknown size counts as big
