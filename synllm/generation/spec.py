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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from synllm import config
from synllm.arguments import check
from synllm.cards import Card
from synllm.errors import InvalidArgument
from synllm.generation.class_mix import check_class_mix, mix_conditions, mix_key, target_classes
from synllm.generation.conditions import Condition, check_conditions
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
    ``conditions`` (:class:`~synllm.generation.conditions.Condition` values or ``"stroke=1:15"``
    texts) ask for rows that hold them, ``num_rows`` each; ``n_rows`` is then their total (None
    works out to it). ``class_mix`` (``"real"``, ``"balanced"`` or ``{class: share}``) splits
    ``n_rows`` (or each condition's rows) into per-class quotas of the card's target.
    ``rounds`` spreads ``n_rows`` over that many feedback rounds (see :mod:`synllm.generation.rounds`):
    each round after the first asks with corrections measured on the rows kept so far against
    ``train``. Values are checked on construction (:class:`~synllm.errors.InvalidArgument`).
    """

    card: Card
    prompt_type: str
    model: str
    seed: int = 0
    n_rows: int | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)
    max_requests: int | None = None
    conditions: tuple[Condition, ...] = ()
    class_mix: str | Mapping[Any, float] | None = None
    rounds: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check("seed", self.seed))
        conditions = check_conditions(self.conditions or (), self.card)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "class_mix", check_class_mix(self.class_mix))
        total = sum(c.num_rows for c in conditions)
        if conditions and self.n_rows is not None and self.n_rows != total:
            raise InvalidArgument(
                f"n_rows={self.n_rows} but the conditions ask for {total} rows in all; leave n_rows out "
                "or make the conditions' num_rows add up to it"
            )
        n_rows = total if conditions else (20 if self.n_rows is None else self.n_rows)
        object.__setattr__(self, "n_rows", check("n_rows", n_rows))
        object.__setattr__(self, "max_requests", check("max_requests", self.max_requests))
        object.__setattr__(self, "rounds", check("rounds", self.rounds))
        if self.rounds > self.n_rows:
            raise InvalidArgument(
                f"rounds={self.rounds} but n_rows={self.n_rows}: every round needs at least one row; "
                f"ask for at most {self.n_rows} rounds or for more rows"
            )

    @property
    def conditioned(self) -> bool:
        """True when the run asks for conditions or a class mix."""
        return bool(self.conditions) or self.class_mix is not None

    def quotas(self, train: pd.DataFrame | None = None) -> tuple[Condition, ...]:
        """The conditions the run fills, each with its rows: the class mix applied (``"real"`` reads ``train``)."""
        if self.class_mix is None:
            return self.conditions
        if not self.conditions:
            return mix_conditions(self.card, self.class_mix, self.n_rows, train)
        return tuple(
            part
            for condition in self.conditions
            for part in mix_conditions(self.card, self.class_mix, condition.num_rows, train, within=condition)
        )

    @property
    def request_budget(self) -> int:
        """The most requests the run makes: ``max_requests``, or enough for a 25 % valid rate plus two.

        With conditions or a class mix, the same for each condition's or class's rows (one request more each).
        """
        if self.max_requests:
            return self.max_requests
        batch = self.options.batch_size
        if not self.conditioned:
            return 4 * math.ceil(self.n_rows / batch) + 2
        sizes = [c.num_rows for c in self.conditions] or [self.n_rows]
        extra = len(target_classes(self.card)) - 1 if self.class_mix is not None else 0
        return sum(4 * (math.ceil(size / batch) + extra) for size in sizes) + 2

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
        if self.conditions:  # only then: keeps the keys of plain runs as they were
            payload["conditions"] = [c.key() for c in self.conditions]
        if self.class_mix is not None:
            payload["class_mix"] = mix_key(self.class_mix)
        if self.rounds > 1:  # only then: keeps the keys of one-shot runs as they were
            payload["rounds"] = self.rounds
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

    def request_seed(self, index: int, round_number: int = 1) -> int:
        """The LLM seed of request ``index`` (of round ``round_number``) of this run (see :func:`request_seed`)."""
        return request_seed(self.seed, index, round_number)


#: Request indexes one round may use before the next round's seeds begin.
ROUND_STRIDE = 1_000_000


def request_seed(seed: int, index: int, round_number: int = 1) -> int:
    """The LLM seed of request ``index`` (in round ``round_number``) of a run with ``seed``: distinct, reproducible.

    Round 1 keeps the seeds of a one-shot run; each later round starts :data:`ROUND_STRIDE` indexes on.
    """
    index += (round_number - 1) * ROUND_STRIDE
    return (seed * 1_000_003 + index * 7919 + 1) % 2**31
