"""The embedded model's weights: the bundled Q4_1 re-encoded once as Q8_0, faithful to the original.

The model tests make copies in a throw-away SYNLLM_MODELS folder (about 1 s each) and
compare next-token distributions of the copy and the bundled file on real text.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from synllm import config
from synllm.backends.base import GenerationRequest
from synllm.backends.embedded import WEIGHTS, EmbeddedBackend, default_model_path, file_sha256, import_llama_cpp
from synllm.backends.embedded.weights import reencode, runtime_weights
from synllm.errors import InvalidArgument, StorageError

needs_model = pytest.mark.skipif(not EmbeddedBackend().available(), reason="llama_cpp or the SmolLM2 GGUF is missing")


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SYNLLM_MODELS", str(folder))
    return folder


def test_weights_must_be_a_known_choice():
    assert WEIGHTS == ("q8_0", "original")
    with pytest.raises(InvalidArgument, match="weights must be one of q8_0, original, got 'q4_0'"):
        EmbeddedBackend(weights="q4_0")


def test_models_cache_follows_synllm_models_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNLLM_MODELS", str(tmp_path / "m"))
    assert config.models_cache_dir() == tmp_path / "m"
    monkeypatch.delenv("SYNLLM_MODELS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.models_cache_dir() == tmp_path / "xdg" / "synllm" / "models"
    monkeypatch.setenv("SYNLLM_HOME", str(tmp_path / "home"))
    assert config.models_cache_dir() == tmp_path / "xdg" / "synllm" / "models", "shared by every SYNLLM_HOME"


def test_a_gguf_the_user_names_runs_as_it_is(models_dir, tmp_path):
    own = tmp_path / "own.gguf"
    own.write_bytes(b"GGUF")
    assert runtime_weights(own, "q8_0") == own
    assert not models_dir.exists(), "nothing re-encoded"


@needs_model
def test_the_bundled_model_is_re_encoded_once_and_reused(models_dir):
    source = default_model_path()
    assert runtime_weights(source, "original") == source
    copy = runtime_weights(source, "q8_0")
    assert copy.parent == models_dir and copy.name.endswith(".Q8_0.gguf") and file_sha256(source)[:16] in copy.name
    assert os.listdir(models_dir) == [copy.name], "no temporary file left behind"
    stamp = copy.stat().st_mtime_ns
    assert runtime_weights(source, "q8_0") == copy and copy.stat().st_mtime_ns == stamp, "made once"
    assert copy.stat().st_mode & 0o777 == 0o666 & ~_umask(), "the mode the umask gives"
    facts = EmbeddedBackend().describe()
    assert facts["sha256"] == file_sha256(source), "the manifest still names the bundled file"
    assert facts["weights_path"] == str(copy) and facts["weights_sha256"] == file_sha256(copy)
    assert EmbeddedBackend(weights="original").describe()["weights"] == "original"


@needs_model
def test_a_damaged_copy_is_made_again(models_dir):
    copy = runtime_weights(default_model_path(), "q8_0")
    good = file_sha256(copy)
    copy.write_bytes(b"GGUF" + bytes(64))  # a copy cut short on disk
    assert EmbeddedBackend().count_tokens("Hello there") > 0
    assert file_sha256(copy) == good


@needs_model
def test_re_encoding_is_byte_for_byte_repeatable(models_dir, tmp_path):
    copy = runtime_weights(default_model_path(), "q8_0")
    again = tmp_path / "again.gguf"
    reencode(default_model_path(), again)
    assert file_sha256(again) == file_sha256(copy)


@needs_model
def test_no_room_for_the_copy_is_a_storage_error_with_the_fix(models_dir, monkeypatch):
    monkeypatch.setattr("shutil.disk_usage", lambda path: SimpleNamespace(total=1, used=1, free=0))
    with pytest.raises(StorageError, match="free 200 MB there, set SYNLLM_MODELS .* or use weights='original'"):
        EmbeddedBackend().generate(GenerationRequest(model="embedded", prompt="Hi", max_tokens=2))
    assert os.listdir(models_dir) == []


@needs_model
@pytest.mark.embedded
def test_the_q8_0_copy_predicts_like_the_original_and_a_lossy_copy_does_not(models_dir, stroke_data):
    table, _ = stroke_data
    text = "Write realistic stroke patient records as CSV.\n" + table.head(12).to_csv(index=False)
    source = default_model_path()
    lossy = models_dir / "lossy.Q4_0.gguf"
    reencode(source, lossy, "Q4_0")
    tokens, original = _next_token_logprobs(source, text)
    assert len(tokens) > 300
    close = _agreement(original, _next_token_logprobs(runtime_weights(source, "q8_0"), text)[1])
    far = _agreement(original, _next_token_logprobs(lossy, text)[1])
    assert close["kl"] < 0.01 and close["top1"] > 0.9, close  # measured: KL 0.004, top-1 0.93
    assert far["kl"] > 0.05 and far["top1"] < close["top1"], far  # the check tells a lossy encoding apart (KL 0.16)


def _next_token_logprobs(path: Path, text: str) -> tuple[list[int], np.ndarray]:
    llm = import_llama_cpp().Llama(model_path=str(path), n_ctx=2048, logits_all=True, verbose=False)
    tokens = llm.tokenize(text.encode())
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    return tokens, logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def _agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    kl = (np.exp(reference) * (reference - other)).sum(axis=1)
    return {"kl": float(kl.mean()), "top1": float((reference.argmax(axis=1) == other.argmax(axis=1)).mean())}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
