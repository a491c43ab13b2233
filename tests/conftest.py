"""Shared fixtures: the real datasets (loaded once per session) and a throw-away SYNLLM_HOME."""

from __future__ import annotations

import pytest

from synllm.dataset import Dataset, load_dataset


@pytest.fixture(scope="session")
def stroke_data() -> Dataset:
    """The real stroke table and its card."""
    return load_dataset("stroke")


@pytest.fixture(scope="session")
def diabetes_data() -> Dataset:
    """The real diabetes table (100,000 rows) and its card; load it only through this fixture."""
    return load_dataset("diabetes")


@pytest.fixture(scope="session")
def cirrhosis_data() -> Dataset:
    """The real cirrhosis table and its card."""
    return load_dataset("cirrhosis")


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    """An empty folder set as SYNLLM_HOME, so nothing is written into the project."""
    home = tmp_path / "synllm-home"
    home.mkdir()
    monkeypatch.setenv("SYNLLM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def study_data():
    """Stroke, split with seed 0, scored on 400 train / 400 holdout rows."""
    from synllm.study.data import load_study_data

    return load_study_data("stroke", eval_max_rows=400, example_seeds=(0, 1))


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """``python -m llama_cpp.server`` on a free loopback port, serving SmolLM2; one per session, stopped at its end.

    Defined here rather than imported into test files: an imported fixture is a new fixture per module, which
    started a second server.
    """
    from tests.llama_server import missing_parts, serving

    missing = missing_parts()
    if missing:
        pytest.skip(
            f"llama-cpp-python server not installed (missing {missing}); "
            "pip install sse-starlette starlette-context pydantic-settings fastapi uvicorn"
        )
    from synllm.backends.embedded import idle_cores

    # Two threads on an idle machine; one when other work is running (spinning threads crawl then).
    with serving(tmp_path_factory.mktemp("llama-server") / "server.log", threads=min(2, idle_cores())) as url:
        yield url
