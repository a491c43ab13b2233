"""One HTTP layer for the server backends (Ollama, OpenAI-compatible): settings, retries, bounded replies.

:class:`HttpBackend` owns the connection pool, the retry loop, the translation of transport
failures into :class:`~synllm.errors.BackendError` subclasses, and two bounds on every reply:
``max_reply_bytes`` bytes after decompression (:mod:`~synllm.backends.bodies`), and ``timeout``
seconds for the whole exchange, connecting, headers and body (:mod:`~synllm.backends.deadlines`).
A dead server costs at most attempts × timeout + backoff (a quick check right after a request
found it silent fails at once); Ctrl-C ends every request in moments. The address is shown and
recorded without credentials (``url``). Subclasses say what to send and how to read the answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any, TypeVar

from synllm.backends.base import BaseBackend
from synllm.backends.bodies import ACCEPTED_ENCODINGS, TooLarge, UnknownEncoding, read_bounded
from synllm.backends.deadlines import bounded_network, pause, request_deadline, requests_interrupted
from synllm.backends.hosts import is_loopback, public_url, url_credentials, warn_once_if_remote
from synllm.backends.replies import error_message  # noqa: F401 - re-exported for the backends
from synllm.errors import BackendError, BackendUnavailable, InvalidArgument

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: Default bound on one reply's size: a 20-row answer is a few kB, so this leaves ample room.
DEFAULT_MAX_REPLY_BYTES = 8 * 2**20
#: Default seconds for one whole answer (``SYNLLM_TIMEOUT`` overrides it).
DEFAULT_TIMEOUT = 120.0
TIMEOUT_VAR = "SYNLLM_TIMEOUT"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often a failed attempt is repeated and how long to wait between attempts."""

    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise InvalidArgument(
                f"retries, backoff_s and max_backoff_s must be >= 0; got retries={self.retries}, "
                f"backoff_s={self.backoff_s}, max_backoff_s={self.max_backoff_s}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped.

        >>> RetryPolicy(backoff_s=0.5, max_backoff_s=3).delay(4)
        3
        """
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


def default_timeout() -> float:
    """``$SYNLLM_TIMEOUT`` seconds when set to a positive number, else 120."""
    text = os.environ.get(TIMEOUT_VAR, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidArgument(f"{TIMEOUT_VAR}={text!r} is not a positive number of seconds; fix or unset it")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Timeouts, reply bound and retry policy of one server backend; every value is checked here.

    ``timeout`` is a deadline for one whole answer (connection, waiting and reading);
    ``None`` means ``$SYNLLM_TIMEOUT`` or 120 s.
    """

    timeout: float | None = None
    connect_timeout: float = 5.0
    check_timeout: float = 2.0
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.timeout is None:
            object.__setattr__(self, "timeout", default_timeout())
        for name in ("timeout", "connect_timeout", "check_timeout"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"{name} must be a positive number of seconds, got {getattr(self, name)}")
        if int(self.max_reply_bytes) < 1024:
            raise InvalidArgument(f"max_reply_bytes must be at least 1024, got {self.max_reply_bytes}")
        self.retry  # noqa: B018 - validates the retry values

    @property
    def retry(self) -> RetryPolicy:
        """The retry part as its own value."""
        return RetryPolicy(retries=self.retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s)

    @classmethod
    def names(cls) -> set[str]:
        """The option names, as constructors and endpoint files take them."""
        return {f.name for f in fields(cls)}


class Retryable(Exception):
    """One failed attempt worth retrying; ``unreachable`` when no connection was made, ``silent`` on a timeout."""

    def __init__(self, reason: str, *, unreachable: bool = False, silent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.silent = silent


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole HTTP reply: status, the body parsed as JSON (None if it is not JSON) and the text."""

    status: int
    data: Any
    text: str


class HttpBackend(BaseBackend):
    """A backend that talks HTTP to one server; see the module docstring.

    Parameters
    ----------
    url : the server address (each subclass documents its default and normal form).
    model : default model for ``available()``/``describe()``/``default_model``.
    max_concurrency : parallel requests a caller may run; default from the subclass's environment variable.
    transport : an ``httpx`` transport (tests pass loopback or mock transports).
    **settings : :class:`HttpSettings` (timeout, connect_timeout, check_timeout, max_reply_bytes, retries,
        backoff_s, max_backoff_s).
    """

    #: How messages name the server, e.g. "Ollama server"; and the two phrases built from it.
    server_label = "server"
    unreachable_text = "no {label} reachable at {url}"
    server_text = "the {label} at {url}"
    #: What to tell a user whose server does not answer.
    start_hint = "start the server or fix its address"
    #: Environment variable holding the default concurrency, and the default without it.
    concurrency_var: str | None = None
    default_concurrency = 1
    #: Keyword options a subclass adds to the common ones.
    extra_options: frozenset[str] = frozenset()

    def __init__(
        self,
        url: str | None = None,
        *,
        model: str | None = None,
        max_concurrency: int | None = None,
        transport: Any = None,
        **settings: Any,
    ) -> None:
        unknown = set(settings) - HttpSettings.names()
        if unknown:
            raise InvalidArgument(
                f"{type(self).__name__} takes no option(s) {sorted(unknown)}; it takes {sorted(self.options())}"
            )
        self.settings = HttpSettings(**settings)
        self._connect_url = self.normalise_url(url)
        #: The server address as shown and recorded: without credentials.
        self.url = public_url(self._connect_url)
        self.model = model
        if max_concurrency is not None and int(max_concurrency) < 1:
            raise InvalidArgument(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = int(max_concurrency) if max_concurrency else self._concurrency_from_env()
        self._transport = transport
        self._lock = threading.Lock()
        self._http: Any = None
        self._silent: tuple[float, str, bool] | None = None  # when the server last gave no answer, why, in a check
        warn_once_if_remote(self.url, self.server_label, logger=_log)

    @classmethod
    def options(cls) -> set[str]:
        """Every keyword option the constructor takes."""
        return {"url", "model", "max_concurrency", "transport"} | HttpSettings.names() | set(cls.extra_options)

    @classmethod
    def normalise_url(cls, url: str | None) -> str:
        """The server address in its normal form (subclasses fill defaults from the environment)."""
        if not url:
            raise InvalidArgument(f"{cls.__name__} needs the server's url")
        return str(url).rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, max_concurrency={self.max_concurrency})"

    @property
    def timeout(self) -> float:
        """Seconds allowed for one whole answer."""
        return float(self.settings.timeout)

    @property
    def is_loopback(self) -> bool:
        """True when the server is on this machine."""
        return is_loopback(self.url)

    def _concurrency_from_env(self) -> int:
        if not self.concurrency_var:
            return self.default_concurrency
        try:
            return max(1, int(os.environ.get(self.concurrency_var, str(self.default_concurrency))))
        except ValueError:
            return self.default_concurrency

    # -- connections -----------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        """Headers sent with every request (e.g. an API key)."""
        return {}

    def _client(self) -> Any:
        """The shared ``httpx.Client``, created on first use (thread-safe)."""
        with self._lock:
            if self._http is None:
                import httpx

                connections = max(8, 2 * self.max_concurrency)
                self._http = httpx.Client(
                    base_url=self.url,  # credentials go as basic auth, so httpx's own log never shows them
                    auth=url_credentials(self._connect_url),
                    headers={"Accept-Encoding": ACCEPTED_ENCODINGS, **self.headers()},
                    transport=self._transport,
                    limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                    trust_env=not self.is_loopback,  # never send loopback traffic through a proxy
                )
                bounded_network(self._http)  # every connect, read and write ends by the request's deadline
            return self._http

    def close(self) -> None:
        """Close the pooled connections (a later request opens new ones)."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    # -- one exchange ----------------------------------------------------------------------------
    def exchange(self, method: str, path: str, payload: Any = None, *, timeout: float | None = None) -> Reply:
        """One request and its whole reply, within ``timeout`` seconds and ``max_reply_bytes`` bytes.

        The deadline covers connecting, the headers and the body. Transport failures and
        timeouts raise :class:`Retryable`; a reply over the size bound (decompressed) or in
        an encoding not asked for raises a final :class:`BackendError` naming it.
        """
        import httpx

        timeout = float(timeout or self.timeout)
        limit = int(self.settings.max_reply_bytes)
        timeouts = httpx.Timeout(timeout, connect=min(self.settings.connect_timeout, timeout))
        if requests_interrupted():
            raise self.interrupted_error()
        with request_deadline(timeout) as deadline:
            try:
                with self._client().stream(method, path, json=payload, timeout=timeouts) as response:
                    deadline.watch_closer(response.close)
                    if response.is_stream_consumed:  # a test transport's reply, already read and decoded
                        body = read_bounded([response.content], None, limit)
                    else:
                        body = read_bounded(response.iter_raw(), response.headers.get("content-encoding"), limit)
                    status = response.status_code
            except TooLarge:
                raise BackendError(
                    f"the {self.server_label} at {self.url} sent more than {limit:,} bytes for one reply (counted "
                    f"decompressed, max_reply_bytes={limit}); the server misbehaves, or raise max_reply_bytes"
                ) from None
            except UnknownEncoding as exc:
                raise BackendError(f"the {self.server_label} at {self.url} sent a reply in {exc}") from None
            except zlib.error as exc:
                raise Retryable(f"a reply whose compressed body is damaged ({exc})") from None
            except httpx.ConnectError:
                raise Retryable("connection refused", unreachable=True) from None
            except (httpx.TimeoutException, httpx.TransportError, httpx.StreamError) as exc:
                if requests_interrupted():
                    raise self.interrupted_error() from None
                if isinstance(exc, httpx.ConnectTimeout):  # its text names the host and what did not finish
                    reason = str(exc) or f"no connection within {min(self.settings.connect_timeout, timeout):g} s"
                    raise Retryable(reason, unreachable=True, silent=deadline.expired.is_set()) from None
                if deadline.expired.is_set() or isinstance(exc, httpx.TimeoutException) or deadline.remaining() <= 0:
                    raise Retryable(f"no answer within {timeout:g} s", silent=True) from None
                raise Retryable(f"connection lost ({exc.__class__.__name__}: {exc})") from None
            if deadline.expired.is_set():
                if requests_interrupted():
                    raise self.interrupted_error()
                raise Retryable(f"no answer within {timeout:g} s", silent=True)
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        return Reply(status, data, text)

    def interrupted_error(self) -> BackendUnavailable:
        """The error of a request cut short by an interrupt (Ctrl-C)."""
        return BackendUnavailable(
            f"the request to the {self.server_label} at {self.url} was interrupted; rerun to resume from the cache"
        )

    def with_retries(self, attempt: Callable[[], T], model: str) -> tuple[T, int]:
        """Run ``attempt`` until it succeeds or the retries run out; (result, attempts).

        A quick check that got no answer within ``timeout`` seconds before counts as the first
        attempt (so a dead server costs attempts × timeout + backoff, checks included). The
        backoff between attempts ends early on an interrupt (Ctrl-C), which ends the request.
        """
        policy = self.settings.retry
        silent = self._silent
        attempts = 1 if silent and silent[2] and time.monotonic() - silent[0] < self.timeout else 0
        while True:
            attempts += 1
            try:
                result = attempt()
            except Retryable as failure:
                if attempts > policy.retries:
                    error = self.final_error(model, attempts, failure)
                    if failure.silent:
                        self._silent = (time.monotonic(), str(error), False)
                    raise error from None
                if pause(policy.delay(attempts)):
                    raise self.interrupted_error() from None
                continue
            self._silent = None
            return result, attempts

    def final_error(self, model: str, attempts: int, failure: Retryable) -> BackendError:
        """The error a caller sees when every attempt failed."""
        if failure.unreachable:
            where = self.unreachable_text.format(label=self.server_label, url=self.url)
            return BackendUnavailable(f"{where} ({failure.reason}, {attempts} attempts); {self.start_hint}")
        where = self.server_text.format(label=self.server_label, url=self.url)
        return BackendError(
            f"{where} failed for model {model!r} after {attempts} attempts; last error: {failure.reason}"
        )

    def check(self, method: str, path: str, payload: Any = None) -> Any:
        """A quick call (``check_timeout``) whose JSON body is returned; BackendUnavailable on any failure.

        Within ``timeout`` seconds of a request or check that got no answer, it fails at once
        without asking (a dead server costs at most attempts × timeout + backoff).
        """
        silent = self._silent
        if silent is not None and time.monotonic() - silent[0] < self.timeout:
            raise BackendUnavailable(
                f"the {self.server_label} at {self.url} was not asked {path}: it did not answer "
                f"a moment ago ({silent[1]}); {self.start_hint}"
            )
        try:
            reply = self.exchange(method, path, payload, timeout=self.settings.check_timeout)
            if reply.status >= 400 or reply.data is None:
                raise Retryable(f"HTTP {reply.status}: {reply.text[:200]}")
        except (Retryable, BackendError) as exc:
            if isinstance(exc, Retryable) and exc.silent:
                self._silent = (time.monotonic(), f"{path}: {exc.reason}", True)
            raise BackendUnavailable(
                f"the {self.server_label} at {self.url} does not answer {path} ({exc}); {self.start_hint}"
            ) from None
        return reply.data

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """Address, loopback, model, concurrency and bounds; subclasses add what the server tells."""
        return {
            "backend": self.name,
            "url": self.url,
            "loopback": self.is_loopback,
            "model": model or self.model,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout,
            "max_reply_bytes": self.settings.max_reply_bytes,
        }


def plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, so a schema serialises as JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def installed_version(package: str) -> str | None:
    """The installed version of ``package``, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
