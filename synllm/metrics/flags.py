"""Red flags per run: the failures an average hides, each with the numbers behind it.

A flag is raised by the data, not by a score threshold of the report:

- ``copying``: the share of rows equal to a training row, or echoing a prompt example, or repeating
  another row of the run, lies above the 95 % Wilson interval of what a real sample of the same size shows;
- ``detectable``: a logistic regression tells the rows from real ones with ROC AUC >= 0.9;
- ``outcome``: the real share of a target class (for a run that asked for a class mix, the requested
  share) lies outside the run's 95 % Wilson interval (the score test of "these rows have that share"),
  including a class no row has and a single class, unless that is what was asked for;
- ``out_of_range``: values beyond the real data's observed range by more than its standard deviation;
- ``missing``: a column missing far more often than in real rows (20 points or more, beyond noise);
- ``hard_rules``: a hard clinical rule broken more often than in real rows, beyond noise.

:func:`run_flags` computes them for one run; :func:`flags_text` / :func:`parse_flags` carry them
through ``runs.csv``; :func:`generator_flags` aggregates them per generator, worst first, so a
generator's headline never hides its worst run's flag.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.metrics.base import MetricResult
from synllm.metrics.columns import numeric_values
from synllm.metrics.risks import RISK_FLAGS, risk_excesses, wilson_interval

#: Kinds of flag, in the order a report lists them.
KINDS = ("copying", "privacy_risk", "detectable", "outcome", "out_of_range", "missing", "hard_rules")
#: Severities, worst first.
SEVERITIES = ("high", "warning")
#: Detection ROC AUC from which rows count as told apart from real ones.
DETECTABLE_AUC = 0.9
#: How far (in share of rows) a column's missing rate must exceed the real one to count as far above.
MISSING_EXCESS = 0.2
#: Most target classes the outcome flag checks one by one (a target with more values is continuous).
MAX_CLASSES = 10

__all__ = ["Flag", "flags_frame", "flags_text", "generator_flags", "parse_flags", "run_flags", "wilson_interval"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """One red flag of one run: its kind, severity ('high' or 'warning'), the evidence with the numbers,
    and ``value``, how far beyond its limit the run lies (for ordering runs; NaN when unknown)."""

    kind: str
    severity: str
    evidence: str
    run: str = ""
    value: float = math.nan

    @property
    def rank(self) -> tuple[int, int, float]:
        """Sort key, worst first: severity, then kind order, then the larger excess."""
        excess = -self.value if not math.isnan(self.value) else 0.0
        return SEVERITIES.index(self.severity), KINDS.index(self.kind), excess


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def _num(x: float) -> str:
    return f"{x:.4g}"


def _by_name(results: Iterable[MetricResult] | None) -> dict[str, MetricResult]:
    return {r.name: r for r in results or ()}


# --- the flags, one function per kind --------------------------------------------------------------


def _above_reference(rate: float, reference_rate: float, n: int) -> tuple[bool, float]:
    """Whether ``rate`` lies above the Wilson interval of a real sample of ``n`` rows at ``reference_rate``."""
    high = wilson_interval(round(reference_rate * n), n)[1]
    return rate > high, high


def copying_flags(synthetic: pd.DataFrame, card: Card, results, reference) -> list[Flag]:
    """Copies of training rows or prompt examples, and one row repeated, above a real sample's interval."""
    mine, theirs, flags = _by_name(results), _by_name(reference), []
    n = len(synthetic)
    exact = mine.get("exact_match")
    if exact is not None and exact.ok:
        fresh = float(exact.details.get("fresh_patient_rate", 0.0))
        above, high = _above_reference(exact.raw, fresh, n)
        if above:
            k = int(exact.details.get("synthetic_matches", round(exact.raw * n)))
            flags.append(
                Flag(
                    kind="copying",
                    severity="high",
                    value=exact.raw - high,
                    evidence=f"{k} of {n} rows ({_pct(exact.raw)}) equal a training row word for word; a real "
                    f"patient matches one {_pct(fresh)} of the time (95 % up to {_pct(high)} at {n} rows)",
                )
            )
    echo, echo_ref = mine.get("exemplar_echo"), theirs.get("exemplar_echo")
    if echo is not None and echo.ok:
        ref_rate = float(echo.details.get("holdout_rate", echo_ref.raw if echo_ref and echo_ref.ok else 0.0))
        above, high = _above_reference(echo.raw, ref_rate, n)
        if above:
            worst = int(echo.details.get("max_echoes_of_one_example", 0))
            flags.append(
                Flag(
                    kind="copying",
                    severity="high",
                    value=echo.raw - high,
                    evidence=f"{_pct(echo.raw)} of rows echo a prompt example (one example {worst} times); real "
                    f"unseen patients: {_pct(ref_rate)} (95 % up to {_pct(high)} at {n} rows)",
                )
            )
    flags += _repeat_flags(synthetic, card, theirs.get("exact_match"))
    return flags


def _repeat_flags(synthetic: pd.DataFrame, card: Card, exact_ref: MetricResult | None) -> list[Flag]:
    """One row written many times: the run's share of repeated rows above a real sample's interval."""
    from synllm.metrics.privacy import row_keys

    cols = [c for c in card.synth_names if c in synthetic.columns]
    n = len(synthetic)
    if n < 2 or not cols:
        return []
    keys = row_keys(synthetic, cols, card)
    repeats = float(keys.duplicated().mean())
    real = float(exact_ref.details.get("synthetic_duplicate_rate", 0.0)) if exact_ref and exact_ref.ok else 0.0
    above, high = _above_reference(repeats, real, n)
    if not above:
        return []
    most = int(keys.value_counts().iloc[0])
    return [
        Flag(
            kind="copying",
            severity="high",
            value=repeats - high,
            evidence=f"one row appears {most} times in {n} rows ({_pct(repeats)} of rows repeat an earlier one; "
            f"a real sample of {n} rows: {_pct(real)}, 95 % up to {_pct(high)})",
        )
    ]


def risk_flags(results, reference) -> list[Flag]:
    """Singling out, linkability or inference beyond real patients (:func:`synllm.metrics.risks.risk_excesses`)."""
    return [
        Flag(kind="privacy_risk", severity="high", value=low - real, evidence=f"{RISK_FLAGS[name]}: {name} risk "
             f"at least {low:.2f} (95 % lower bound), a real sample of the same size {real:.2f}")
        for name, low, real in risk_excesses(results, reference)
    ]  # fmt: skip


def detectable_flags(results, reference) -> list[Flag]:
    """Rows a logistic regression tells from real ones with AUC >= :data:`DETECTABLE_AUC`."""
    result, ref = _by_name(results).get("logistic_detection"), _by_name(reference).get("logistic_detection")
    if result is None or not result.ok or result.raw < DETECTABLE_AUC:
        return []
    real = f"; a real sample of the same size: {result_raw(ref):.2f}" if ref is not None and ref.ok else ""
    return [
        Flag(
            kind="detectable",
            severity="high",
            value=result.raw - DETECTABLE_AUC,
            evidence=f"a logistic regression tells these rows from real ones with ROC AUC {result.raw:.2f} "
            f"(0.5 = cannot tell; flagged from {DETECTABLE_AUC}){real}",
        )
    ]


def result_raw(result: MetricResult) -> float:
    """A result's raw value (NaN when it did not run)."""
    return result.raw if result.ok else math.nan


def outcome_flags(
    synthetic: pd.DataFrame, train: pd.DataFrame, card: Card, requested: Mapping[str, float] | None = None
) -> list[Flag]:
    """Target classes whose expected share lies outside the run's 95 % Wilson interval (missing, single class).

    Expected: the real share (``train``), or for a run that asked for a class mix the ``requested`` one
    (class as text -> rows): a balanced stroke run with half strokes is right, and a class requested
    at 0 rows may be absent (a single class is flagged only when the run expected two or more).
    """
    if not card.target or card.target not in synthetic.columns or not (requested or card.target in train.columns):
        return []
    if requested:
        asked = pd.Series({str(k): float(v) for k, v in requested.items()}, dtype=float)
        expected = asked / asked.sum()
    else:
        expected = target_values(train, card).dropna().astype("string").value_counts(normalize=True)
    if len(expected) > MAX_CLASSES or (not requested and len(expected) < 2):
        return []
    mine = target_values(synthetic, card).dropna().astype("string")
    n, what = len(mine), card.target_positive or card.target
    if n == 0:
        return [Flag(kind="outcome", severity="high", value=1.0, evidence=f"no row has a value of {what}")]
    counts = mine.value_counts()
    expected = expected.reindex(expected.index.union(counts.index, sort=False), fill_value=0.0)
    one = len(counts) == 1 and (expected > 0).sum() > 1  # a single class, not what the run asked for
    single = f"a single class: all {n} rows have {what} = {counts.index[0]}; " if one else ""
    found = []
    for label, share in expected.items():
        k = int(counts.get(label, 0))
        low, high = wilson_interval(k, n)
        if low <= share <= high:
            continue
        missing = " (a class no row has)" if k == 0 else ""
        basis = f"requested: {asked.get(label, 0):g} of {asked.sum():g} ({_pct(share)})" if requested else ""
        evidence = f"{single}{what} = {label} in {k} of {n} rows ({_pct(k / n)}, 95 % {_pct(low)} to {_pct(high)})"
        severity = "high" if k in (0, n) or share == 0 else "warning"
        flag = Flag(kind="outcome", severity=severity, value=abs(k / n - share),
                    evidence=f"{evidence}{missing}; {basis or f'real: {_pct(share)}'}")  # fmt: skip
        found.append((round(-flag.value, 9), share, k > 0, flag))
    return [flag for *_, flag in sorted(found, key=lambda f: f[:3])][:1]  # worst; tie: rarest expected, then missing


def out_of_range_flags(synthetic: pd.DataFrame, train: pd.DataFrame, card: Card) -> list[Flag]:
    """Numeric values beyond the real observed range by more than the real standard deviation."""
    flags = []
    for col in card.synth_columns:
        if not col.is_numeric or col.name not in synthetic.columns or col.name not in train.columns:
            continue
        real = numeric_values(train[col.name])
        real = real[~np.isnan(real)]
        mine = numeric_values(synthetic[col.name])
        present = mine[~np.isnan(mine)]
        if len(real) < 2 or len(present) == 0:
            continue
        low, high, sd = float(real.min()), float(real.max()), float(real.std(ddof=1))
        if sd == 0:
            continue
        beyond = (present > high + sd) | (present < low - sd)
        k = int(beyond.sum())
        if k == 0:
            continue
        worst = present[beyond][np.argmax(np.abs(present[beyond] - (low + high) / 2))]
        share = k / len(present)
        flags.append(
            Flag(
                kind="out_of_range",
                severity="high" if share >= 0.1 else "warning",
                value=share,
                evidence=f"{col.name} = {_num(worst)} in {k} of {len(present)} rows beyond the real range "
                f"{_num(low)} to {_num(high)} by more than its SD ({_num(sd)})",
            )
        )
    return flags


def missing_flags(synthetic: pd.DataFrame, train: pd.DataFrame, card: Card) -> list[Flag]:
    """Columns missing :data:`MISSING_EXCESS` or more above the real rate, beyond the run's Wilson interval."""
    flags, n = [], len(synthetic)
    for name in card.synth_names:
        if name not in synthetic.columns or name not in train.columns or n == 0:
            continue
        k = int(synthetic[name].isna().sum())
        real = float(train[name].isna().mean())
        low, _ = wilson_interval(k, n)
        if k / n - real >= MISSING_EXCESS and low > real:
            flags.append(
                Flag(
                    kind="missing",
                    severity="high" if k == n else "warning",
                    value=k / n - real,
                    evidence=f"{name} missing in {k} of {n} rows ({_pct(k / n)}); real: {_pct(real)}",
                )
            )
    return flags


def hard_rule_flags(results) -> list[Flag]:
    """Hard rules broken more often than in real rows, beyond the run's Wilson interval."""
    result = _by_name(results).get("hard_rule_violation_rate")
    if result is None:
        return []
    flags = []
    for rule_id, info in result.details.get("rules", {}).items():
        syn, real = info.get("synthetic", {}), info.get("real", {})
        n, k = int(syn.get("applicable", 0)), int(syn.get("violations", 0))
        real_rate = float(real.get("rate", 0.0)) if not math.isnan(real.get("rate", 0.0)) else 0.0
        if k == 0 or wilson_interval(k, n)[0] <= real_rate:
            continue
        flags.append(
            Flag(
                kind="hard_rules",
                severity="high" if k / n >= 0.1 else "warning",
                value=k / n - real_rate,
                evidence=f"rule {rule_id!r} broken by {k} of {n} applicable rows ({_pct(k / n)}; real: "
                f"{_pct(real_rate)})",
            )
        )
    return flags


def run_flags(
    synthetic: pd.DataFrame,
    *,
    train: pd.DataFrame,
    card: Card,
    results: Sequence[MetricResult] = (),
    reference: Sequence[MetricResult] | None = None,
    run: str = "",
    requested_mix: Mapping[str, float] | None = None,
) -> tuple[Flag, ...]:
    """Every red flag of one run, worst first (``results``/``reference``: its metric results and the
    real reference sample's, as :func:`synllm.metrics.evaluate` computes them; ``requested_mix``: the
    rows per target class a run asked for, which its outcome mix is judged against)."""
    flags = [
        *copying_flags(synthetic, card, results, reference),
        *risk_flags(results, reference),
        *detectable_flags(results, reference),
        *outcome_flags(synthetic, train, card, requested_mix),
        *out_of_range_flags(synthetic, train, card),
        *missing_flags(synthetic, train, card),
        *hard_rule_flags(results),
    ]
    return tuple(sorted((replace(f, run=run) for f in flags), key=lambda f: f.rank))


# --- through runs.csv and per generator ---------------------------------------------------------

_SEP = " | "
_ITEM = re.compile(r"^(\w+) \((\w+)\): (.*)$", re.S)


def flags_text(flags: Iterable[Flag]) -> str:
    """One cell of ``runs.csv``: 'kind (severity): evidence | ...' ('' when there is none).

    >>> flags_text([Flag(kind="detectable", severity="high", evidence="AUC 0.93")])
    'detectable (high): AUC 0.93'
    """
    return _SEP.join(f"{f.kind} ({f.severity}): {f.evidence.replace(_SEP, ', ')}" for f in flags)


def parse_flags(text: object, run: str = "") -> list[Flag]:
    """The flags of a ``runs.csv`` cell (see :func:`flags_text`); empty for '' or a missing cell."""
    if not isinstance(text, str) or not text.strip():
        return []
    flags = []
    for part in text.split(_SEP):
        found = _ITEM.match(part.strip())
        if found and found.group(1) in KINDS and found.group(2) in SEVERITIES:
            flags.append(Flag(kind=found.group(1), severity=found.group(2), evidence=found.group(3), run=run))
    return flags


def flags_frame(flags: Iterable[Flag]) -> pd.DataFrame:
    """A table of flags: run, kind, severity, evidence, value (worst first)."""
    rows = [
        {"run": f.run, "kind": f.kind, "severity": f.severity, "evidence": f.evidence, "value": f.value}
        for f in sorted(flags, key=lambda f: f.rank)
    ]
    return pd.DataFrame(rows, columns=["run", "kind", "severity", "evidence", "value"])


def generator_flags(runs: pd.DataFrame) -> pd.DataFrame:
    """Per generator and flag kind, worst first: how many of its runs raise it, and the worst run's evidence.

    ``runs`` is a runs table (``runs.csv``) with ``label``, ``seed`` and ``flags`` columns. Columns:
    generator, kind, severity, runs_flagged, runs, worst_run, evidence. A generator with a flagged run
    always has a row, whatever its mean scores say.
    """
    columns = ["generator", "kind", "severity", "runs_flagged", "runs", "worst_run", "evidence"]
    if runs.empty or "flags" not in runs:
        return pd.DataFrame(columns=columns)
    rows = []
    for label, group in runs.groupby("label", sort=False):
        found = [f for _, r in group.iterrows() for f in parse_flags(r["flags"], run=f"seed {r['seed']}")]
        for kind in KINDS:
            these = sorted((f for f in found if f.kind == kind), key=lambda f: f.rank)
            if not these:
                continue
            worst = these[0]
            rows.append(
                {
                    "generator": label,
                    "kind": kind,
                    "severity": worst.severity,
                    "runs_flagged": len({f.run for f in these}),
                    "runs": len(group),
                    "worst_run": worst.run,
                    "evidence": worst.evidence,
                }
            )
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    order = frame.assign(
        _s=frame["severity"].map(SEVERITIES.index), _k=frame["kind"].map(KINDS.index), _n=-frame["runs_flagged"]
    )
    return order.sort_values(["_s", "_k", "_n"], kind="stable").drop(columns=["_s", "_k", "_n"]).reset_index(drop=True)
