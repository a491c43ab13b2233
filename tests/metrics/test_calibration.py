"""Calibration suite: every verdict judged against real patients at the same n (issue #9, "Must show").

Each dataset is split 50/50, as in the issue's measurements, and scored on at most 5,000 train and
5,000 holdout rows, as the study scores. Sizes n = 50, 200 and 1,000 where the holdout allows a real
sample, its reference and the holdout each of n rows: cirrhosis 50; stroke 50 and 200; diabetes 50,
200 and 1,000 (:data:`CASES`, the cases ``bench/bench_calibration.py`` measures).

Tolerance. A real sample scored against another real sample falls below 1 only by noise, and how far
depends on n. ``bench/bench_calibration.py --draws 12`` drew twelve real samples per case; the largest
shortfall below 1 over datasets and draws was, per n (NaN: that family could not be judged at that n on
any dataset where it was measured, e.g. utility of 50 stroke or diabetes rows with 2-4 events):

    n       fidelity  consistency  privacy  utility  H
    50      0.048     0.024        0.060    0.791    0.155   (utility: cirrhosis, 4 stages in 50 rows)
    200     0.018     0.024        0.029    0.266    0.052
    1000    0.009     0.008        0.007    0.015    0.007

:data:`TOLERANCE` allows about 1.5 times that, rounded up; utility at 50 rows is mostly noise, and the
reports' intervals say so. Where a family cannot be judged it must say "not enough rows", for the real
sample and the baselines alike (the reference decides what can be judged at each n).

Time: about 4 minutes on 2 shared cores (each evaluation is computed once per module), more under load.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.generation.baselines import get_baseline, validated_sample
from synllm.metrics import evaluate, metric_names
from synllm.metrics.evaluation import stratified_positions
from synllm.study.data import load_study_data

CASES = [("cirrhosis", 50), ("stroke", 50), ("stroke", 200), ("diabetes", 50), ("diabetes", 200), ("diabetes", 1000)]
DATASETS = ["cirrhosis", "stroke", "diabetes"]
FAMILIES = ["fidelity", "consistency", "privacy", "utility"]
QUALITY = ["fidelity", "consistency", "utility"]
TOLERANCE = {
    50: {"fidelity": 0.08, "consistency": 0.05, "privacy": 0.1, "utility": 0.85, "harmonic": 0.25},
    200: {"fidelity": 0.05, "consistency": 0.05, "privacy": 0.05, "utility": 0.4, "harmonic": 0.08},
    1000: {"fidelity": 0.02, "consistency": 0.02, "privacy": 0.02, "utility": 0.03, "harmonic": 0.02},
}
BASELINES = ("independent", "gaussian_copula")


@pytest.fixture(scope="module")
def studies():
    """Each dataset split 50/50, with its scoring samples (loaded once)."""
    return {name: load_study_data(name, holdout=0.5) for name in DATASETS}


def _real_sample(data, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(n real holdout rows stratified on the target, the rest of the scoring holdout)."""
    holdout, card = data.eval_holdout, data.card
    assert len(holdout) >= 3 * n, f"{card.name}: the holdout cannot give n = {n} three times"
    strata = holdout[card.target].astype("string").fillna("<missing>").to_numpy(dtype=object)
    mask = np.zeros(len(holdout), dtype=bool)
    mask[stratified_positions(strata, n, np.random.default_rng(7))] = True
    return holdout.iloc[mask][card.synth_names].reset_index(drop=True), holdout.iloc[~mask]


@pytest.fixture(scope="module")
def scored(studies):
    """Evaluations per (dataset, n, generator), computed once: a real sample, the baselines, two degenerates."""
    cache: dict[tuple[str, int, str], object] = {}

    def get(name: str, n: int, generator: str):
        key = (name, n, generator)
        if key not in cache:
            data = studies[name]
            sample, rest = _real_sample(data, n)
            common = {"train": data.eval_train, "holdout": rest, "card": data.card}
            if generator == "real":
                cache[key] = evaluate(sample, **common)  # exposure unknown: every train row is attacked
            elif generator in BASELINES:
                fitted = get_baseline(generator).fit(data.eval_train, data.card)
                rows, _ = validated_sample(fitted, n, data.card, random_state=3)
                cache[key] = evaluate(rows, exposed=data.eval_train, **common)
            else:  # degenerate: one real row repeated, or three real rows; unseen rows, so no copies of train
                distinct = 1 if generator == "one row" else 3
                rows = sample.iloc[np.arange(n) % distinct].reset_index(drop=True)
                cache[key] = evaluate(rows, exposed=data.eval_train.iloc[0:0], **common)
        return cache[key]

    return get


def _judged(ev) -> dict[str, float]:
    """Family scores and H of an evaluation; a family that cannot be judged must say it is not enough data."""
    families = ev.family_scores()
    for family, row in families.iterrows():
        by_design = family == "privacy" and not ev.privacy_applies  # shown no real record (issue 20)
        assert row["status"] in ("ok", "not enough data") or by_design, (family, row["reason"])
        if row["status"] == "not enough data":
            assert row["reason"].startswith("not enough rows")
    return {**families["score"].to_dict(), "quality": ev.quality, "harmonic": ev.harmonic}


@pytest.mark.parametrize(("name", "n"), CASES, ids=[f"{d}-{n}" for d, n in CASES])
def test_real_sample_scores_within_noise_of_the_reference(scored, name, n):
    scores = _judged(scored(name, n, "real"))
    for family in FAMILIES:
        if not math.isnan(scores[family]):
            assert scores[family] >= 1 - TOLERANCE[n][family], (family, scores[family])
    assert math.isnan(scores["harmonic"]) or scores["harmonic"] >= 1 - TOLERANCE[n]["harmonic"]
    assert not math.isnan(scores["fidelity"]) and not math.isnan(scores["privacy"])
    if n >= 200:  # from 200 rows every family of every dataset can be judged
        assert not math.isnan(scores["harmonic"])


@pytest.mark.parametrize(("name", "n"), CASES, ids=[f"{d}-{n}" for d, n in CASES])
def test_no_baseline_beats_a_real_sample_beyond_noise(scored, name, n):
    real = _judged(scored(name, n, "real"))
    for baseline in BASELINES:
        other = _judged(scored(name, n, baseline))
        for measure in [*FAMILIES, "harmonic"]:  # the reference decides what can be judged at this n
            assert math.isnan(other[measure]) == math.isnan(real[measure]), (baseline, measure)
        if not math.isnan(real["harmonic"]):
            assert other["harmonic"] <= real["harmonic"] + TOLERANCE[n]["harmonic"], (baseline, other)


SMALL = [c for c in CASES if c[1] <= 200]


@pytest.mark.parametrize(("name", "n"), SMALL, ids=[f"{d}-{n}" for d, n in SMALL])
@pytest.mark.parametrize("degenerate", ["one row", "three rows"])
def test_degenerate_generator_scores_low_and_below_every_baseline(scored, name, n, degenerate):
    mine = _judged(scored(name, n, degenerate))
    assert mine["fidelity"] <= 0.7
    # Issue 20: the degenerates were shown no real record, so their privacy holds by design (no score, no H): their
    # quality is compared alone. Consistency no longer averages in metrics that are 1 by construction, so the
    # independent baseline's consistency is low too, and at 50 rows utility is noise (tolerance 0.85 above).
    assert math.isnan(mine["privacy"]) and math.isnan(mine["harmonic"])
    for baseline in BASELINES:
        other = _judged(scored(name, n, baseline))
        assert mine["fidelity"] < other["fidelity"] - 0.2
        if math.isnan(other["quality"]) or n <= 50:  # utility cannot be judged (or is noise) here: compare the rest
            judged = [f for f in QUALITY if not math.isnan(other[f]) and f != "utility"]
            assert np.mean([mine[f] for f in judged]) < np.mean([other[f] for f in judged])
        else:
            assert mine["quality"] < other["quality"]


PRIVACY = metric_names("privacy")


def _copy(data) -> pd.DataFrame:
    """Copies of 1,000 train rows (fewer where the holdout cannot give a reference that large)."""
    m = min(1000, len(data.eval_train), len(data.eval_holdout) // 2)
    return data.eval_train.sample(m, random_state=5)[data.card.synth_names].reset_index(drop=True)


@pytest.mark.parametrize("name", DATASETS)
def test_copies_of_exposed_rows_fail_privacy_and_the_attack_flags_them(studies, name):
    data = studies[name]
    copy = _copy(data)
    ev = evaluate(copy, train=data.eval_train, holdout=data.eval_holdout, card=data.card, exposed=copy, metrics=PRIVACY)
    assert ev.n_scored == len(copy)
    assert ev.family_scores().at["privacy", "score"] < 0.5
    attack = ev.result("membership_inference").details
    assert attack["tpr_at_fpr_0.01"] >= 0.5
    assert ev.result("membership_inference", reference=True).details["tpr_at_fpr_0.01"] < 0.1


@pytest.mark.parametrize("name", DATASETS)
def test_copies_with_unknown_exposure_still_show_at_a_low_false_positive_rate(studies, name):
    data = studies[name]
    copy = _copy(data)
    ev = evaluate(copy, train=data.train, holdout=data.eval_holdout, card=data.card, metrics=["membership_inference"])
    attack = ev.result("membership_inference").details
    assert attack["members"].startswith("unknown exposure")
    assert attack["tpr_at_fpr_0.001"] >= 5 * 0.001
    assert not math.isnan(attack["auc"])
