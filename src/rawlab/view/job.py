"""Work the viewer does in a worker thread (a filter, the connection table, a ladder):
started, stopped, its progress and its end read by the interface's timer."""

from __future__ import annotations

import threading
from typing import Any

from rawlab.errors import RawlabError


class Job:
    """``run()`` in a daemon thread; ``done`` once it ended, ``error`` (one line) if a
    RawlabError ended it; ``progress[0]``: how far it got; ``stop()`` asks it to end."""

    name = "rawlab-job"

    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None
        self.progress = [0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.run()
        except RawlabError as exc:
            self.error = exc.message
        finally:
            self.done = True

    def run(self) -> None:
        raise NotImplementedError
