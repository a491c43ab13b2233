"""evaluate(), the Evaluation it returns, relative scores and repeats."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from synllm.dataset import drop_identifiers, split
from synllm.errors import MetricError
from synllm.metrics import (
    REGISTRY,
    Evaluation,
    Goal,
    MetricSpec,
    evaluate,
    evaluate_repeats,
    harmonic_score,
    mean_interval,
    metric_names,
    relative_scores,
    scores_frame,
    summarize_repeats,
)

FAST = ["ks_complement", "tv_complement", "hard_rule_violation_rate", "row_validity", "soft_rule_agreement"]


@pytest.fixture(scope="module")
def full(stroke, stroke_data):
    """Every registered metric, with the holdout reference.

    The holdout is every other held-out row (872): utility is judged only where a real sample of the same size beats
    chance beyond its interval (issue 20), and on 200 test rows with 10 strokes it does not.
    """
    train, _, synthetic, card = stroke
    table, _ = stroke_data
    _, held = split(table, card, holdout=0.2, random_state=0)
    shown = held.sample(550, random_state=0).index[400:]  # the conftest's synthetic rows
    holdout = held.drop(index=shown)
    return evaluate(synthetic, train=train, holdout=holdout, card=card, examples=drop_identifiers(train.head(4), card))


def test_runs_every_registered_metric_with_a_reference(full, stroke):
    assert full.names == sorted(REGISTRY)
    assert [r.name for r in full.reference] == full.names
    assert (full.n_train, full.n_synthetic, full.n_holdout) == (1000, 150, 872)
    assert full.n_reference == full.n_scored == 150  # min(len(synthetic), len(holdout) // 2)
    assert set(full.seconds) == set(full.names) and all(s >= 0 for s in full.seconds.values())


def test_reference_is_capped_at_half_the_holdout(stroke):
    train, holdout, synthetic, card = stroke
    big = pd.concat([synthetic] * 2, ignore_index=True)
    ev = evaluate(big, train=train, holdout=holdout, card=card, metrics=["ks_complement"])
    # the pool of reference rows (half the holdout) holds 200: the run is scored on 200 of its 300 rows
    assert ev.n_reference == ev.n_scored == 200 and ev.n_synthetic == 300


def test_reference_sample_is_stratified_on_the_target(stroke):
    train, holdout, synthetic, card = stroke
    from synllm.metrics.evaluation import holdout_halves, stratified_positions

    pool, test = holdout_halves(holdout, card, random_state=0)
    assert len(pool) == 200 and len(test) == 200 and not set(pool.index) & set(test.index)
    strata = pool["stroke"].astype("string").to_numpy(dtype=object)
    picked = pool.iloc[stratified_positions(strata, 100, np.random.default_rng(0))]
    assert abs(picked["stroke"].sum() - 100 * pool["stroke"].mean()) <= 0.5


def test_to_frame_one_row_per_metric(full):
    frame = full.to_frame()
    expected = "name family score raw goal reference_score reference_raw relative status skipped seconds"
    assert list(frame.columns) == expected.split()
    assert frame["name"].tolist() == full.names
    ks = frame.set_index("name").loc["ks_complement"]
    assert ks["score"] == full.result("ks_complement").score
    assert ks["reference_score"] == full.result("ks_complement", reference=True).score
    assert frame["skipped"].notna().sum() == sum(not r.ok for r in full.results)


def test_breakdown_frame_is_long(full):
    frame = full.breakdown_frame()
    assert list(frame.columns) == ["metric", "key", "value", "reference_value"]
    assert len(frame) == sum(len(r.breakdown) for r in full.results)
    row = frame[(frame["metric"] == "ks_complement") & (frame["key"] == "age")].iloc[0]
    assert row["value"] == full.result("ks_complement").breakdown["age"]


def test_to_json_is_strict(full):
    def refuse(token):
        raise ValueError(f"non-strict JSON constant {token}")

    payload = json.loads(full.to_json(), parse_constant=refuse)
    assert [r["name"] for r in payload["results"]] == full.names
    assoc = next(r for r in payload["results"] if r["name"] == "association_structure")
    if assoc["skipped"] is None:
        table = assoc["details"]["real_odds_ratios"]
        assert {"term", "odds_ratio", "ci_low", "ci_high"} <= set(table[0])
    assert payload["headline"]["quality"] == pytest.approx(full.quality)


def test_family_scores_average_the_relative_scores(full):
    """A family averages score / reference score (capped at 1) over its headline metrics that ran on both sides."""
    families = full.family_scores()
    frame = full.to_frame()
    for family in ("fidelity", "consistency", "privacy", "utility"):
        rows = frame[(frame["family"] == family) & (frame["status"] != "shown, not averaged")]
        both = rows[rows["skipped"].isna() & rows["reference_score"].notna()]
        relative = [1.0 if r <= 0 else min(1.0, s / r) for s, r in zip(both["score"], both["reference_score"])]
        assert families.loc[family, "score"] == pytest.approx(np.mean(relative))
        assert families.loc[family, "n_scored"] == len(both)
        assert families.loc[family, "status"] == "ok"
    assert "k_anonymity" in frame["name"].tolist()
    assert frame.set_index("name").at["k_anonymity", "status"] == "shown, not averaged"


def test_headline_is_mean_of_quality_families_and_harmonic(full):
    families = full.family_scores()["score"]
    q = np.mean([families["fidelity"], families["consistency"], families["utility"]])
    p = families["privacy"]
    assert full.quality == pytest.approx(q) and full.privacy == pytest.approx(p)
    assert full.harmonic == pytest.approx(2 * p * q / (p + q))
    assert full.headline(reference=True) == {"quality": 1.0, "privacy": 1.0, "harmonic": 1.0}
    assert harmonic_score(0.0, 0.0) == 0.0 and math.isnan(harmonic_score(math.nan, 0.5))


def test_summary_states_numbers_relative_to_real_patients(full):
    text = full.summary()
    assert f"{full.quality:.2f}" in text and f"{full.privacy:.2f}" in text
    assert "150 synthetic rows" in text and "as good as real unseen patients" in text
    assert "\n" not in text


def test_ten_rows_are_not_enough_to_judge(stroke):
    """Below their minimum rows the fidelity metrics skip on both sides: the family, Q and H say why."""
    train, holdout, synthetic, card = stroke
    ev = evaluate(synthetic.head(10), train=train, holdout=holdout, card=card)
    families = ev.family_scores()
    assert families.at["fidelity", "status"] == "not enough data"
    assert "not enough rows" in families.at["fidelity", "reason"] and "at 10 rows" in families.at["fidelity", "reason"]
    assert math.isnan(ev.quality) and math.isnan(ev.harmonic)
    assert any(r.startswith("fidelity: not enough rows") for r in ev.headline_reasons())
    assert "Could not be judged" in ev.summary()


def test_rows_lacking_what_real_rows_have_count_zero(stroke):
    """A single target class: real patients of the same number can be scored on utility, these rows not."""
    train, holdout, synthetic, card = stroke
    one_class = synthetic.assign(stroke=pd.array(np.zeros(len(synthetic), dtype=int), dtype="Int64"))
    ev = evaluate(one_class, train=train, holdout=holdout, card=card, metrics=["tstr", "ks_complement"])
    status = ev.statuses().set_index("name")
    assert status.at["tstr", "status"] == "failed where real patients succeed"
    assert ev.family_scores().at["utility", "score"] == 0.0
    assert "single class" in ev.family_scores().at["utility", "reason"]


def test_a_family_needs_half_of_its_metrics(stroke):
    train, holdout, synthetic, card = stroke
    names = [
        "ks_complement",
        "tv_complement",
        "contingency_similarity",
        "jensen_shannon_distance",
        "logistic_detection",
    ]
    ev = evaluate(synthetic.head(25), train=train, holdout=holdout, card=card, metrics=names)
    row = ev.family_scores().loc["fidelity"]  # 2 of 5 run at 25 rows (js, contingency need 50, detection 30)
    assert row["status"] == "not enough data" and row["n_scored"] == 2 and row["n_metrics"] == 5
    ev = evaluate(synthetic.head(30), train=train, holdout=holdout, card=card, metrics=names)
    assert ev.family_scores().at["fidelity", "status"] == "ok"  # 3 of 5


def test_bootstrap_replicates_give_an_interval(stroke):
    train, holdout, synthetic, card = stroke
    names = [*FAST, "dcr", "exact_match"]
    ev = evaluate(synthetic.head(60), train=train, holdout=holdout, card=card, metrics=names, n_boot=5)
    assert len(ev.replicates) == 5 and {"fidelity", "quality", "harmonic"} <= set(ev.replicates)
    for measure, value in (("quality", ev.quality), ("harmonic", ev.harmonic)):
        low, high = ev.interval(measure)
        assert low <= value <= high
    none = evaluate(synthetic.head(60), train=train, holdout=holdout, card=card, metrics=names)
    assert none.replicates.empty and math.isnan(none.interval("quality")[0])
    unjudged = evaluate(synthetic.head(60), train=train, holdout=holdout, card=card, metrics=FAST, n_boot=5)
    assert unjudged.replicates.empty  # no privacy metric: H cannot be judged, so no bootstrap is run


def test_without_reference(stroke):
    train, holdout, synthetic, card = stroke
    ev = evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=FAST, reference=False)
    assert ev.reference is None and ev.n_reference == 0
    assert ev.to_frame()["reference_score"].isna().all()
    assert (ev.family_scores()["status"].isin(["no reference", "not evaluated"])).all()
    assert math.isnan(ev.quality)
    assert "real patients" not in ev.summary().split(".")[1]
    assert ev.names == FAST


def test_inputs_are_not_modified(stroke):
    train, holdout, synthetic, card = stroke
    copies = [t.copy(deep=True) for t in (train, holdout, synthetic)]
    evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=FAST)
    for before, after in zip(copies, (train, holdout, synthetic)):
        pd.testing.assert_frame_equal(before, after)


def test_same_random_state_same_numbers(stroke):
    train, holdout, synthetic, card = stroke
    names = ["ks_complement", "range_coverage"]
    a, b, c = (
        evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=names, random_state=s) for s in (3, 3, 4)
    )
    pd.testing.assert_frame_equal(a.to_frame().drop(columns="seconds"), b.to_frame().drop(columns="seconds"))
    # Another seed draws another reference sample.
    assert a.to_frame()["reference_raw"].tolist() != c.to_frame()["reference_raw"].tolist()


def test_empty_synthetic_is_all_skipped(stroke):
    train, holdout, synthetic, card = stroke
    ev = evaluate(synthetic.iloc[:0], train=train, holdout=holdout, card=card, metrics=FAST)
    assert all(not r.ok for r in ev.results) and all(not r.ok for r in ev.reference)
    assert math.isnan(ev.quality)
    assert "could not be computed" in ev.summary()
    json.loads(ev.to_json())


def test_bad_inputs_raise_metric_errors(stroke):
    train, holdout, synthetic, card = stroke
    with pytest.raises(MetricError, match="bmi"):
        evaluate(synthetic.drop(columns="bmi"), train=train, holdout=holdout, card=card)
    with pytest.raises(MetricError, match="no metric named 'nope'"):
        evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=["nope"])


def test_a_metric_that_raises_is_reported_by_name(stroke, monkeypatch):
    train, holdout, synthetic, card = stroke
    spec = MetricSpec(name="broken_metric", family="fidelity", goal=Goal.MAXIMIZE)

    def broken(train, synthetic, ctx):
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(REGISTRY, "broken_metric", (spec, broken))
    with pytest.raises(MetricError, match="broken_metric.*ZeroDivisionError"):
        evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=["broken_metric"])


# --- relative scores and repeats ------------------------------------------------------------


def test_relative_scores_min_max_per_metric():
    frame = pd.DataFrame(
        {
            "model": ["m1", "m2", "m3"],
            "ks_complement": [0.9, 0.7, 0.8],
            "tv_complement": [0.5, 0.5, 0.5],
            "row_validity": [0.2, 0.6, 1.0],
            "exact_match": [1.0, 0.0, 0.5],
        },
        index=["a", "b", "c"],
    )
    rel = relative_scores(frame)
    assert rel["model"].tolist() == ["m1", "m2", "m3"]
    assert rel["ks_complement"].tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert rel["tv_complement"].isna().all()  # constant: no ranking information
    assert rel["fidelity"].tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert rel["quality"].tolist() == pytest.approx([(1.0 + 0.0) / 2, (0.0 + 0.5) / 2, (0.5 + 1.0) / 2])
    assert rel["privacy"].tolist() == pytest.approx([1.0, 0.0, 0.5])
    expected_h = [harmonic_score(p, q) for p, q in zip(rel["privacy"], rel["quality"])]
    assert rel["harmonic"].tolist() == pytest.approx(expected_h)
    with pytest.raises(MetricError, match="registered metric"):
        relative_scores(frame[["model"]])


def test_scores_frame_lines_up_runs(full, stroke):
    train, holdout, synthetic, card = stroke
    other = evaluate(synthetic.iloc[:60], train=train, holdout=holdout, card=card, metrics=FAST, reference=False)
    frame = scores_frame({"full": full, "small": other})
    assert list(frame.index) == ["full", "small"]
    assert frame.loc["small", "ks_complement"] == other.result("ks_complement").score
    assert math.isnan(frame.loc["small", "exact_match"])
    with pytest.raises(MetricError, match="without a reference"):
        scores_frame({"small": other}, reference=True)


def test_mean_interval_is_a_student_t_interval():
    values = [0.2, 0.4, 0.5, math.nan]
    mean, low, high, n = mean_interval(values)
    x = np.array([0.2, 0.4, 0.5])
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / math.sqrt(3)
    assert n == 3 and mean == pytest.approx(x.mean())
    assert (low, high) == pytest.approx((max(x.mean() - half, 0.0), x.mean() + half))
    assert math.isnan(mean_interval([0.3])[1])


def test_evaluate_repeats_summarises_each_metric_and_the_headline(stroke):
    train, holdout, synthetic, card = stroke
    synthetics = [synthetic.sample(100, random_state=i) for i in range(3)]
    summary = evaluate_repeats(synthetics, train=train, holdout=holdout, card=card, metrics=FAST)
    assert list(summary.index) == [*FAST, "quality", "privacy", "harmonic"]
    singles = [
        evaluate(s, train=train, holdout=holdout, card=card, metrics=FAST, random_state=i).result("ks_complement").score
        for i, s in enumerate(synthetics)
    ]
    row = summary.loc["ks_complement"]
    assert row["n"] == 3 and row["mean"] == pytest.approx(np.mean(singles))
    assert row["low"] <= row["mean"] <= row["high"]
    assert row["reference_low"] <= row["reference_mean"] <= row["reference_high"]
    assert summary.loc["privacy", "n"] == 0  # no privacy metric in this subset
    assert summary.loc["quality", "family"] == "headline"


def test_summarize_repeats_needs_runs():
    with pytest.raises(MetricError):
        summarize_repeats([])


# --- the real datasets against their own holdouts -------------------------------------------

QUALITY = metric_names("fidelity") + metric_names("consistency")


@pytest.mark.parametrize(
    ("name", "fraction", "n_train", "n_holdout"),
    [("stroke", 0.2, None, 600), ("cirrhosis", 0.5, None, None), ("diabetes", 0.2, 4000, 1200)],
)
def test_real_holdout_rows_score_like_the_reference(name, fraction, n_train, n_holdout, request):
    table, card = request.getfixturevalue(f"{name}_data")
    train, holdout = split(table, card, holdout=fraction, random_state=0)
    train = train.sample(n_train, random_state=0) if n_train else train
    holdout = holdout.sample(n_holdout, random_state=0) if n_holdout else holdout
    third = len(holdout) // 3
    real = drop_identifiers(holdout.iloc[:third], card)
    ev = evaluate(real, train=train, holdout=holdout.iloc[third:], card=card, metrics=QUALITY)
    families = ev.family_scores()
    assert families.loc["fidelity", "score"] >= 0.9
    assert families.loc["consistency", "score"] >= 0.75
    runnable = [n for n in metric_names("fidelity") if REGISTRY[n][0].min_rows <= len(real)]
    assert families.loc["fidelity", "n_scored"] == len(runnable)


def test_evaluation_is_frozen(full):
    with pytest.raises(AttributeError):
        full.n_train = 3  # type: ignore[misc]
    assert isinstance(full, Evaluation)


def test_summary_says_the_worst_red_flag_before_any_mean(stroke):
    train, holdout, synthetic, card = stroke
    repeated = pd.concat([synthetic.head(10)] * 15, ignore_index=True)  # one row written 15 times over
    ev = evaluate(repeated, train=train, holdout=holdout, card=card, metrics=FAST)
    worst = ev.flags[0]
    assert worst.kind == "copying" and worst.severity == "high"
    text = ev.summary()
    flag_at = text.find(worst.evidence)
    assert flag_at >= 0 and "red flag" in text.lower(), text
    assert flag_at < text.find("Quality") and flag_at < text.find(f"{ev.quality:.2f}"), text
    assert f"{len(ev.flags)} red flag" in text and "\n" not in text
    clean = evaluate(synthetic, train=train, holdout=holdout, card=card, metrics=FAST)
    assert clean.flags == () and "red flag" not in clean.summary().lower()
