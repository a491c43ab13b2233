"""Where an Ollama server lives, and whether talking to it keeps data on this machine.

Prompts carry real example rows from the study's datasets. A server on the loopback
interface keeps them on this machine; any other host gets a logged warning, once per
host per process. No name is ever resolved (no DNS): only literal loopback addresses
and ``localhost`` names count as local. An address that does not parse is an
:class:`~synllm.errors.InvalidArgument` naming it; credentials in an address
(``http://user:pass@host``) are never shown or recorded (:func:`public_url`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from urllib.parse import SplitResult, unquote, urlsplit

from synllm.arguments import check_url

DEFAULT_HOST = "http://127.0.0.1:11434"

_log = logging.getLogger(__name__)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def host_url(host: str | None = None) -> str:
    """Normalise an Ollama host as the ``ollama`` client does: ``$OLLAMA_HOST`` when empty.

    >>> host_url("localhost:8080")
    'http://localhost:8080'
    >>> host_url("http://[::1]")
    'http://[::1]:80'
    """
    raw = (host or os.environ.get("OLLAMA_HOST") or "").strip()
    if not raw:
        return DEFAULT_HOST
    scheme, has_scheme, rest = raw.partition("://")
    if not has_scheme:
        scheme, rest = "http", raw
    if rest.startswith(":"):  # ":11434" is a port on this machine, as the ollama client reads it
        rest = f"127.0.0.1{rest}"
    split = split_url(f"{scheme}://{rest}", "the Ollama host (url or $OLLAMA_HOST)")
    hostname = split.hostname or "127.0.0.1"
    default_port = {"http": 80, "https": 443}.get(scheme, 11434) if has_scheme else 11434
    port = split.port or default_port
    if ":" in hostname:
        hostname = f"[{hostname}]"
    path = split.path.rstrip("/")
    return f"{scheme}://{hostname}:{port}{path}"


def split_url(url: str, what: str) -> SplitResult:
    """``urlsplit(url)`` once the shared rules pass it (:func:`synllm.arguments.check_url`), else InvalidArgument."""
    return urlsplit(check_url(url, name=what))


def public_url(url: str) -> str:
    """``url`` without the user name and password it may hold (what is shown, logged and recorded).

    >>> public_url("http://user:secret@llm.example.org:8000/v1")
    'http://llm.example.org:8000/v1'
    >>> public_url("http://[::1")
    'http://[::1'
    """
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        scheme, rest = "", str(url)
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    return f"{scheme}{sep}{rest[:end].rpartition('@')[2]}{rest[end:]}"


def url_credentials(url: str) -> tuple[str, str] | None:
    """The (user, password) written into ``url``, percent-decoded; None when it holds none.

    >>> url_credentials("http://me:p%40ss@h/v1"), url_credentials("http://h/v1")
    (('me', 'p@ss'), None)
    """
    split = urlsplit(str(url))
    if split.username is None and split.password is None:
        return None
    return unquote(split.username or ""), unquote(split.password or "")


def is_loopback(host: str | None) -> bool:
    """True when ``host`` is this machine: 127.0.0.0/8, ::1, ``localhost`` or an unspecified address.

    ``0.0.0.0`` and ``::`` count as local because connecting to them reaches this machine
    (a common ``OLLAMA_HOST`` value copied from the server's bind address).

    >>> is_loopback("127.0.0.2:11434"), is_loopback("http://[::1]:1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("http://ollama.example.invalid:11434"), is_loopback("10.0.0.5")
    (False, False)
    """
    name = (urlsplit(host_url(host)).hostname or "").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_loopback or address.is_unspecified


def warn_once_if_remote(url: str, label: str, *, logger: logging.Logger | None = None) -> bool:
    """Warn once per ``url`` per process that prompts (with real example rows) will leave this machine."""
    if is_loopback(url):
        return False
    with _warned_lock:
        if url in _warned:
            return False
        _warned.add(url)
    (logger or _log).warning(
        "%s %s is not on this machine: prompts, including real example rows from the dataset, "
        "will leave this machine. Use a loopback address (127.0.0.1) to keep them local.",
        label,
        url,
    )
    return True
