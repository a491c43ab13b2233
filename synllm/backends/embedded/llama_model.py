"""One GGUF model loaded through llama.cpp's C API: vocabulary, chat prompt, grammars.

The model (weights, vocabulary) is loaded once per process and path and shared by
every context (see :mod:`.decoder`); it holds no decoding state, so token counts
and grammar checks need no lock and no context.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synllm.backends.embedded.runtime import import_llama_cpp, quiet_logs
from synllm.errors import BackendError

_LOAD_LOCK = threading.Lock()
_MODELS: dict[str, LoadedModel] = {}
_MAX_GRAMMARS = 64  # grammars are per (card, rows); a long run needs only a few
#: The group of tokens with no text (special tokens) in :meth:`LoadedModel.first_bytes`.
NO_TEXT = 256


@dataclass(slots=True, kw_only=True)
class LoadedModel:
    """A loaded llama.cpp model and what every request needs from it."""

    llama_cpp: Any
    path: Path
    model: Any  # llama_model *
    vocab: Any  # const llama_vocab *
    n_vocab: int
    n_ctx_train: int
    chat_template: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    pieces: dict[int, bytes] = field(default_factory=dict)
    grammars: dict[str, Any] = field(default_factory=dict)  # GBNF text -> a fresh grammar sampler (cloned per use)
    decoders: dict[int, Any] = field(default_factory=dict)  # n_ctx -> Decoder
    _first_bytes: Any = None

    def first_bytes(self) -> tuple[Any, Any]:
        """Tokens grouped by the byte their text starts with, and each byte's one-byte token (or -1).

        A token can only come next under a grammar if its first byte can, which that byte's
        own token tells (llama.cpp's grammar also takes a partial UTF-8 character):
        :mod:`.sampling` asks the grammar about the 256 one-byte tokens before any other.
        Tokens with no text (special tokens such as the end token) are group ``NO_TEXT``.
        """
        if self._first_bytes is None:
            import numpy as np

            pieces = [self.piece(t) for t in range(self.n_vocab)]
            first = np.array([p[0] if p else NO_TEXT for p in pieces], dtype=np.int16)
            order = np.argsort(first, kind="stable")
            bounds = np.searchsorted(first[order], np.arange(NO_TEXT + 2))
            groups = [order[bounds[b] : bounds[b + 1]].astype(np.int32) for b in range(NO_TEXT + 1)]
            single = np.full(NO_TEXT, -1, dtype=np.int32)
            for token in range(self.n_vocab - 1, -1, -1):  # the lowest id wins where pieces repeat
                if len(pieces[token]) == 1:
                    single[pieces[token][0]] = token
            self._first_bytes = (groups, single)
        return self._first_bytes

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text`` (no BOS added; special tokens such as ``<|im_start|>`` parsed when ``special``)."""
        raw = text.encode("utf-8")
        size = len(raw) + 16
        for _ in range(2):
            buffer = (self.llama_cpp.llama_token * size)()
            n = self.llama_cpp.llama_tokenize(self.vocab, raw, len(raw), buffer, size, False, special)
            if n >= 0:
                return list(buffer[:n])
            size = -n
        raise BackendError(f"llama.cpp could not tokenize a {len(raw)}-byte text with {self.path.name}")

    def piece(self, token: int) -> bytes:
        """The bytes one token stands for (special tokens render as nothing)."""
        found = self.pieces.get(token)
        if found is None:
            buffer = ctypes.create_string_buffer(128)
            n = self.llama_cpp.llama_token_to_piece(self.vocab, token, buffer, 128, 0, False)
            found = buffer.raw[: max(0, n)]
            self.pieces[token] = found
        return found

    def detokenize(self, tokens: list[int]) -> str:
        """The text of generated tokens."""
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def is_end(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, end of turn)."""
        return bool(self.llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def chat_prompt(self, system: str | None, user: str) -> str:
        """The prompt text the model's own chat template makes of the messages (as llama-cpp-python renders it)."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        if not self.chat_template:  # a GGUF without a template: plain text, answer after a blank line
            return "\n\n".join(m["content"] for m in messages) + "\n\n"
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        special = [self.llama_cpp.llama_vocab_eos(self.vocab), self.llama_cpp.llama_vocab_bos(self.vocab)]
        eos, bos = (self._token_text(t) for t in special)
        formatter = Jinja2ChatFormatter(template=self.chat_template, eos_token=eos, bos_token=bos)
        return formatter(messages=messages).prompt

    def grammar(self, text: str) -> Any:
        """A fresh llama.cpp grammar sampler for a GBNF text (clone it to use it); BackendError if it does not parse."""
        with self.lock:
            if text in self.grammars:
                return self.grammars[text]
        sampler = self.llama_cpp.llama_sampler_init_grammar(self.vocab, text.encode("utf-8"), b"root")
        if not sampler:
            first = text.strip().splitlines()[0][:120] if text.strip() else "(empty)"
            raise BackendError(
                f"llama.cpp rejected the GBNF grammar starting {first!r} (its parser printed why on stderr); "
                "build grammars with synllm.generation.constraints.to_gbnf"
            )
        with self.lock:
            if len(self.grammars) >= _MAX_GRAMMARS:
                for old in self.grammars.values():
                    self.llama_cpp.llama_sampler_free(old)
                self.grammars.clear()
            return self.grammars.setdefault(text, sampler)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return (self.llama_cpp.llama_vocab_get_text(self.vocab, token) or b"").decode("utf-8", "replace")


def load_model(path: Path) -> LoadedModel:
    """The model at ``path``, loaded on first use and kept for the process; BackendError if it is no GGUF."""
    key = str(path)
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        llama_cpp = import_llama_cpp()
        quiet_logs(llama_cpp)
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        model = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not model:
            raise BackendError(f"llama.cpp could not load {path}; is it a GGUF model file?")
        vocab = llama_cpp.llama_model_get_vocab(model)
        template = llama_cpp.llama_model_chat_template(model, None)
        loaded = LoadedModel(
            llama_cpp=llama_cpp,
            path=path,
            model=model,
            vocab=vocab,
            n_vocab=int(llama_cpp.llama_vocab_n_tokens(vocab)),
            n_ctx_train=int(llama_cpp.llama_model_n_ctx_train(model)),
            chat_template=template.decode("utf-8", "replace") if template else None,
        )
        _MODELS[key] = loaded
        return loaded


def loaded_models() -> list[LoadedModel]:
    """Every model loaded in this process."""
    with _LOAD_LOCK:
        return list(_MODELS.values())
