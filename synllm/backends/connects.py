"""Connecting within the request's deadline: a name lookup or a connect that hangs ends on time and on Ctrl-C.

Under httpx, ``socket.create_connection`` looks the name up with ``getaddrinfo`` (no timeout
bounds it, nothing interrupts it) and then blocks in ``connect`` until its own timeout, before
any socket exists for the deadline's watchdog to cut. :func:`connect_within` runs the lookup and
the connect in a daemon thread and waits for it, the time allowed or the deadline's cut (its
end or :func:`~synllm.backends.deadlines.interrupt_requests`), whichever comes first. A
connection that completes after the caller gave up is closed by that thread; a lookup stuck in
the system resolver ends there in its own time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

#: Seconds between looks at the deadline while a connect is pending (how soon Ctrl-C takes effect).
TICK_S = 0.05


class _Attempt:
    """One connect in its thread: the stream or error it ended with, and whether it is still looking the name up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.looking_up = True
        self.abandoned = False
        self.stream: Any = None
        self.error: BaseException | None = None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _run(attempt: _Attempt, connect: Callable[..., Any], host: str, port: int, limit: float, options: dict) -> None:
    stream, error = None, None
    try:
        started = time.monotonic()
        if not _is_address(host):
            with contextlib.suppress(OSError):  # a name that does not resolve fails in connect, as before
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        attempt.looking_up = False
        stream = connect(host, port, max(limit - (time.monotonic() - started), 0.001), **options)
    except BaseException as exc:  # handed to the caller
        error = exc
    with attempt.lock:
        if attempt.abandoned:
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
            return
        attempt.stream, attempt.error = stream, error
        attempt.done.set()


def connect_within(
    connect: Callable[..., Any], host: str, port: int, limit: float, expired: threading.Event, **options: Any
) -> Any:
    """``connect(host, port, timeout, **options)``, given up after ``limit`` seconds or once ``expired`` is set.

    Giving up raises ``httpcore.ConnectTimeout`` whose message names the host, what did not
    finish (the DNS lookup or the connect) and the fix; other errors of ``connect`` pass through.
    """
    import httpcore

    attempt = _Attempt()
    worker = threading.Thread(
        target=_run, args=(attempt, connect, host, port, limit, options), name="synllm-connect", daemon=True
    )
    ends = time.monotonic() + limit
    worker.start()
    while not attempt.done.wait(min(TICK_S, max(ends - time.monotonic(), 0.0))):
        if expired.is_set() or time.monotonic() >= ends:
            with attempt.lock:
                attempt.abandoned = not attempt.done.is_set()
            if attempt.abandoned:
                raise httpcore.ConnectTimeout(_gave_up(host, port, limit, looking_up=attempt.looking_up))
    if isinstance(attempt.error, httpcore.ConnectTimeout):  # connect's own timeout: the same message
        raise httpcore.ConnectTimeout(_gave_up(host, port, limit, looking_up=False)) from None
    if attempt.error is not None:
        raise attempt.error
    return attempt.stream


def _gave_up(host: str, port: int, limit: float, *, looking_up: bool) -> str:
    if looking_up:
        return (
            f"no connection within {round(limit, 1):g} s: the DNS lookup of {host!r} did not finish; "
            "check the host name and this machine's DNS, or give the server's IP address"
        )
    return f"no connection within {round(limit, 1):g} s: {host}:{port} did not accept it"
