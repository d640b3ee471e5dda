"""Items made by a thread ahead of their consumer: the one read-ahead loop.

    for batch in prefetch(source_batches, 2, name="rawlab-read-ahead"):
        ...

Used where the producer spends its time outside the GIL (reading a file or a socket,
compiled loops): a netlink dump's datagrams (sockets/netlink.py) and a capture file's
batches of columns (decode/columns.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int, *, name: str,
             join_timeout: float = 2.0) -> Iterator[T]:
    """`items`, made by a thread at most `depth` ahead of the one taken. The order, and
    an exception after every item before it, are those of `items` (the exception is
    raised in the consumer's thread). Closing this iterator (a ``break``, Ctrl-C, an
    error) stops the thread after the item it is making and waits `join_timeout` seconds
    for it; `items` is then closed. A thread still blocked (a read on a pipe that never
    returns) is a daemon: `items` is left to it."""
    import queue
    import threading

    q: queue.Queue[tuple[int, object]] = queue.Queue(depth)
    stop = threading.Event()
    item, done, failed = 0, 1, 2

    def put(entry: tuple[int, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((item, x)):
                    return
        except BaseException as exc:  # handed over: raised in the consumer's thread
            put((failed, exc))
            return
        put((done, None))

    t = threading.Thread(target=produce, name=name, daemon=True)
    t.start()
    try:
        while True:
            kind, x = q.get()
            if kind == failed:
                raise x  # type: ignore[misc]
            if kind == done:
                return
            yield x  # type: ignore[misc]
    finally:
        stop.set()
        t.join(timeout=join_timeout)
        close = getattr(items, "close", None)
        if close is not None and not t.is_alive():
            close()
