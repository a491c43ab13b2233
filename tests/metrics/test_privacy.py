"""Privacy metrics on hand-made cases with known answers (stroke data, three-way split)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synllm.dataset import split
from synllm.errors import MetricError
from synllm.generation.baselines import get_baseline
from synllm.metrics import attacks, privacy
from synllm.metrics.base import REGISTRY, EvalContext
from synllm.metrics.distance import fit_encoder, gower_distance, nearest

PRIVACY = sorted(name for name, (spec, _) in REGISTRY.items() if spec.family == "privacy")


@pytest.fixture(scope="module")
def stroke(stroke_data):
    """(train, holdout, fresh, card): fresh real rows that neither side contains."""
    table, card = stroke_data
    rest, fresh = split(table, card, holdout=0.25, random_state=1)
    train, holdout = split(rest, card, holdout=1 / 3, random_state=1)
    return train, holdout, fresh, card


@pytest.fixture(scope="module")
def ctx(stroke):
    train, holdout, _, card = stroke
    return EvalContext(card=card, holdout=holdout, examples=train.head(6), random_state=0)


@pytest.fixture(scope="module")
def far(stroke):
    """Synthetic rows far from every real row: numbers pushed to the edge of their range."""
    train, _, _, card = stroke
    rows = get_baseline("independent").fit(train, card).sample(1000, random_state=3)
    return rows.assign(age=100.0, avg_glucose_level=300.0, bmi=99.0)


def test_every_privacy_metric_is_registered():
    expected = {
        "exact_match",
        "exemplar_echo",
        "dcr",
        "dcr_share",
        "nndr",
        "membership_inference",
        "attribute_inference",
        "k_anonymity",
        "singling_out",
        "linkability",
    }
    assert expected <= set(PRIVACY)


def test_distance_is_gower_like(stroke):
    train, _, _, card = stroke
    enc = fit_encoder(train, card)
    a = train.iloc[[0, 0, 0]].reset_index(drop=True)
    b = a.copy()
    b.loc[1, "gender"] = "Male" if a.loc[1, "gender"] != "Male" else "Female"  # one category differs
    b.loc[2, "bmi"] = np.nan if pd.notna(a.loc[2, "bmi"]) else 30.0  # value against missing
    expected = np.array([0.0, 1.0, 1.0]) / len(card.synth_names)
    assert np.allclose(gower_distance(a, b, enc), expected)
    low, high = train["age"].min(), train["age"].max()
    c = a.iloc[[0]].assign(age=low)
    d = a.iloc[[0]].assign(age=low + (high - low) / 4)
    assert np.isclose(gower_distance(c, d, enc)[0], 0.25 / len(card.synth_names))


def _gower_by_hand(a: pd.Series, b: pd.Series, train: pd.DataFrame, card) -> float:
    """SDMetrics' DCR distance (``calculate_dcr``), written out cell by cell: numbers |x - y| / range
    capped at 1 (range from train; no range: 0 or 1), anything else 0 when equal, 1 when not;
    missing against a value 1, two missing 0."""
    total = 0.0
    for name in card.synth_names:
        x, y = a[name], b[name]
        if pd.isna(x) or pd.isna(y):
            total += 0.0 if (pd.isna(x) and pd.isna(y)) else 1.0
        elif card.column(name).is_numeric:
            span = train[name].max() - train[name].min()
            total += float(x != y) if span == 0 else min(abs(float(x) - float(y)) / span, 1.0)
        else:
            total += float(str(x) != str(y))
    return total / len(card.synth_names)


def _sdmetrics_matrix(a: pd.DataFrame, b: pd.DataFrame, train: pd.DataFrame, card) -> np.ndarray:
    """The same formula for every pair of rows at once (len(a) x len(b)), column by column on raw values."""
    total = np.zeros((len(a), len(b)))
    for name in card.synth_names:
        x, y = a[name].to_numpy(dtype=object), b[name].to_numpy(dtype=object)
        x_missing, y_missing = pd.isna(x)[:, None], pd.isna(y)[None, :]
        if card.column(name).is_numeric:
            span = train[name].max() - train[name].min()
            xf, yf = pd.to_numeric(a[name]).to_numpy(float), pd.to_numeric(b[name]).to_numpy(float)
            gap = np.abs(xf[:, None] - yf[None, :])
            cell = (gap > 0).astype(float) if span == 0 else np.minimum(gap / span, 1.0)
        else:
            cell = (x.astype(str)[:, None] != y.astype(str)[None, :]).astype(float)
        cell = np.where(x_missing | y_missing, np.where(x_missing & y_missing, 0.0, 1.0), cell)
        total += cell
    return total / len(card.synth_names)


def test_encoded_distance_equals_sdmetrics_distance_written_out(stroke):
    train, holdout, fresh, card = stroke
    a = holdout.sample(200, random_state=0).reset_index(drop=True)
    b = fresh.sample(200, random_state=0).reset_index(drop=True)
    b.loc[:20, "age"] = 150.0  # beyond the train range: the difference is capped at 1, not the value clipped
    a.loc[10:30, "age"] = 400.0  # both beyond it, far apart: still 1, not 0
    b = b.astype({"smoking_status": object})
    b.loc[40:45, "smoking_status"] = "chews"  # a category the card does not know: its own value
    a.loc[44:50, "smoking_status"] = np.nan  # ... and missing against it is 1, not 0
    enc = fit_encoder(train, card, others=[a, b])
    by_hand = [_gower_by_hand(a.loc[i], b.loc[i], train, card) for i in range(200)]
    assert np.allclose(gower_distance(a, b, enc), by_hand, atol=1e-12)


def test_unknown_category_is_its_own_value_not_missing(stroke):
    train, _, fresh, card = stroke
    a = fresh.head(1).astype({"work_type": object}).assign(work_type="astronaut")
    b = a.assign(work_type=np.nan)
    c = a.assign(work_type="pilot")
    enc = fit_encoder(train, card, others=[a, b, c])
    share = 1 / len(card.synth_names)
    assert gower_distance(a, b, enc)[0] == pytest.approx(share)  # unknown vs missing: 1/k, as SDMetrics
    assert gower_distance(a, c, enc)[0] == pytest.approx(share)  # two different unknown labels: 1/k
    assert gower_distance(a, a, enc)[0] == 0.0


def test_encoder_refuses_missing_cells_it_was_not_fitted_for(stroke):
    train, _, fresh, card = stroke
    enc = fit_encoder(train, card)
    holes = fresh.head(5).assign(age=np.nan)
    with pytest.raises(MetricError, match="age"):
        enc.encode(holes)
    assert fit_encoder(train, card, others=[holes]).encode(holes).shape[0] == 5


def test_nearest_matches_brute_force_under_the_cap(stroke):
    """The KD-tree search with the cap at 1 gives exactly the brute-force nearest rows, out-of-range values included."""
    train, holdout, _, card = stroke
    reference = train.head(300).reset_index(drop=True)
    query = holdout.head(60).reset_index(drop=True)
    query.loc[:15, "avg_glucose_level"] = 900.0  # far beyond the range: capped, which can change the neighbour
    query.loc[10:20, "bmi"] = np.nan
    enc = fit_encoder(reference, card, others=[query])
    brute = _sdmetrics_matrix(query, reference, reference, card)
    assert brute[3, 7] == pytest.approx(_gower_by_hand(query.loc[3], reference.loc[7], reference, card))
    assert brute[12, 40] == pytest.approx(_gower_by_hand(query.loc[12], reference.loc[40], reference, card))
    dist, idx = nearest(enc.encode(reference), enc.encode(query), k=2, encoder=enc)
    assert np.allclose(dist[:, 0], brute.min(axis=1), atol=1e-12)
    assert np.allclose(dist[:, 1], np.sort(brute, axis=1)[:, 1], atol=1e-12)
    assert np.allclose(brute[np.arange(len(query)), idx[:, 0]], dist[:, 0], atol=1e-12)


def test_a_copied_row_is_an_exact_match(stroke, ctx):
    train, _, fresh, card = stroke
    with_nan = train[train["bmi"].isna()].iloc[[0]]
    copied = pd.concat([fresh.head(98), train.iloc[[5]], with_nan], ignore_index=True)
    copied["age"] = copied["age"].astype("float32")  # another dtype must not hide the copy
    result = privacy.exact_match(train, copied, ctx)
    assert result.details["synthetic_matches"] == 2
    assert result.raw == pytest.approx(2 / 100)
    assert result.score < 1.0
    clean = privacy.exact_match(train, fresh.head(100), ctx)
    assert clean.raw == 0.0 and clean.score == 1.0


def test_exact_match_reference_is_what_a_fresh_patient_matches(stroke):
    """The holdout never shares a row with train (the split keeps copies together); the reference is the share of
    train rows repeated within train: how often a fresh patient would match one."""
    train, holdout, _, card = stroke
    repeated = pd.concat([train, train.head(len(train) // 20)], ignore_index=True)  # 10 % of rows have a twin
    ctx = EvalContext(card=card, holdout=holdout)
    fresh_rate = 2 * (len(train) // 20) / len(repeated)
    at_reference = privacy.exact_match(repeated, pd.concat([holdout.tail(91), train.tail(9)]), ctx)
    assert at_reference.details["fresh_patient_rate"] == pytest.approx(fresh_rate)
    assert at_reference.details["holdout_rate"] == 0.0
    assert at_reference.score == pytest.approx(1.0)
    full_copy = privacy.exact_match(repeated, train.head(100), ctx)
    assert full_copy.score == pytest.approx(0.0)


def test_exact_match_reference_on_diabetes_reflects_its_repeated_rows(diabetes_data):
    table, card = diabetes_data
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    result = privacy.exact_match(train, holdout.head(500), EvalContext(card=card, holdout=holdout))
    assert result.details["holdout_rate"] == 0.0  # structurally: copies of a row share one side of the split
    assert 0.04 < result.details["fresh_patient_rate"] < 0.1


def test_exemplar_echo_finds_near_copies_of_examples(stroke, ctx):
    _, _, fresh, _ = stroke
    examples = ctx.examples
    near = examples.head(2).assign(avg_glucose_level=examples["avg_glucose_level"].head(2) + 0.01)
    synthetic = pd.concat([fresh.head(97), examples.iloc[[3]], near], ignore_index=True)
    result = privacy.exemplar_echo(stroke[0], synthetic, ctx)
    assert result.raw == pytest.approx(3 / 100)
    assert result.details["exact_rate"] == pytest.approx(1 / 100)
    assert result.details["examples_echoed"] == 3


def test_exemplar_echo_does_not_apply_without_examples(stroke):
    train, holdout, fresh, card = stroke
    result = privacy.exemplar_echo(train, fresh, EvalContext(card=card, holdout=holdout, examples=None))
    assert not result.ok and math.isnan(result.score) and "example" in result.skipped
    assert result.applicable is False


def test_copy_of_train_has_zero_dcr_and_full_share(stroke):
    train, holdout, _, card = stroke
    equal = EvalContext(card=card, holdout=holdout, random_state=0)
    members = train.sample(len(holdout), random_state=0)  # equal-sized sides: the share can reach 1
    assert privacy.dcr(members, members, equal).raw == 0.0
    assert privacy.dcr(members, members, equal).score == 0.0
    share = privacy.dcr_share(members, members, equal)
    assert share.raw == pytest.approx(1.0)
    assert share.score == pytest.approx(0.0)
    assert privacy.nndr(members, members, equal).raw == 0.0


def test_holdout_copy_and_far_rows_have_no_share_excess(stroke, ctx, far):
    train, holdout, _, _ = stroke
    assert privacy.dcr_share(train, holdout, ctx).raw == pytest.approx(0.0)
    far_share = privacy.dcr_share(train, far, ctx)
    assert abs(far_share.raw - 0.5) < 0.1
    far_dcr = privacy.dcr(train, far, ctx)
    assert far_dcr.raw > 3 * far_dcr.details["holdout_median"]
    assert far_dcr.score == 1.0


def test_fresh_real_rows_look_like_the_holdout(stroke, ctx):
    train, _, fresh, _ = stroke
    assert abs(privacy.dcr_share(train, fresh, ctx).raw - 0.5) < 0.06
    assert privacy.dcr(train, fresh, ctx).score > 0.8
    assert privacy.nndr(train, fresh, ctx).score > 0.8


def test_membership_inference_separates_copies_only(stroke, ctx, far):
    train, _, fresh, _ = stroke
    leaked = attacks.membership_inference(train, train, ctx)
    assert leaked.raw > 0.95 and leaked.score < 0.1
    assert abs(attacks.membership_inference(train, far, ctx).raw - 0.5) < 0.06
    assert abs(attacks.membership_inference(train, fresh, ctx).raw - 0.5) < 0.06


def test_membership_attack_aims_at_the_exposed_records(stroke):
    """Copies of 50 exposed rows: diluted among all of train the AUC hardly moves, aimed at the 50 the attack
    flags them all at 1 % false positives (Carlini et al. 2022)."""
    train, holdout, fresh, card = stroke
    exposed = train.sample(50, random_state=2)
    synthetic = pd.concat([fresh.head(450), exposed], ignore_index=True)
    unknown = attacks.membership_inference(train, synthetic, EvalContext(card=card, holdout=holdout))
    aimed = attacks.membership_inference(train, synthetic, EvalContext(card=card, holdout=holdout, exposed=exposed))
    assert unknown.raw < 0.56 and unknown.details["members"].startswith("unknown")
    assert aimed.details["tpr_at_fpr_0.01"] == 1.0 and aimed.details["n_members"] == 50
    assert aimed.score == 0.0
    # the TPR at a low FPR, written out: members at distance 0, no non-member that close
    assert aimed.details["member_zero_share"] == 1.0 and aimed.details["nonmember_zero_share"] == 0.0
    assert unknown.details["tpr_at_fpr_0.001"] >= 50 / len(train)


def test_attacks_do_not_apply_when_no_record_was_exposed(stroke):
    train, holdout, fresh, card = stroke
    ctx = EvalContext(card=card, holdout=holdout, exposed=train.iloc[0:0])
    for attack in (attacks.membership_inference, attacks.attribute_inference):
        result = attack(train, fresh.head(100), ctx)
        assert result.applicable is False and "no real record" in result.skipped


def test_tpr_at_fpr_takes_the_best_threshold_within_the_rate():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([9.0, 8.0, 1.0, 0.0, 7.0, 2.0, 1.0, 0.0])
    assert attacks.tpr_at_fpr(labels, scores, 0.0) == 0.5
    assert attacks.tpr_at_fpr(labels, scores, 0.25) == 0.5
    assert attacks.tpr_at_fpr(labels, scores, 0.5) == 0.5
    assert attacks.tpr_at_fpr(labels, scores, 1.0) == 1.0


def test_attribute_inference_risk_from_copies_and_from_fresh_rows(stroke, ctx):
    train, _, fresh, card = stroke
    leaked = attacks.attribute_inference(train, train, ctx)
    assert set(leaked.breakdown) == (set(card.sensitive) - set(card.quasi_identifiers)) | {"ci_low", "ci_high"}
    assert leaked.raw > 0.5
    assert leaked.details["stroke"]["main_rate"] > leaked.details["stroke"]["control_rate"]
    low, high = leaked.details["stroke"]["ci95"]
    assert low <= leaked.breakdown["stroke"] <= high
    assert leaked.score == pytest.approx(
        1 - max(d["ci95"][0] for k, d in leaked.details.items() if k in card.sensitive)
    )
    safe = attacks.attribute_inference(train, fresh, ctx)
    assert safe.raw < 0.15 and safe.score > 0.85


def test_attribute_inference_counts_only_the_risk_beyond_noise(stroke):
    """A handful of exposed targets gives a wide interval: a risk whose interval reaches 0 does not count."""
    train, holdout, fresh, card = stroke
    exposed = train.sample(8, random_state=4)
    result = attacks.attribute_inference(
        train, fresh.head(300), EvalContext(card=card, holdout=holdout, exposed=exposed)
    )
    assert result.details["n_targets"] == 8
    assert result.score == pytest.approx(1 - result.details["worst_lower_bound"])
    assert result.score >= 1 - result.raw


def test_wilson_rate_and_risk_follow_anonymeter():
    rate, error = attacks.wilson_rate(40, 100)
    z, p, n = 1.959963984540054, 0.4, 100
    # The textbook Wilson score interval: centre and half-width.
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert rate == pytest.approx(centre)
    assert error == pytest.approx(half)
    risk, low, high = attacks.residual_risk((0.9, 0.02), (0.6, 0.03))
    assert risk == pytest.approx(0.75)
    assert low < risk < high
    assert attacks.residual_risk((0.5, 0.02), (0.6, 0.03))[0] == 0.0


def test_k_anonymity_counts_small_groups(stroke, ctx):
    train, _, _, _ = stroke
    crowd = pd.concat([train.iloc[[0]]] * 20, ignore_index=True)
    assert attacks.k_anonymity(train, crowd, ctx).raw == 0.0
    spread = train.drop_duplicates(subset=["gender", "Residence_type"]).head(4)
    spread = spread.assign(age=[1.0, 30.0, 50.0, 90.0][: len(spread)])
    result = attacks.k_anonymity(train, spread, ctx)
    assert result.raw == 1.0 and result.score == 0.0
    assert REGISTRY["k_anonymity"][0].headline is False  # shown, never averaged into the privacy score


@pytest.mark.parametrize("name", PRIVACY)
def test_privacy_metrics_leave_inputs_unchanged(stroke, ctx, name):
    train, holdout, fresh, _ = stroke
    _, fn = REGISTRY[name]
    before = [t.copy() for t in (train, fresh, holdout)]
    result = fn(train, fresh.head(300), ctx)
    for original, now in zip(before, (train, fresh, holdout)):
        pd.testing.assert_frame_equal(original, now)
    assert result.ok and 0.0 <= result.score <= 1.0


@pytest.mark.parametrize("name", PRIVACY)
def test_privacy_metrics_skip_when_a_column_is_missing(stroke, ctx, name):
    train, _, fresh, _ = stroke
    _, fn = REGISTRY[name]
    result = fn(train, fresh.drop(columns=["bmi"]), ctx)
    assert not result.ok and math.isnan(result.score)
