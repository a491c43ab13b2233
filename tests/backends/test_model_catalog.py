"""The model catalog (synllm/backends/models.yaml) and its loader."""

from __future__ import annotations

import re

import pytest

from synllm.backends.model_catalog import grid_names, model_entries, model_entry, model_grid
from synllm.errors import ConfigError, InvalidArgument

# An Ollama tag: library name (optionally namespace/ or hf.co/user/repo) and an optional :tag.
OLLAMA_TAG = re.compile(r"^[a-z0-9][a-z0-9._\-]*(/[A-Za-z0-9._\-]+)*(:[A-Za-z0-9._\-]+)?$")


def test_the_named_grids_exist():
    assert {"paper", "small", "course", "embedded"} <= set(grid_names())


def test_the_paper_grid_covers_the_studys_model_families():
    displays = {entry.display for entry in model_entries("paper")}
    study = {
        "Mistral 7B",
        "Nous Hermes Mistral 7B DPO",
        "Zephyr 7B",
        "OpenChat 3.5",
        "OpenChat 3.5-0106",
        "LLaMA 2 7B",
        "LLaMA 2 13B",
        "LLaMA 2 13B Chat",
        "LLaMA 3 8B",
        "LLaMA 3.1 8B",
        "Gemma 7B",
        "Yi 6B",
        "Nous Hermes Yi 34B",
        "Qwen2 7B",
        "InternLM2.5 7B",
        "StableBeluga 7B",
        "Vicuna 13B",
    }  # the study's display names (shared/reference/study.md, section 4.1), GPT-2 and GPTQ aside
    assert displays == study
    assert all(entry.hf_id for entry in model_entries("paper"))


def test_grids_are_tags_of_known_entries_for_the_right_backend():
    for name in grid_names():
        entries = model_entries(name)
        assert [e.tag for e in entries] == model_grid(name)
        assert len(set(model_grid(name))) == len(entries), f"grid {name} repeats a tag"
        expected_backend = "embedded" if name == "embedded" else "ollama"
        assert {e.backend for e in entries} == {expected_backend}
    for tag in model_grid("paper") + model_grid("small"):
        assert OLLAMA_TAG.match(tag), tag


def test_small_and_course_grids_are_small():
    sizes = {e.tag: e.params for e in model_entries("small")}
    assert set(model_grid("course")) <= set(sizes)
    for params in sizes.values():
        number, unit = float(params[:-1]), params[-1]
        assert unit == "M" or (unit == "B" and number <= 8), params


def test_model_grid_returns_a_fresh_list():
    model_grid("course").clear()
    assert model_grid("course")


def test_unknown_grid_lists_the_valid_ones():
    with pytest.raises(InvalidArgument, match=r"no model grid named 'huge'; choose one of \[.*'paper'"):
        model_grid("huge")


def test_model_entry_finds_tags_with_or_without_latest(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n  - {tag: 'tiny:latest', display: Tiny, family: t, params: 1M}\ngrids: {g: ['tiny:latest']}\n"
    )
    assert model_entry("tiny", path).display == "Tiny"
    assert model_entry("tiny:latest", path).family == "t"
    assert model_entry("zephyr:7b").hf_id == "HuggingFaceH4/zephyr-7b-beta"
    with pytest.raises(InvalidArgument, match="not in the model list"):
        model_entry("nothing:here")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grids: {}\n", "needs top-level 'models' and 'grids'"),
        ("models: []\ngrids: {}\nextra: 1\n", "unknown top-level keys ['extra']"),
        (
            "models:\n  - {tag: a, display: A, family: f, params: 1B, colour: red}\ngrids: {}\n",
            "unknown keys ['colour']",
        ),
        ("models:\n  - {tag: a, display: A, family: f}\ngrids: {}\n", "misses ['params']"),
        (
            "models:\n  - {tag: a, display: A, family: f, params: 1B}\n"
            "  - {tag: a, display: B, family: f, params: 1B}\ngrids: {}\n",
            "listed twice",
        ),
        ("models: []\ngrids: {g: [ghost]}\n", "grid 'g' names models not in 'models': ['ghost']"),
        ("models: [\n", "cannot be read"),
    ],
)
def test_malformed_model_lists_are_refused(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        grid_names(path)
