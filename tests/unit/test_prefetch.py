"""rawlab.prefetch: the order, the error after the items before it, and the thread's end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from rawlab.prefetch import prefetch

pytestmark = pytest.mark.unit


class Boom(Exception):
    pass


def _made(n: int, fail: bool, log: list[str]) -> Iterator[int]:
    try:
        for i in range(n):
            log.append(threading.current_thread().name)
            yield i
        if fail:
            raise Boom(f"after {n}")
    finally:
        log.append("closed")


def test_order_then_the_error_in_the_consumers_thread() -> None:
    log: list[str] = []
    got: list[int] = []
    with pytest.raises(Boom, match="after 50"):
        for x in prefetch(_made(50, True, log), 3, name="t-ahead"):
            got.append(x)
    assert got == list(range(50))
    assert set(log[:-1]) == {"t-ahead"} and log[-1] == "closed"


def test_a_consumer_that_stops_stops_the_thread_and_closes_the_items() -> None:
    before = threading.active_count()
    log: list[str] = []
    it = prefetch(_made(10_000, False, log), 2, name="t-ahead")
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    time.sleep(0.05)  # the thread has filled the queue and waits
    made = log.count("t-ahead")
    assert made <= 5 + 2 + 1  # taken, queued, and one being put
    it.close()
    assert log[-1] == "closed" and threading.active_count() == before


def test_nothing_runs_before_the_first_item_is_asked_for() -> None:
    log: list[str] = []
    it = prefetch(_made(3, False, log), 2, name="t-ahead")
    time.sleep(0.02)
    assert log == []
    assert list(it) == [0, 1, 2] and log[-1] == "closed"
