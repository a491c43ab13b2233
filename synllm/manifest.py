"""Facts about the software a run used, for its manifest."""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata

_PACKAGES = ("synllm", "pandas", "numpy", "scipy", "scikit-learn", "statsmodels",
             "llama-cpp-python", "ollama", "httpx", "openai")


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str | None], ...]:
    found = [("python", platform.python_version())]
    for name in _PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, None))
    return tuple(found)


def package_versions() -> dict[str, str | None]:
    """Versions of Python and the packages that shape a run (None when not installed); read once per process."""
    return dict(_versions())
