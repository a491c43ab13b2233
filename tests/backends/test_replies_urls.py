"""Server addresses: one that does not parse is a one-line error naming it; credentials are never recorded.

A base URL may carry a user name and password (``http://user:pass@host``): the connection
uses them, but describe(), the run manifest, raw.jsonl, endpoint tables, logs and error
messages show the address without them.
"""

from __future__ import annotations

import logging

import pytest

from synllm import files
from synllm.backends.endpoints import parse_endpoints
from synllm.backends.hosts import host_url, public_url
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend, base_url
from synllm.backends.pool import EndpointPool
from synllm.cli import main
from synllm.errors import BackendError, InvalidArgument
from synllm.generation.grid import endpoint_table
from synllm.generation.loop import GenerationOptions, generate
from tests.fake_ollama import closed_port_url
from tests.fake_openai import FakeOpenAI
from tests.generation.scripted import stroke_split

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    "host", ["http://[::1", "[::1", "http://127.0.0.1:99999", "localhost:port", "ftp://h:1", "http://h:0"]
)
def test_an_ollama_host_that_does_not_parse_is_an_invalid_argument(host):
    with pytest.raises(InvalidArgument, match="Ollama host"):
        host_url(host)
    with pytest.raises(InvalidArgument):
        OllamaBackend(host)


@pytest.mark.parametrize("url", ["http://[::1/v1", "http://127.0.0.1:70000/v1", "http://h:x/v1"])
def test_an_openai_base_url_that_does_not_parse_is_an_invalid_argument(url):
    with pytest.raises(InvalidArgument, match="OpenAI-compatible base URL"):
        base_url(url)


def test_a_broken_ollama_host_is_a_one_line_cli_error(tmp_home, monkeypatch, capsys):
    monkeypatch.setenv("OLLAMA_HOST", "http://[::1")
    code = main(["generate", "--dataset", "stroke", "--backend", "ollama", "--models", "m", "--rows", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err  # was a ValueError traceback
    assert "'http://[::1' is not a URL" in err and "OLLAMA_HOST" in err


def test_public_url_drops_only_the_credentials():
    assert public_url(f"http://user:{SECRET}@10.0.0.5:8000/v1") == "http://10.0.0.5:8000/v1"
    assert public_url(f"https://{SECRET}@llm.example.org") == "https://llm.example.org"
    assert public_url("http://127.0.0.1:8000/v1?x=a@b") == "http://127.0.0.1:8000/v1?x=a@b"
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


def test_credentials_in_a_base_url_reach_no_record(tmp_path, caplog):
    train, _, card = stroke_split()
    with FakeOpenAI() as fake, caplog.at_level(logging.DEBUG):
        url = fake.base_url.replace("http://", f"http://user:{SECRET}@")
        backend = OpenAIBackend(url, retries=0, timeout=10)
        assert backend.url == fake.base_url and SECRET not in repr(backend)
        assert SECRET not in str(backend.describe(fake.models[0]))
        options = GenerationOptions(batch_size=4)
        result = generate(card, train, "p4", backend, fake.models[0], n_rows=4, options=options, out_dir=tmp_path)
        assert result.complete  # the connection itself still works
    written = {p.name: p.read_text() for p in result.run_dir.iterdir() if p.is_file()}
    assert files.MANIFEST in written and files.RAW in written
    assert all(SECRET not in text for text in written.values()), [n for n, t in written.items() if SECRET in t]
    assert fake.base_url in written[files.MANIFEST]  # was http://user:s3cret-Pa55@127.0.0.1:.../v1
    assert SECRET not in caplog.text


def test_credentials_reach_no_error_message_or_warning(caplog):
    dead = closed_port_url().replace("http://", f"http://admin:{SECRET}@") + "/v1"
    with caplog.at_level(logging.WARNING):
        backend = OpenAIBackend(dead.replace("127.0.0.1", "10.255.255.1"), retries=0, timeout=0.2)
    assert caplog.text and SECRET not in caplog.text  # the remote-host warning names the host only
    backend = OpenAIBackend(dead, retries=0, timeout=1)
    with pytest.raises(BackendError) as caught:
        backend.list_models()
    assert SECRET not in str(caught.value) and "admin" not in str(caught.value)


def test_credentials_in_an_endpoint_file_reach_no_table_or_manifest():
    config = parse_endpoints(
        {"endpoints": [{"name": "a", "kind": "openai", "url": "${URL}", "models": ["m"]}]},
        environ={"URL": f"http://user:{SECRET}@127.0.0.1:9/v1"},
    )
    endpoint = config.endpoints[0]
    assert endpoint.url == "http://127.0.0.1:9/v1" and SECRET not in repr(endpoint)
    backend = endpoint.build_backend()
    assert backend.url == "http://127.0.0.1:9/v1" and SECRET in backend._connect_url  # only the connection has them
    pool = EndpointPool(config)
    assert SECRET not in str(pool.describe("m")) and SECRET not in endpoint_table(pool.endpoint_stats())


def test_the_connection_still_sends_the_credentials_as_basic_auth():
    import base64

    import httpx

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("Authorization")))
        return httpx.Response(200, json={"data": [{"id": "m"}]})

    backend = OpenAIBackend(f"http://user:{SECRET}@127.0.0.1:9/v1", transport=httpx.MockTransport(handler))
    assert backend.list_models() == ["m"]
    token = base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert seen == [("http://127.0.0.1:9/v1/models", f"Basic {token}")]
