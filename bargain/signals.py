"""How SIGINT and SIGTERM stop a job: outside the event loop they raise :class:`Stopped`.

While games run, the runner handles both signals itself (cancel the calls in flight, record the
games they cut short as interrupted); before and after that, and a second time, a signal raises
Stopped, which the command line reports in one line.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived outside the games, or a second time: the job stops at once."""

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def _raise(signum: int, _frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals(handler: Callable[[int, Any], None] = _raise) -> Iterator[None]:
    """Within this block, SIGINT and SIGTERM go to ``handler``, by default raising Stopped (only the main
    thread can handle signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
