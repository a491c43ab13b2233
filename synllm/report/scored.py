"""What a report is made from: the study's data split and its scored tables (values, built by :mod:`synllm.study`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from synllm.cards import Card
from synllm.generation.manifest import RunManifest
from synllm.metrics.evaluation import Evaluation


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyData:
    """A dataset split for a study: generation sees ``train``; scoring uses the ``eval_*`` samples.

    ``eval_train`` is a random sample of at most ``eval_max_rows`` train rows that always
    contains every row a prompt showed as an example (so copies of them count as copies
    of training rows); ``eval_holdout`` is a random sample of the holdout.
    """

    card: Card
    table: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    eval_train: pd.DataFrame
    eval_holdout: pd.DataFrame
    split_seed: int

    @property
    def name(self) -> str:
        """The dataset (card) name."""
        return self.card.name


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredRun:
    """One scored synthetic table: an LLM run (``kind='llm'``) or a baseline (``kind='baseline'``)."""

    kind: str
    model: str
    prompt_type: str
    seed: int
    synthetic: pd.DataFrame = field(repr=False)
    evaluation: Evaluation = field(repr=False)
    examples: pd.DataFrame | None = field(default=None, repr=False)
    manifest: RunManifest | None = field(default=None, repr=False)
    valid_rate: float | None = None  # share of drawn rows that passed the validator (baselines; LLM runs: manifest)
    requested: tuple = ()  # a baseline's quotas per condition, in the manifest's shape (LLM runs: manifest)

    @property
    def label(self) -> str:
        """How tables and charts name this run's generator, e.g. 'smollm2 · p4' or 'baseline · independent'."""
        return f"{self.model} · {self.prompt_type}" if self.kind == "llm" else f"baseline · {self.model}"
