"""Singling out, linkability and inference (Anonymeter's three risks) on the three datasets.

Tolerances: a real unseen sample's relative score must be at least 0.85 (its singling-out
interval's lower end reached 0.02 on cirrhosis, that of its reference 0; the relative score is
1 - lower bound over the reference's); the baselines that replay train values must single out
at least ``LEAK_MARGIN`` more than real patients in the univariate risk, averaged over 3 seeds
(measured: stroke 400 rows copula 0.06, independent 0.07, real 0.01; cirrhosis 42 rows copula
0.10, independent 0.13, real 0.00; `bench/bench_privacy_risks.py` prints single seeds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.dataset import drop_identifiers, split
from synllm.generation.baselines import get_baseline
from synllm.metrics import EvalContext, evaluate, get_metric
from synllm.metrics import singling_out as so
from synllm.metrics.evaluation import holdout_halves
from synllm.metrics.linkability import linkability_columns
from synllm.metrics.risks import MIN_CONTROL_ROWS, attack_risk, privacy_flags, risk_sentences, wilson_rate

RISKS = ["singling_out", "linkability", "attribute_inference"]
#: Synthetic rows per dataset (cirrhosis: as many as its reference pool holds).
SIZES = {"stroke": 400, "cirrhosis": 40, "diabetes": 400}
LEAK_MARGIN = 0.03


@pytest.fixture(scope="module")
def data(stroke_data, cirrhosis_data, diabetes_data):
    """Per dataset: (train, holdout, fresh real rows in neither, card)."""
    out = {}
    for name, (table, card) in {"stroke": stroke_data, "cirrhosis": cirrhosis_data, "diabetes": diabetes_data}.items():
        if name == "diabetes":
            table = table.sample(12000, random_state=0)
        train, held = split(table, card, holdout=0.3, random_state=0)
        held = held.sample(frac=1, random_state=0)
        n = SIZES[name]
        out[name] = (train, held.iloc[n:], drop_identifiers(held.iloc[:n], card).reset_index(drop=True), card)
    return out


def _evaluate(synthetic, train, holdout, card, exposed):
    return evaluate(synthetic, train=train, holdout=holdout, card=card, exposed=exposed, metrics=RISKS)


@pytest.mark.parametrize("dataset", ["stroke", "cirrhosis", "diabetes"])
def test_an_exposed_copy_is_singled_out_and_linked(data, dataset):
    train, holdout, fresh, card = data[dataset]
    copy = drop_identifiers(train.sample(len(fresh), random_state=1), card).reset_index(drop=True)
    ev = _evaluate(copy, train, holdout, card, exposed=copy)
    status = ev.statuses().set_index("name")
    for name in ("singling_out", "linkability"):
        assert ev.result(name).raw >= 0.9, (name, ev.result(name).details)
        assert status.at[name, "relative"] <= 0.15, name
    assert ev.result("attribute_inference").raw >= 0.8
    assert {"singles out patients", "links patients' records"} <= set(privacy_flags(ev.results, ev.reference))
    assert any("carries it (singles out patients)" in line for line in risk_sentences(ev.results, ev.reference))
    red = [f.evidence for f in ev.flags if f.kind == "privacy_risk"]  # the run's red flags show the risks too
    assert any(e.startswith("singles out patients") for e in red) and any(e.startswith("links") for e in red)


@pytest.mark.parametrize("dataset", ["stroke", "cirrhosis", "diabetes"])
def test_real_unseen_patients_score_like_the_reference(data, dataset):
    train, holdout, fresh, card = data[dataset]
    ev = _evaluate(fresh, train, holdout, card, exposed=None)
    status = ev.statuses().set_index("name")
    for name in RISKS:
        assert status.at[name, "status"] == "scored", (name, status.at[name, "reason"])
        assert status.at[name, "relative"] >= 0.85, (name, ev.result(name).breakdown)
    assert "singles out patients" not in privacy_flags(ev.results, ev.reference)


def _univariate_risk(dataset, data, source, seed):
    train, holdout, _, card = data[dataset]
    pool, test = holdout_halves(holdout, card, seed)
    n = min(SIZES[dataset], len(pool))
    if source == "real":
        rows = drop_identifiers(pool.sample(n, random_state=seed), card)
    else:
        rows = get_baseline(source).fit(train, card).sample(n, random_state=seed)
    ctx = EvalContext(card=card, holdout=test, exposed=drop_identifiers(train, card), random_state=seed)
    return get_metric("singling_out")[1](train, rows, ctx).breakdown["univariate"]


@pytest.mark.parametrize("dataset", ["stroke", "cirrhosis"])
def test_baselines_that_replay_train_values_single_out_more_than_real_patients(data, dataset):
    risk = {s: np.mean([_univariate_risk(dataset, data, s, seed) for seed in range(3)]) for s in ["real"]}
    for source in ("gaussian_copula", "independent", "smoothed_copula"):
        risk[source] = np.mean([_univariate_risk(dataset, data, source, seed) for seed in range(3)])
    assert risk["gaussian_copula"] >= risk["real"] + LEAK_MARGIN, risk
    assert risk["independent"] >= risk["real"] + LEAK_MARGIN, risk
    assert risk["smoothed_copula"] < risk["real"] + LEAK_MARGIN, risk  # the classical point private by this measure


def test_a_small_control_gives_nan_with_the_reason(data):
    train, holdout, fresh, card = data["cirrhosis"]
    ctx = EvalContext(card=card, holdout=holdout.iloc[: MIN_CONTROL_ROWS - 1], exposed=None)
    for name in RISKS:
        result = get_metric(name)[1](train, fresh, ctx)
        assert math.isnan(result.score) and result.applicable, name
        assert f"at least {MIN_CONTROL_ROWS}" in result.skipped


def test_nothing_exposed_means_nothing_to_attack(data):
    train, holdout, fresh, card = data["stroke"]
    ctx = EvalContext(card=card, holdout=holdout, exposed=train.iloc[:0])
    for name in RISKS:
        result = get_metric(name)[1](train, fresh, ctx)
        assert not result.applicable and "no real record" in result.skipped


def test_the_risk_is_the_papers_formula_on_wilson_rates():
    m, dm = wilson_rate(30, 40)
    c, dc = wilson_rate(4, 40)
    risk = attack_risk(30, 40, 4, 40)
    assert risk.risk == pytest.approx((m - c) / (1 - c))
    assert risk.low < risk.risk < risk.high
    assert wilson_rate(0, 40)[0] == pytest.approx(1.96**2 / 2 / (40 + 1.96**2), rel=1e-3)
    assert attack_risk(4, 40, 30, 40).risk == 0.0  # worse than the control: no risk, never negative


def test_predicates_single_out_rare_values_and_extremes(stroke_data):
    _, card = stroke_data
    columns = ["age", "gender"]

    synthetic = pd.DataFrame(
        {"age": [1.0, 5.0, 5.0, 9.0, np.nan], "gender": ["Male", "Male", "Female", "Male", "Male"]}
    )
    (coded,), ordered = so.coded_tables([synthetic], card, columns)
    predicates = so.univariate_predicates(coded, ordered, np.random.default_rng(0))
    readable = {(columns[c], op, None if np.isnan(v) else v) for ((c, op, v),) in predicates}
    assert ("age", so.LE, 1.0) in readable and ("age", so.GE, 9.0) in readable
    assert ("age", so.EQ, 1.0) in readable and ("age", so.MISSING, None) in readable
    assert not any(c == "age" and v == 5.0 for c, _, v in readable)  # a value two rows share singles out no one
    assert any(c == "gender" for c, _, _ in readable)  # the one Female
    cols, ops, vals = so._as_arrays(predicates)
    assert (so.match_counts(coded, cols, ops, vals) == 1).all()
    multi = so.multivariate_predicates(coded, ordered, np.random.default_rng(0))
    assert multi and (so.match_counts(coded, *so._as_arrays(multi)) == 1).all()


def test_linkability_columns_default_and_from_the_card(stroke_data, cirrhosis_data):
    _, stroke = stroke_data
    first, second = linkability_columns(stroke)
    assert first == tuple(stroke.quasi_identifiers)
    assert not set(second) & {*stroke.sensitive, *stroke.outcomes, *first} and second
    _, cirrhosis = cirrhosis_data
    assert linkability_columns(cirrhosis)[0] == ("Age", "Sex")

    class Named:
        linkability_columns = (("age", "gender"), ("bmi",))

        def __getattr__(self, name):
            return getattr(stroke, name)

    assert linkability_columns(Named()) == (("age", "gender"), ("bmi",))
    Named.linkability_columns = (("age",), ("age",))
    assert linkability_columns(Named()) is None  # not disjoint: nothing to link


def test_the_flags_sentence_names_the_risks_and_explains_the_baselines_leak():
    from synllm.metrics.risks import flags_sentence

    runs = pd.DataFrame(
        {
            "label": ["p1", "baseline · independent", "p4"],
            "privacy_flags": ["singles out patients; links patients' records", "singles out patients", ""],
        }
    )
    text = flags_sentence(runs, escape=lambda s: s.upper())
    assert "singles out patients (P1, BASELINE · INDEPENDENT)" in text and "links patients' records (P1)" in text
    assert "replay rare values and extremes" in text
    assert "No run carries" in flags_sentence(runs.assign(privacy_flags=""))
    assert flags_sentence(runs.drop(columns="privacy_flags")) == ""
