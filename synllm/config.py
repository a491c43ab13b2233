"""Every path the project uses, in one place (cookiecutter-data-science style).

Paths resolve against the project root, never the current directory, so Jupyter,
papermill and the command line all agree. ``SYNLLM_HOME`` moves the writable
folders (``data/interim`` and ``reports``) elsewhere, e.g. for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(__file__).resolve().parent
CARDS_DIR = PACKAGE_DIR / "cards"  # the shipped cards, beside the card code
PROFILES_DIR = PACKAGE_DIR / "study" / "profiles"  # batch profiles for `make run`
MODELS_FILE = PACKAGE_DIR / "backends" / "models.yaml"  # model tags and grids
ENDPOINTS_DIR = PACKAGE_DIR / "backends" / "endpoint_configs"  # example endpoint configurations

DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"


def home() -> Path:
    """Root of the writable folders: ``$SYNLLM_HOME`` or the project root."""
    return Path(os.environ.get("SYNLLM_HOME") or PROJ_ROOT)


def interim_dir() -> Path:
    """Derived, git-ignored data: generation runs and caches."""
    return home() / "data" / "interim"


def runs_dir() -> Path:
    """One folder per generation run (synthetic.csv, raw.jsonl, manifest.json)."""
    return interim_dir() / "runs"


def models_cache_dir() -> Path:
    """Model files synllm derives (the embedded model's Q8_0 copy), shared by every project folder.

    ``$SYNLLM_MODELS``, else ``$XDG_CACHE_HOME/synllm/models``, else ``~/.cache/synllm/models``;
    not under SYNLLM_HOME, so throw-away homes (tests, papermill runs) reuse one copy.
    """
    if os.environ.get("SYNLLM_MODELS"):
        return Path(os.environ["SYNLLM_MODELS"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "synllm" / "models"


def reports_dir() -> Path:
    """Rendered notebooks, HTML reports, figures and scorecards."""
    return home() / "reports"
