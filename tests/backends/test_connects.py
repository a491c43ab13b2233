"""Connecting keeps the request's deadline and Ctrl-C: a name lookup that hangs, a connect that never completes.

No real network: the connect that never completes is a loopback listener whose backlog is
full (``listen(0)`` and one waiting connection: the kernel drops further SYNs), and the
lookup that hangs is ``socket.getaddrinfo`` replaced by one that blocks for one name.
"""

from __future__ import annotations

import socket
import threading

import pytest

from synllm.backends.deadlines import interrupt_requests, resume_requests
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.errors import SynllmError
from tests.backends.test_deadlines_servers import _request, _timed

KINDS = {"ollama": (OllamaBackend, ""), "openai": (OpenAIBackend, "/v1")}
HANGING_NAME = "dns-hangs.example"


@pytest.fixture
def full_listener():
    """The port of a loopback listener that never accepts and whose backlog is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = socket.create_connection(("127.0.0.1", port), timeout=2)  # fills the backlog
    probe = socket.socket()
    probe.settimeout(0.3)
    with pytest.raises(OSError):  # the trick holds on this kernel: a further connect hangs
        probe.connect(("127.0.0.1", port))
    probe.close()
    yield port
    waiting.close()
    listener.close()


@pytest.fixture
def hanging_dns(monkeypatch):
    """``socket.getaddrinfo`` blocks for HANGING_NAME until the test ends (other names resolve as usual)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).startswith(HANGING_NAME):
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    release.set()


@pytest.fixture
def interrupt_after():
    timers = []

    def arm(seconds: float) -> None:
        timers.append(threading.Timer(seconds, interrupt_requests))
        timers[-1].start()

    yield arm
    for timer in timers:
        timer.cancel()
    resume_requests()


@pytest.mark.parametrize("kind", KINDS)
def test_a_connect_that_never_completes_ends_at_the_deadline_naming_the_host_and_the_fix(kind, full_listener):
    cls, path = KINDS[kind]
    backend = cls(f"http://127.0.0.1:{full_listener}{path}", retries=0, timeout=1, connect_timeout=30)
    seconds, error, _ = _timed(lambda: backend.generate(_request()), 20)
    assert isinstance(error, SynllmError), error
    assert f"127.0.0.1:{full_listener}" in str(error) and backend.start_hint in str(error), error
    assert seconds < 2.0


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupt_cuts_a_connect_in_progress(kind, full_listener, interrupt_after):
    cls, path = KINDS[kind]
    backend = cls(f"http://127.0.0.1:{full_listener}{path}", retries=3, timeout=8, connect_timeout=8)
    interrupt_after(0.5)
    seconds, error, _ = _timed(lambda: backend.generate(_request()), 60)
    assert isinstance(error, SynllmError) and "interrupted" in str(error), error
    assert seconds < 1.5  # was 8 s: the connect ran to its own timeout


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_lookup_that_hangs_ends_at_the_deadline_naming_the_host_and_the_fix(kind, hanging_dns):
    cls, path = KINDS[kind]
    backend = cls(f"http://{HANGING_NAME}:11434{path}", retries=0, timeout=1)
    seconds, error, _ = _timed(lambda: backend.generate(_request()), 10)  # was: blocked until the lookup gave up
    assert isinstance(error, SynllmError), error
    message = str(error)
    assert HANGING_NAME in message and "DNS" in message and backend.start_hint in message, message
    assert seconds < 2.0


def test_an_interrupt_cuts_a_name_lookup_in_progress(hanging_dns, interrupt_after):
    backend = OllamaBackend(f"http://{HANGING_NAME}:11434", retries=3, timeout=30)
    interrupt_after(0.5)
    seconds, error, _ = _timed(lambda: backend.generate(_request()), 10)
    assert isinstance(error, SynllmError) and "interrupted" in str(error), error
    assert seconds < 1.5
