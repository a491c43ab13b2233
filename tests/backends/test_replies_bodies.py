"""Reply bodies: compressed replies read like plain ones, and never past the byte bound once decoded."""

from __future__ import annotations

import gzip
import zlib

import pytest

from synllm.backends.bodies import TooLarge, UnknownEncoding, read_bounded
from synllm.backends.deadlines import _BoundedNetwork, bounded_network
from synllm.backends.openai import OpenAIBackend

BODY = b'{"choices": [{"message": {"content": "' + b"Male,67,0\\n" * 500 + b'"}}]}'


def pieces(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        (None, BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),  # some servers send deflate without its zlib wrapper
    ],
)
def test_a_reply_reads_the_same_in_every_accepted_encoding(encoding, encoded):
    assert read_bounded(pieces(encoded), encoding, 2**20) == BODY
    assert read_bounded(pieces(encoded), encoding, len(BODY)) == BODY  # exactly at the bound is fine
    with pytest.raises(TooLarge):
        read_bounded(pieces(encoded), encoding, len(BODY) - 1)


def test_a_bomb_is_stopped_one_byte_past_the_bound():
    bomb = gzip.compress(b"x" * 64 * 2**20)  # 64 MiB in about 64 KiB
    produced = []

    def chunks():
        for piece in pieces(bomb, 65536):
            produced.append(piece)
            yield piece

    with pytest.raises(TooLarge):
        read_bounded(chunks(), "gzip", 2**20)
    assert len(produced) == 1  # stopped inside the first network chunk, not after inflating it whole


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "x-squash"])
def test_an_encoding_not_asked_for_is_refused_by_name(encoding):
    with pytest.raises(UnknownEncoding, match=encoding):
        read_bounded([b"..."], encoding, 2**20)


def test_a_damaged_gzip_body_is_a_zlib_error():
    with pytest.raises(zlib.error):
        read_bounded([b"\x1f\x8b\x08\x00garbage-not-deflate"], "gzip", 2**20)


def test_every_connection_pool_of_the_client_keeps_the_deadline(monkeypatch):
    """The deadline lives in the network layer under httpx; a proxy's pools are wrapped too."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = OpenAIBackend("http://10.1.2.3:8000/v1")._client()  # remote, so the proxy settings apply
    pools = [t._pool for t in [client._transport, *client._mounts.values()] if t is not None]
    assert len(pools) >= 2 and all(isinstance(p._network_backend, _BoundedNetwork) for p in pools)
    assert bounded_network(client) == 0  # already wrapped: nothing wrapped twice
