"""What one run is: a frozen :class:`RunSpec`, from which its cache key, its folder and its manifest come.

A run is a card, a prompt type, a model and a seed, with its sampling options
(:class:`GenerationOptions`, part of the cache key) and how much to make (``n_rows``, and
``max_requests`` as the bound on asking). ``n_rows`` and ``max_requests`` sit in the spec,
not in the options: they say how much of a run to make, not what a model is asked, so a
run asked for more rows extends the same cache (neither is in the key).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from synllm import config
from synllm.arguments import check
from synllm.cards import Card
from synllm.errors import InvalidArgument
from synllm.prompts import Prompt, render_prompt


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationOptions:
    """Sampling and batching options, checked by the rules of :mod:`synllm.arguments`.

    All but ``timeout_s`` are part of a run's cache key. ``timeout_s`` bounds each model
    request in seconds (None: the backend's own, for servers ``$SYNLLM_TIMEOUT`` or 120 s).
    """

    batch_size: int = 20
    temperature: float = 0.7
    top_p: float = 0.9
    k_examples: int = 5
    max_tokens: int | None = None
    num_ctx: int | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        for option in fields(self):
            object.__setattr__(self, option.name, check(option.name, getattr(self, option.name)))

    def as_dict(self) -> dict[str, Any]:
        """Every option by name, as the manifest records them."""
        return {option.name: getattr(self, option.name) for option in fields(self)}


#: Options that do not change what a model writes, so they stay out of the cache key.
NOT_IN_KEY = frozenset({"timeout_s"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """One run: what identifies it (card, prompt type, model, seed, options) and how much of it to make.

    ``max_requests`` None means enough for a 25 % valid rate, plus two (:attr:`request_budget`).
    ``conditions`` and ``rounds`` are reserved for conditional generation and feedback rounds:
    today a run has no conditions and one round. Values are checked on construction
    (:class:`~synllm.errors.InvalidArgument`).
    """

    card: Card
    prompt_type: str
    model: str
    seed: int = 0
    n_rows: int = 20
    options: GenerationOptions = field(default_factory=GenerationOptions)
    max_requests: int | None = None
    conditions: tuple[Any, ...] = ()
    rounds: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check("seed", self.seed))
        object.__setattr__(self, "n_rows", check("n_rows", self.n_rows))
        object.__setattr__(self, "max_requests", check("max_requests", self.max_requests))
        if self.conditions or self.rounds != 1:
            raise InvalidArgument(
                f"conditions={self.conditions!r}, rounds={self.rounds!r}: conditional generation and feedback "
                "rounds are not available yet; leave conditions empty and rounds at 1"
            )

    @property
    def request_budget(self) -> int:
        """The most requests the run makes: ``max_requests``, or enough for a 25 % valid rate plus two."""
        return self.max_requests or 4 * math.ceil(self.n_rows / self.options.batch_size) + 2

    def key(self, backend_name: str, prompt_sha256: str) -> str:
        """Cache key: dataset, backend, model, prompt type and hash, seed and options (not ``n_rows``)."""
        payload: dict[str, Any] = {
            "dataset": self.card.name,
            "backend": backend_name,
            "model": self.model,
            "prompt_type": self.prompt_type,
            "prompt_sha256": prompt_sha256,
            "seed": self.seed,
            "options": {k: v for k, v in self.options.as_dict().items() if k not in NOT_IN_KEY},
        }
        if self.conditions or self.rounds != 1:  # never today; keeps the keys of plain runs as they were
            payload.update(conditions=list(self.conditions), rounds=self.rounds)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def run_dir(self, key: str, root: Path | None = None) -> Path:
        """Where the run lives: ``<root>/<dataset>/<model>/<prompt type>/seed<seed>-<key>``."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model).strip("_") or "model"
        return (
            Path(root or config.runs_dir()) / self.card.name / slug / self.prompt_type / f"seed{self.seed}-{key[:10]}"
        )

    def prompt(self, train: pd.DataFrame, output: str) -> Prompt:
        """The run's prompt in ``output`` format: ``batch_size`` rows asked, ``k_examples`` rows of ``train`` shown."""
        return render_prompt(
            self.card,
            train,
            self.prompt_type,
            n_rows=self.options.batch_size,
            k_examples=self.options.k_examples,
            seed=self.seed,
            output=output,
        )

    def request_seed(self, index: int) -> int:
        """The LLM seed of request ``index`` of this run (see :func:`request_seed`)."""
        return request_seed(self.seed, index)


def request_seed(seed: int, index: int) -> int:
    """The LLM seed of request ``index`` of a run with ``seed``: distinct and reproducible."""
    return (seed * 1_000_003 + index * 7919 + 1) % 2**31
