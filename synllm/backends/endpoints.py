"""Endpoint configuration: which servers a run may use, the models each serves, and how hard to push it.

A YAML file lists endpoints (Ollama hosts and/or OpenAI-compatible servers)::

    max_failures: 3                  # consecutive failures before an endpoint is marked down
    endpoints:
      - name: vllm-a                 # shown in progress and manifests; default host:port
        kind: openai                 # openai | ollama
        url: ${VLLM_URL:-http://127.0.0.1:8000/v1}
        concurrency: 32              # requests in flight at once on this endpoint
        models:                      # logical name (what a grid asks for): id the server serves
          llama3.1:8b: meta-llama/Llama-3.1-8B-Instruct
        timeout: 300                 # any other key goes to the backend (timeout, retries, api_key_env, ...)

``models`` may also be a list (served under the same names) or left out (the
endpoint serves any model under the name asked for). ``${VAR}`` and
``${VAR:-default}`` in ``url`` are read from the environment. Example files live in
``synllm/backends/endpoint_configs/`` and load by name: ``load_endpoints("ollama-hosts")``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from synllm import config, yamlsafe
from synllm.arguments import check_url
from synllm.backends.base import Backend
from synllm.backends.factory import build
from synllm.errors import EndpointConfigError, InvalidArgument

if TYPE_CHECKING:
    from synllm.backends.http import HttpBackend

KINDS = ("ollama", "openai")
DEFAULT_MAX_FAILURES = 3
_ENDPOINT_KEYS = {"name", "kind", "url", "concurrency", "models"}
_TOP_KEYS = {"endpoints", "max_failures"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One server: its kind, address, the models it serves and how many requests it takes at once."""

    name: str
    kind: str
    url: str
    max_concurrency: int = 1
    models: Mapping[str, str] | None = None  # logical name -> served id (a list: same names); None: any name
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EndpointConfigError(f"endpoint {self.name!r}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if int(self.max_concurrency) < 1:
            raise EndpointConfigError(
                f"endpoint {self.name!r}: concurrency must be at least 1, got {self.max_concurrency}"
            )
        models = self.models
        if models is not None:
            pairs = models.items() if isinstance(models, Mapping) else ((m, m) for m in models)
            models = MappingProxyType({str(k): str(v) for k, v in pairs})
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "max_concurrency", int(self.max_concurrency))

    def serves(self, model: str) -> bool:
        """True when this endpoint is configured to serve the logical ``model``."""
        return self.models is None or model in self.models

    def served_id(self, model: str) -> str:
        """The id this endpoint's server knows the logical ``model`` by."""
        if self.models is None:
            return model
        if model not in self.models:
            raise EndpointConfigError(f"endpoint {self.name!r} does not serve {model!r}; it serves {list(self.models)}")
        return self.models[model]

    def build_backend(self) -> Backend:
        """A new backend talking to this endpoint (no network yet)."""
        options = {"url": self.url, "max_concurrency": self.max_concurrency, **self.options}
        return build(self.kind, backend_class(self.kind), options)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """The endpoints of one configuration, and when to give up on one."""

    endpoints: tuple[Endpoint, ...]
    max_failures: int = DEFAULT_MAX_FAILURES
    source: Path | None = None

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        if not self.endpoints:
            raise EndpointConfigError(f"no endpoints{where}; list at least one under 'endpoints:'")
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise EndpointConfigError(f"endpoint names repeat{where}: {names}; give each a unique 'name'")
        if self.max_failures < 1:
            raise EndpointConfigError(f"max_failures must be at least 1{where}, got {self.max_failures}")

    @property
    def models(self) -> list[str] | None:
        """Logical model names the endpoints serve, in file order; None when one serves any name."""
        if any(e.models is None for e in self.endpoints):
            return None
        return list(dict.fromkeys(m for e in self.endpoints for m in e.models or {}))


def endpoints_dir() -> Path:
    """Where the example endpoint configurations live."""
    return config.ENDPOINTS_DIR


def endpoint_config_names() -> list[str]:
    """Names of the bundled endpoint configurations."""
    return sorted(p.stem for p in endpoints_dir().glob("*.yaml"))


def load_endpoints(name_or_path: str | Path) -> EndpointConfig:
    """Read an endpoint configuration: a bundled name (see :func:`endpoint_config_names`) or a YAML path."""
    path = Path(name_or_path)
    if not path.is_file():
        bundled = endpoints_dir() / f"{name_or_path}.yaml"
        if not bundled.is_file():
            raise EndpointConfigError(
                f"no endpoint configuration {str(name_or_path)!r}: not a file, and not one of "
                f"{endpoint_config_names()}; give a YAML path or a bundled name"
            )
        path = bundled
    try:
        data = yamlsafe.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EndpointConfigError(f"cannot read endpoint configuration {path}: {exc}") from None
    return parse_endpoints(data, source=path)


def parse_endpoints(
    data: Any, *, source: Path | None = None, environ: Mapping[str, str] | None = None
) -> EndpointConfig:
    """Build an :class:`EndpointConfig` from parsed YAML (a mapping with ``endpoints``)."""
    where = str(source) if source else "endpoint configuration"
    if not isinstance(data, Mapping) or not isinstance(data.get("endpoints"), list):
        raise EndpointConfigError(f"{where}: expected a mapping with a list under 'endpoints:'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise EndpointConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    env = os.environ if environ is None else environ
    endpoints = tuple(_endpoint(item, i, where, env) for i, item in enumerate(data["endpoints"]))
    return EndpointConfig(endpoints, int(data.get("max_failures", DEFAULT_MAX_FAILURES)), source)


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` from ``environ``; an unset VAR without default is an error.

    >>> expand_vars("http://${H:-127.0.0.1}:${P}/v1", {"P": "8000"})
    'http://127.0.0.1:8000/v1'
    """

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if environ.get(name):
            return environ[name]
        if default is None:
            raise EndpointConfigError(
                f"{text!r} needs environment variable {name}; set it or write ${{{name}:-default}}"
            )
        return default

    return _VAR.sub(value, text)


def _endpoint(item: Any, index: int, where: str, env: Mapping[str, str]) -> Endpoint:
    if not isinstance(item, Mapping):
        raise EndpointConfigError(f"{where}: endpoint #{index + 1} must be a mapping with kind, url, ...")
    label = f"{where}: endpoint {item.get('name') or '#' + str(index + 1)}"
    kind = item.get("kind")
    if kind not in KINDS:
        raise EndpointConfigError(f"{label}: 'kind' must be one of {list(KINDS)}, got {kind!r}")
    if not item.get("url"):
        raise EndpointConfigError(f"{label}: give the server's 'url'")
    try:  # the shared argument rules (synllm.arguments), reported as this file's error
        url = check_url(expand_vars(str(item["url"]), env), name=f"{label}: url")
    except InvalidArgument as exc:
        raise EndpointConfigError(str(exc)) from None
    options = {k: v for k, v in item.items() if k not in _ENDPOINT_KEYS}
    allowed = _backend_options(kind)
    unknown = set(options) - allowed
    if unknown:
        raise EndpointConfigError(
            f"{label}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_ENDPOINT_KEYS | allowed)}"
        )
    models = item.get("models")
    if models is not None and not isinstance(models, list | Mapping):
        raise EndpointConfigError(f"{label}: 'models' must be a list of names or a mapping name: served id")
    return Endpoint(
        name=str(item.get("name") or _default_name(url)),
        kind=kind,
        url=url,
        max_concurrency=int(item.get("concurrency", 1)),
        models=models,
        options=options,
    )


def backend_class(kind: str) -> type[HttpBackend]:
    """The backend class serving endpoints of ``kind`` (imported on first use)."""
    if kind == "ollama":
        from synllm.backends.ollama import OllamaBackend

        return OllamaBackend
    from synllm.backends.openai import OpenAIBackend

    return OpenAIBackend


def _backend_options(kind: str) -> set[str]:
    """Keyword options the backend of ``kind`` takes, but the ones the endpoint itself sets."""
    return backend_class(kind).options() - {"url", "max_concurrency", "model", "transport"}


def _default_name(url: str) -> str:
    split = urlsplit(url if "://" in url else f"http://{url}")
    return f"{split.hostname}:{split.port}" if split.port else str(split.hostname)


def endpoints_from(items: Sequence[Endpoint] | EndpointConfig | str | Path) -> EndpointConfig:
    """An :class:`EndpointConfig` from a config, a config name or path, or a list of endpoints."""
    if isinstance(items, EndpointConfig):
        return items
    if isinstance(items, str | Path):
        return load_endpoints(items)
    return EndpointConfig(tuple(items))
