"""Facts about the software a run used, for its manifest."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("synllm", "pandas", "numpy", "scipy", "scikit-learn", "statsmodels",
             "llama-cpp-python", "ollama", "httpx", "openai")


def package_versions() -> dict[str, str | None]:
    """Versions of Python and the packages that shape a run (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
