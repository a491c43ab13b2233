"""Reply bodies read within a byte bound, where decompressed bytes count against it.

httpx decodes ``gzip`` and ``deflate`` a network chunk at a time with no bound on what
one chunk expands to, so a 64 KiB chunk of a gzip bomb became 64 MiB before any size
check ran. Here the raw bytes are decoded with zlib's ``max_length``, so no more than
the bound (plus one byte) is ever produced. The client asks only for ``gzip`` and
``deflate``; any other ``Content-Encoding`` is refused by name.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

#: What the client says it can read (the ``Accept-Encoding`` header).
ACCEPTED_ENCODINGS = "gzip, deflate"
_PIECE = 2**16  # bytes decoded per zlib call, so no single piece is large


class TooLarge(Exception):
    """The reply holds more than the bound, counted after decoding."""


class UnknownEncoding(Exception):
    """The reply's ``Content-Encoding`` is not one this client asked for; the message names it."""


class _Inflater:
    """gzip or deflate (zlib-wrapped or raw) decoding that never produces more than it is allowed."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)
        self._first = True

    def feed(self, data: bytes, body: bytearray, limit: int) -> None:
        """Decode ``data`` onto ``body`` in small pieces; raise TooLarge once ``body`` would pass ``limit``."""
        pending = data
        while pending:
            try:
                piece = self._z.decompress(pending, min(limit - len(body) + 1, _PIECE))
            except zlib.error:
                if self._first and not self.gzip:  # deflate sent without its zlib wrapper (as some servers do)
                    self._z, self._first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise
            self._first = False
            body += piece
            if len(body) > limit:
                raise TooLarge
            pending = self._z.unconsumed_tail

    def flush(self) -> bytes:
        """What zlib still holds once all input is in (at most a window, 32 KiB)."""
        return self._z.flush()


def read_bounded(chunks: Iterable[bytes], encoding: str | None, limit: int) -> bytearray:
    """The decoded body from raw ``chunks``; TooLarge past ``limit`` bytes, UnknownEncoding, or zlib.error."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip() and c.strip() != "identity"]
    if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
        raise UnknownEncoding(f"Content-Encoding {encoding!r} (this client asks only for {ACCEPTED_ENCODINGS})")
    inflater = _Inflater(codings[0]) if codings else None
    body = bytearray()
    for chunk in chunks:
        if inflater:
            inflater.feed(chunk, body, limit)
        else:
            body += chunk
        if len(body) > limit:
            raise TooLarge
    if inflater:
        body += inflater.flush()
        if len(body) > limit:
            raise TooLarge
    return body
