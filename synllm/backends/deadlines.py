"""Request deadlines: one daemon thread cuts the connection of any request still running at its deadline.

A timer thread per request cost more than a loopback request itself; here every deadline
sits in one heap served by one thread, so arming and cancelling cost a lock and a heap push.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any


def deadline_watchdog(response: Any, remaining: float, expired: threading.Event) -> _Alarm:
    """An alarm that cuts the connection when the deadline passes (a blocked read then fails at once)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def cut() -> None:
        expired.set()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        else:  # a transport without a socket (tests): closing is the best that can be done
            with contextlib.suppress(Exception):
                response.close()

    return _DEADLINES.arm(remaining, cut)


class _Alarm:
    """One armed deadline; ``cancel()`` before it fires and it never will."""

    __slots__ = ("action", "owner")

    def __init__(self, action: Callable[[], None], owner: _Deadlines) -> None:
        self.action: Callable[[], None] | None = action
        self.owner = owner

    def cancel(self) -> None:
        self.owner.cancel(self)


class _Deadlines:
    """One daemon thread for every request deadline (a thread per request cost more than the request).

    Alarms sit in a heap by deadline; the thread sleeps until the earliest, runs its action
    unless it was cancelled, and wakes early only when a sooner deadline is armed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._cancelled = 0
        self._thread: threading.Thread | None = None

    def arm(self, delay: float, action: Callable[[], None]) -> _Alarm:
        alarm = _Alarm(action, self)
        with self._cond:
            deadline = time.monotonic() + max(delay, 0.0)
            sooner = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="synllm-deadlines", daemon=True)
                self._thread.start()
            elif sooner:
                self._cond.notify()
        return alarm

    def cancel(self, alarm: _Alarm) -> None:
        with self._cond:
            if alarm.action is None:
                return
            alarm.action = None
            self._cancelled += 1
            if self._cancelled > 64 and 2 * self._cancelled > len(self._heap):  # drop the dead weight
                self._heap = [entry for entry in self._heap if entry[2].action is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, alarm = self._heap[0]
                if alarm.action is None:
                    heapq.heappop(self._heap)
                    self._cancelled = max(self._cancelled - 1, 0)
                    continue
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                action, alarm.action = alarm.action, None
                action()


_DEADLINES = _Deadlines()
