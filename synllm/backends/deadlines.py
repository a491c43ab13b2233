"""Request deadlines: one deadline per request covers connecting, the headers and the body.

:func:`request_deadline` opens a deadline for the request made in this thread. Two things
hold it. Every network read, write and connect of the HTTP layer goes through
:func:`bounded_network`, which gives each call at most the time left (so a server that
trickles header bytes cannot stretch a request), and registers the socket in use; a name
lookup or a connect that hangs is given up by the deadline too (:mod:`~synllm.backends.connects`). And one
daemon thread, the watchdog, shuts that socket down when the deadline passes, so a read
blocked anywhere fails at once. A timer thread per request cost more than a loopback
request itself; here every deadline sits in one heap served by one thread, so arming and
cancelling cost a lock and a heap push.

:func:`interrupt_requests` (Ctrl-C) cuts every request in progress and refuses new
attempts until :func:`resume_requests`, so worker threads end within moments whatever
the servers do.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_local = threading.local()
_active: set[Deadline] = set()
_active_lock = threading.Lock()
_interrupted = threading.Event()


class Deadline:
    """One request's deadline: when it ends, whether it passed, and the socket to cut when it does."""

    __slots__ = ("_alarm", "_closer", "_socket", "ends", "expired")

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + max(seconds, 0.0)
        self.expired = threading.Event()
        self._socket: socket.socket | None = None
        self._closer: Callable[[], None] | None = None
        self._alarm = _DEADLINES.arm(seconds, self.cut)

    def remaining(self) -> float:
        """Seconds left (0 or less once it passed or was cut)."""
        return 0.0 if self.expired.is_set() else self.ends - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        """The request now uses ``sock``: the watchdog cuts it at the deadline (at once if that passed)."""
        if sock is not None and sock is not self._socket:
            self._socket = sock
            if self.expired.is_set():
                _shutdown(sock)

    def watch_closer(self, close: Callable[[], None]) -> None:
        """Also call ``close`` at the deadline (a transport without sockets, as in tests)."""
        self._closer = close

    def cut(self) -> None:
        """End the request now: mark it expired and shut its socket down (a blocked read fails at once)."""
        self.expired.set()
        if self._socket is not None:
            _shutdown(self._socket)
        if self._closer is not None:
            with contextlib.suppress(Exception):
                self._closer()

    def cancel(self) -> None:
        self._alarm.cancel()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[Deadline]:
    """A deadline ``seconds`` from now for the request this thread makes inside the block."""
    deadline = Deadline(seconds)
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    with _active_lock:
        _active.add(deadline)
    try:
        if _interrupted.is_set():
            deadline.cut()
        yield deadline
    finally:
        deadline.cancel()
        _local.deadline = previous
        with _active_lock:
            _active.discard(deadline)


def current_deadline() -> Deadline | None:
    """The deadline of the request this thread is making, if any."""
    return getattr(_local, "deadline", None)


def interrupt_requests() -> None:
    """Cut every request in progress and refuse new attempts (Ctrl-C), until :func:`resume_requests`."""
    _interrupted.set()
    with _active_lock:
        deadlines = list(_active)
    for deadline in deadlines:
        deadline.cut()


def resume_requests(*, main_thread_only: bool = False) -> None:
    """Let requests run again after :func:`interrupt_requests`.

    ``main_thread_only``: only when called from the main thread (the one Ctrl-C interrupts),
    so a run starting in a worker thread while the others wind down does not undo the interrupt.
    """
    if not main_thread_only or threading.current_thread() is threading.main_thread():
        _interrupted.clear()


def requests_interrupted() -> bool:
    """True between :func:`interrupt_requests` and :func:`resume_requests`."""
    return _interrupted.is_set()


def pause(seconds: float) -> bool:
    """Sleep ``seconds`` (a retry's backoff) unless requests are interrupted; True when interrupted."""
    return _interrupted.wait(seconds)


# -- the network layer under httpx: every call gets at most the time left --------------------------------
def _bounded(timeout: float | None, kind: str) -> float | None:
    """``timeout`` cut to the current deadline's time left; a timeout error of ``kind`` once none is left."""
    deadline = current_deadline()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        import httpcore

        raise getattr(httpcore, f"{kind}Timeout")("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream:
    """An httpcore network stream whose reads and writes end by the request's deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    def _watch(self) -> None:
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(self._socket)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._watch()
        return self._inner.read(max_bytes, _bounded(timeout, "Read"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._watch()
        self._inner.write(buffer, _bounded(timeout, "Write"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        self._watch()
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, "Connect")))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedNetwork:
    """An httpcore network backend whose connections and streams keep the request's deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **options: Any) -> _BoundedStream:
        deadline, limit = current_deadline(), _bounded(timeout, "Connect")
        if deadline is None or limit is None:
            stream = _BoundedStream(self._inner.connect_tcp(host, port, limit, **options))
        else:  # the lookup and the connect end by the deadline and on an interrupt (Ctrl-C)
            from synllm.backends.connects import connect_within

            inner = connect_within(self._inner.connect_tcp, host, port, limit, deadline.expired, **options)
            stream = _BoundedStream(inner)
        stream._watch()
        return stream

    def connect_unix_socket(self, path: str, timeout: float | None = None, **options: Any) -> _BoundedStream:
        stream = _BoundedStream(self._inner.connect_unix_socket(path, _bounded(timeout, "Connect"), **options))
        stream._watch()
        return stream

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bounded_network(client: Any) -> int:
    """Put every connection pool of an ``httpx.Client`` on the deadline-keeping network layer; how many.

    httpx offers no public hook for this, so the pools' ``_network_backend`` is wrapped
    (checked by the tests); a transport without such a pool (a test's mock) keeps only the
    watchdog.
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    wrapped = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if inner is not None and not isinstance(inner, _BoundedNetwork):
            pool._network_backend = _BoundedNetwork(inner)
            wrapped += 1
    return wrapped


# -- the watchdog ---------------------------------------------------------------------------------------
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
