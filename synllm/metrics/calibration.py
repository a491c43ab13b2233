"""One calibration principle: every score is judged against what real patients get at the same size.

For each metric, the run's score is divided by the score of a real holdout sample of the
same number of rows (the *reference*), capped at 1: 1 means "as good as real unseen
patients", 0.5 "half as good". A family score is the mean of these relative scores over
the family's headline metrics that could be measured; the reference decides what can be
measured at this size:

* the metric ran on both sides: its relative score counts;
* it ran on the reference, but the reference itself does not beat chance beyond its interval (utility:
  ``beats_chance`` False): *not enough data*, as below;
* it ran on the reference but the run's rows lack what real rows have (a single target
  class, no value in a column the metric needs, an empty group a rule compares; the metric
  says so with ``rows_failed``): the rows failed where real patients succeed, so it counts 0,
  with the run's reason;
* it ran on the reference but not on the run for a reason of chance (a fit that did not
  converge on these rows): like *not enough data* below, it does not count;
* the reference could not run it either (too few rows, too few events at this size): it
  is *not enough data*, and does not count;
* it does not apply (no example rows to echo, no exposed record to attack, no rule in the
  card): it is left out altogether;
* a metric whose spec says ``headline=False`` (k-anonymity) is shown, never averaged; so is a result whose
  details give a ``shown_only`` reason (row validity, whose breaks the hard-rule metric already counts, and
  hard rules that hold by construction: ranges that validation and the grammar enforce).

When no more than half of a family's applicable metrics can be measured, the family score
is NaN and says why; quality Q (mean of fidelity, consistency and utility), privacy P and
H = 2PQ/(P+Q) are NaN whenever a family they need is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from synllm.metrics.base import FAMILIES, MetricResult, get_metric

QUALITY_FAMILIES = ("fidelity", "consistency", "utility")
#: Status of a metric in the family scores.
SCORED, FAILED, NOT_ENOUGH, NOT_APPLICABLE, SHOWN_ONLY, NO_REFERENCE = (
    "scored",
    "failed where real patients succeed",
    "not enough data",
    "not applicable",
    "shown, not averaged",
    "no reference",
)
COUNTED = (SCORED, FAILED)
#: Privacy of a generator that was shown no real record: it holds by design, and is no score to average.
BY_DESIGN = "by design: no record shown"


def privacy_by_design(families: pd.DataFrame) -> pd.DataFrame:
    """``families`` with privacy set to NaN, status :data:`BY_DESIGN`: the generator saw no real record, so a
    privacy score of 1 would only lift H; its quality is compared alone."""
    out = families.copy()
    out.loc["privacy", ["score", "status"]] = [math.nan, BY_DESIGN]
    out.loc["privacy", "reason"] = (
        "by design: no record shown (the generator saw no real record, so privacy does not apply; "
        "compare its quality alone)"
    )
    return out


def harmonic_score(privacy: float, quality: float) -> float:
    """H = 2PQ / (P + Q); 0 when both are 0, NaN when either is NaN.

    >>> harmonic_score(0.5, 1.0)
    0.6666666666666666
    """
    if math.isnan(privacy) or math.isnan(quality):
        return math.nan
    return 0.0 if privacy + quality == 0 else 2 * privacy * quality / (privacy + quality)


def relative_score(score: float, reference: float) -> float:
    """The run's score as a share of the real sample's, capped at 1 (1 when the real sample scores 0).

    >>> relative_score(0.45, 0.9), relative_score(0.95, 0.9), relative_score(0.2, 0.0)
    (0.5, 1.0, 1.0)
    """
    if math.isnan(score) or math.isnan(reference):
        return math.nan
    return 1.0 if reference <= 0 else min(1.0, score / reference)


def metric_status(result: MetricResult, reference: MetricResult | None) -> tuple[str, float, str]:
    """(status, relative score, reason) of one metric of a run, given the reference sample's result."""
    spec, _ = get_metric(result.name)
    if not spec.headline:
        return SHOWN_ONLY, math.nan, "rates the synthetic table alone; shown, not averaged"
    if result.ok and isinstance(result.details.get("shown_only"), str):
        return SHOWN_ONLY, math.nan, result.details["shown_only"]
    if not result.applicable:
        return NOT_APPLICABLE, math.nan, result.skipped or ""
    if reference is None:
        return NO_REFERENCE, math.nan, "evaluated without a real reference sample"
    if not reference.applicable:
        return NOT_APPLICABLE, math.nan, reference.skipped or ""
    if not reference.ok:
        return NOT_ENOUGH, math.nan, reference_reason(reference.skipped or "")
    if not result.ok and result.rows_failed:
        return FAILED, 0.0, result.skipped or ""
    if reference.details.get("beats_chance") is False:
        low, high = reference.details.get("auc_interval", (math.nan, math.nan))
        return (
            NOT_ENOUGH,
            math.nan,
            (
                f"a real sample of the same size does not beat chance beyond its interval (AUC {reference.raw:.2f}, "
                f"95 % {low:.2f} to {high:.2f}), so nothing can be judged against it"
            ),
        )
    if not result.ok:
        return NOT_ENOUGH, math.nan, f"the run's rows could not be scored at this size ({result.skipped})"
    return SCORED, relative_score(result.score, reference.score), str(result.details.get("coverage", ""))


def reference_reason(skipped: str) -> str:
    """Why the real reference sample could not be scored, worded as the reference's (the metric calls the table
    it scores 'synthetic', and the reference is shared by every run of the same size, so its counts are not the run's).

    >>> reference_reason("the synthetic target 'y' has a single class")
    "the real reference sample of the same size cannot be scored either: its target 'y' has a single class"
    """
    text = re.sub(r"\bthe synthetic (target|rows|table)\b", r"its \1", skipped)
    text = re.sub(r"\bsynthetic\b", "reference", text)
    return f"the real reference sample of the same size cannot be scored either: {text}"


def status_frame(results: Sequence[MetricResult], reference: Sequence[MetricResult] | None) -> pd.DataFrame:
    """One row per metric: name, family, status, relative score and reason (see :func:`metric_status`)."""
    ref = {r.name: r for r in reference} if reference is not None else {}
    rows = []
    for r in results:
        theirs = ref.get(r.name) if reference is not None else None
        status, relative, reason = metric_status(r, theirs)
        # Measured on both sides but true by construction: not averaged, yet it was checked (the family's quorum).
        checked = status == SHOWN_ONLY and "shown_only" in r.details and theirs is not None and theirs.ok
        rows.append(
            {
                "name": r.name,
                "family": r.family,
                "status": status,
                "relative": relative,
                "reason": reason,
                "checked": checked,
            }
        )
    return pd.DataFrame(rows, columns=["name", "family", "status", "relative", "reason", "checked"])


def family_frame(statuses: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """Per family: score (mean relative score), n_scored, n_metrics, skipped names, status and reason.

    ``n_metrics`` counts the applicable headline metrics; a family with no more than half of
    them measurable is NaN with the reason ("not enough data ... at n rows"). A metric measured on both
    sides but true by construction (``checked``) counts as measured for that quorum, never in the mean.
    """
    rows = []
    for family in FAMILIES:
        part = statuses[statuses["family"] == family]
        checked = part["checked"].fillna(False).astype(bool) if "checked" in part else pd.Series(False, part.index)
        members = part[part["status"].isin([SCORED, FAILED, NOT_ENOUGH, NO_REFERENCE]) | checked]
        counted = part[part["status"].isin(COUNTED)]
        n_checked = int(checked.sum())
        skipped = tuple(part.loc[~part["status"].isin([SCORED, SHOWN_ONLY]), "name"])
        score, status, reason = math.nan, "ok", ""
        if members.empty:
            status, reason = "not evaluated", "no applicable metric of this family was evaluated"
        elif (members["status"] == NO_REFERENCE).all():
            status, reason = NO_REFERENCE, "scores are relative to a real reference sample, and none was drawn"
        elif 2 * (len(counted) + n_checked) <= len(members):  # a majority of its metrics, or no family score
            lacking = members[members["status"] == NOT_ENOUGH]
            status = NOT_ENOUGH
            reason = (
                f"not enough rows: only {len(counted) + n_checked} of {len(members)} {family} metrics can be computed "
                f"at {n_rows} rows ({_grouped_reasons(lacking)})"
            )
        elif counted.empty:
            status = NOT_ENOUGH
            reason = f"not enough rows: the {family} metrics measured at {n_rows} rows hold by construction"
        else:
            score = float(counted["relative"].mean())
            failed = counted[counted["status"] == FAILED]
            notes = counted[(counted["status"] == SCORED) & (counted["reason"].fillna("") != "")]
            parts = [f"{n}: {r}" for n, r in zip(notes["name"], notes["reason"])]  # e.g. '1 of 5 rules measured'
            if len(failed):
                parts.insert(
                    0,
                    "scored 0 where real patients score: "
                    + "; ".join(f"{n} ({r})" for n, r in zip(failed["name"], failed["reason"])),
                )
            reason = "; ".join(parts)
        rows.append(
            {
                "family": family,
                "score": score,
                "n_scored": len(counted),
                "n_metrics": len(members),
                "skipped": skipped,
                "status": status,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows).set_index("family")


_NEEDS = re.compile(r"not enough rows: needs at least (\d+) synthetic rows")


def _grouped_reasons(lacking: pd.DataFrame) -> str:
    """'ks_complement, tv_complement need 20 rows; tstr: <reason>' — metrics grouped by the rows they need.

    >>> _grouped_reasons(pd.DataFrame({"name": ["a", "b", "c"], "reason": [
    ...     "not enough rows: needs at least 20 synthetic rows, got 10",
    ...     "not enough rows: needs at least 20 synthetic rows, got 10", "too few events"]}))
    'a, b need 20 rows; c: too few events'
    """
    needs: dict[int, list[str]] = {}
    other = []
    for name, reason in zip(lacking["name"], lacking["reason"]):
        found = _NEEDS.search(reason)
        if found:
            needs.setdefault(int(found.group(1)), []).append(name)
        else:
            other.append(f"{name}: {reason}")
    parts = [
        f"{', '.join(names)} need{'s' if len(names) == 1 else ''} {rows} rows" for rows, names in sorted(needs.items())
    ]
    return "; ".join(parts + other)


def headline_scores(families: pd.DataFrame) -> dict[str, float]:
    """Q (mean of the evaluated quality families), P and H; NaN when a family they need is NaN."""
    evaluated = families[families["status"] != "not evaluated"]
    quality_parts = [f for f in QUALITY_FAMILIES if f in evaluated.index]
    quality = float(np.mean([evaluated.at[f, "score"] for f in quality_parts])) if quality_parts else math.nan
    privacy = float(families.at["privacy", "score"])
    return {"quality": quality, "privacy": privacy, "harmonic": harmonic_score(privacy, quality)}


def headline_reasons(families: pd.DataFrame) -> list[str]:
    """Why Q, P or H is NaN: one sentence per family that could not be scored."""
    return [
        f"{family}: {row.reason}"
        for family, row in families.iterrows()
        if row.status not in ("ok", "not evaluated") or (family == "privacy" and row.status == "not evaluated")
    ]


def minimum_rows(families: Sequence[str] = FAMILIES) -> int:
    """The fewest rows at which more than half of every family's headline metrics can run (by their ``min_rows``).

    >>> minimum_rows() >= 20
    True
    """
    from synllm.metrics.base import REGISTRY

    needed = [1]
    for family in families:
        rows = sorted(s.min_rows for s, _ in REGISTRY.values() if s.family == family and s.headline)
        if rows:
            needed.append(rows[len(rows) // 2])
    return max(needed)


def mixed_positions(strata: np.ndarray, n: int, shares: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """``n`` row positions drawn without replacement, each stratum's count set by ``shares`` (largest remainders).

    The reference of a run asked for a class mix is drawn this way, so both sides hold the
    same classes in the same proportions. A stratum not in ``shares`` gets no rows; a
    stratum with fewer rows than its share gives all it has, and the rest of ``n`` is
    drawn at random from the other rows of the mix's strata (so the sample keeps ``n`` rows).

    >>> strata = np.array(list("aaaaaaaabb"))
    >>> sorted(strata[mixed_positions(strata, 4, {"a": 1, "b": 1}, np.random.default_rng(0))].tolist())
    ['a', 'a', 'b', 'b']
    """
    labels = [str(label) for label in shares]
    weights = np.array([float(shares[label]) for label in shares], dtype=float)
    if not len(labels) or weights.sum() <= 0:
        raise ValueError(f"a class mix needs a positive share, got {dict(shares)}")
    exact = weights / weights.sum() * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    text = strata.astype(str)
    picked = []
    for label, k in zip(labels, take):
        members = np.flatnonzero(text == label)
        picked.append(rng.choice(members, min(k, len(members)), replace=False))
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
    short = n - len(chosen)
    if short > 0:
        rest = np.setdiff1d(np.flatnonzero(np.isin(text, labels)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, min(short, len(rest)), replace=False)])
    return np.sort(chosen.astype(int))
