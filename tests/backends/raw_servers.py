"""Hostile loopback servers written on raw sockets, for the deadline and reply-size tests.

Each connection is handed to ``behaviour(conn, stopping)`` in its own daemon thread;
``stop()`` closes the listening socket and every connection at once. Behaviours:
:func:`silent` (accepts, reads the request, never answers), :func:`trickled_headers`
(the status line, then one header byte every ``pause_s``), :func:`encoded_reply` (a reply
with a ``Content-Encoding`` and these exact body bytes).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import zlib
from collections.abc import Callable
from functools import cache

Behaviour = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A loopback TCP server; every accepted connection runs ``behaviour``; ``url`` is its address."""

    def __init__(self, behaviour: Behaviour, *, path: str = "") -> None:
        self.behaviour, self.path = behaviour, path
        self.stopping = threading.Event()
        self.connections: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{self.path}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.behaviour(conn, self.stopping)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for sock in [self.listener, *self.connections]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


def read_request(conn: socket.socket) -> bytes:
    """The request head (and whatever body arrived with it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def silent(conn: socket.socket, stopping: threading.Event) -> None:
    """Accept, read the request, never answer (hold the connection until the server stops)."""
    read_request(conn)
    stopping.wait()


def trickled_headers(pause_s: float = 0.5) -> Behaviour:
    """Send the status line, then one header byte every ``pause_s`` seconds, for ever."""

    def behaviour(conn: socket.socket, stopping: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stopping.wait(pause_s):
            conn.sendall(b"X")

    return behaviour


def encoded_reply(body: bytes, encoding: str = "gzip") -> Behaviour:
    """Answer every request with HTTP 200, ``Content-Encoding: encoding`` and ``body`` as it is."""

    def behaviour(conn: socket.socket, stopping: threading.Event) -> None:
        while not stopping.is_set() and read_request(conn):
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            conn.sendall(head.encode() + body)

    return behaviour


@cache
def gzip_bomb(kind: str, decoded_mib: int = 512) -> bytes:
    """A gzip body of ``decoded_mib`` MiB: the start of a chat reply, then ``x`` for ever (about 1,000:1)."""
    head = b'{"message": {"content": "' if kind == "ollama" else b'{"choices": [{"message": {"content": "'
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(head)]
    block = b"x" * 2**20
    parts.extend(packer.compress(block) for _ in range(decoded_mib))
    parts.append(packer.flush())
    return b"".join(parts)
