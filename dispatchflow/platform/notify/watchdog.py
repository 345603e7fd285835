"""A watchdog that stops a render running past its CPU budget, whatever it is doing.

The sandbox checks its deadline between template operations (:func:`.sandbox.tick`),
so one long call in between (a filter working through a 60 000-character value)
could overrun it by that call's duration. The watchdog closes that gap: one
daemon thread per process reads the CPU clock of every thread that armed it
(``pthread_getcpuclockid``: time waiting for the database or for a busy machine
does not count) and, once a thread is past its budget, raises
:class:`RenderInterrupted` in it with ``PyThreadState_SetAsyncExc``. No signals,
so it works in any thread.

An asynchronous exception arrives between two bytecodes: it cannot cut a C call
short, which is why the sandbox also caps what one call may get (field values,
sizes; no ``urlize``). It derives from BaseException so that the template's and
Jinja's ``except Exception`` clauses let it through; :func:`.sandbox.limits`
turns it into RenderLimitExceeded.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass, field

from .. import defaults


class RenderInterrupted(BaseException):
    """Raised in a rendering thread by the watchdog when its CPU budget is spent."""


@dataclass(eq=False)
class Watch:
    """One armed budget: the thread, its CPU clock and the deadline on that clock."""

    ident: int
    clock: int
    deadline: float
    fired: bool = field(default=False)


class Watchdog:
    """Armed budgets and the thread that enforces them (see module docs)."""

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self._cond = threading.Condition()
        self._armed: set[Watch] = set()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Watch:
        """Start enforcing a budget of ``seconds`` of CPU time on the calling thread."""
        ident = threading.get_ident()
        clock = time.pthread_getcpuclockid(ident)
        watch = Watch(ident, clock, time.clock_gettime(clock) + seconds)
        with self._cond:
            self._armed.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="render-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return watch

    def disarm(self, watch: Watch) -> None:
        """Stop enforcing ``watch``; an interruption it sent and not yet raised is withdrawn.

        Idempotent. Call it again if RenderInterrupted arrives while it runs.
        """
        with self._cond:
            self._armed.discard(watch)
            if watch.fired:
                _set_async_exc(watch.ident, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._armed:
                    self._cond.wait()
                for watch in self._armed:
                    if not watch.fired and _cpu_time(watch.clock) > watch.deadline:
                        watch.fired = True
                        _set_async_exc(watch.ident, RenderInterrupted)
            time.sleep(self.poll)


def _cpu_time(clock: int) -> float:
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread has ended: nothing left to stop
        return float("-inf")


def _set_async_exc(ident: int, exc: type[BaseException] | None) -> None:
    # NULL withdraws a pending exception; py_object(None) would be the None object.
    arg = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), arg)


#: The process's watchdog, shared by every rendering thread.
WATCHDOG = Watchdog(defaults.NOTIFY_WATCHDOG_POLL)
