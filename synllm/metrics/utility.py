"""Utility: does a model trained on synthetic rows predict the real holdout? (TSTR vs TRTR)

Two models (logistic regression with imputation, scaling and one-hot encoding; a
random forest) are trained once on the synthetic rows (TSTR) and once on real train
rows (TRTR, the reference), and both are tested on the real holdout. The target is
the card's ``target``; features are the synth columns minus the target and minus
the card's ``outcomes`` and ``leakage`` columns (they would leak the answer, e.g.
cirrhosis ``Status`` and ``N_Days`` when predicting ``Stage``). A target defined by
``target_positive`` is predicted as its 0/1 class. Rows with a missing target are
dropped. Both models weight classes by inverse frequency, so balanced accuracy means
something on rare targets (stroke: 5 %). AUC is macro one-vs-rest beyond two classes
(cirrhosis Stage 1-4). The score per model is
``clip((AUC_tstr − 0.5) / (AUC_trtr − 0.5), 0, 1)``; the metric's score is their mean
and its raw value the mean TSTR AUC. Details hold AUC (with its Hanley-McNeil standard error),
balanced accuracy and accuracy of both sides per model, beside the majority-class baseline, and
``auc_interval`` / ``beats_chance``: whether the mean TSTR AUC beats 0.5 beyond its 95 % interval.
Utility is judged only where the real reference sample of the same size beats chance so
(:func:`synllm.metrics.calibration.metric_status`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.metrics.base import EvalContext, Goal, MetricResult, MetricSpec, register
from synllm.metrics.columns import MISSING, memoised, table_digest
from synllm.metrics.distance import sample_rows

#: Real train rows used for the TRTR reference (a random subsample beyond this).
MAX_REFERENCE_ROWS = 5000
#: Synthetic rows used for TSTR (a random subsample beyond this, to bound the time).
MAX_SYNTHETIC_ROWS = 20000
MODELS = ("logistic_regression", "random_forest")
#: Fewest synthetic rows in each of two target classes for a model to be trained (fewer: TSTR is noise).
MIN_CLASS_ROWS = 5
#: z of a two-sided 95 % normal interval.
Z95 = 1.959964


def feature_names(card: Card) -> list[str]:
    """The predictors used for utility: synth columns minus the target, the other outcomes and leakage columns."""
    leaks = {card.target, *card.outcomes, *card.leakage}
    return [c for c in card.synth_names if c not in leaks]


def _frame(table: pd.DataFrame, card: Card, features: list[str]) -> pd.DataFrame:
    """Features as float64 numbers and string categories (missing category = its own level)."""
    out = {}
    for name in features:
        if card.column(name).is_numeric:
            out[name] = pd.to_numeric(table[name], errors="coerce").astype("float64").to_numpy()
        else:
            out[name] = table[name].astype("string").fillna(MISSING).astype(object).to_numpy()
    return pd.DataFrame(out)


def _labels(values: pd.Series) -> np.ndarray:
    """Target values as strings (so 1, 1.0 and '1' are the same class)."""
    numbers = pd.to_numeric(values.astype("string"), errors="coerce")
    if numbers.notna().all():
        return np.array([f"{v:g}" for v in numbers.to_numpy(dtype=float)], dtype=object)
    return values.astype("string").to_numpy(dtype=object)


def _model(kind: str, card: Card, features: list[str], random_state: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f for f in features if card.column(f).is_numeric]
    categorical = [f for f in features if f not in numeric]
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ],
        sparse_threshold=0.0,
    )
    if kind == "logistic_regression":
        clf = LogisticRegression(max_iter=1000, class_weight="balanced")
    else:
        clf = RandomForestClassifier(
            n_estimators=100, min_samples_leaf=2, class_weight="balanced", random_state=random_state, n_jobs=-1
        )
    return make_pipeline(prepare, clf)


def _scores(model, x: pd.DataFrame, y: np.ndarray, classes: list[int]) -> dict[str, float]:
    """ROC AUC (macro one-vs-rest beyond two classes) and balanced accuracy on (x, y)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    proba = pd.DataFrame(model.predict_proba(x), columns=list(model.classes_))
    proba = proba.reindex(columns=classes, fill_value=0.0).to_numpy()
    total = proba.sum(axis=1, keepdims=True)
    proba = np.divide(proba, total, out=np.full_like(proba, 1 / len(classes)), where=total > 0)
    if len(classes) == 2:
        auc = roc_auc_score(y == classes[1], proba[:, 1])
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    predicted = model.predict(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = balanced_accuracy_score(y, predicted)
    return {
        "auc": float(auc),
        "auc_se": auc_standard_error(float(auc), y, classes),
        "balanced_accuracy": float(balanced),
        "accuracy": float(accuracy_score(y, predicted)),
    }


def auc_standard_error(auc: float, y: np.ndarray, classes: list) -> float:
    """Hanley & McNeil (1982) standard error of a ROC AUC on a test set with labels ``y``; beyond two
    classes, that of the macro one-vs-rest mean (each class against the rest, taken as independent).

    >>> round(auc_standard_error(0.5, np.array([0] * 50 + [1] * 50), [0, 1]), 4)
    0.058
    """
    positives = list(classes[1:]) if len(classes) == 2 else list(classes)
    variances = []
    for c in positives:
        n1 = int(np.sum(y == c))
        n2 = len(y) - n1
        if n1 == 0 or n2 == 0:
            return math.nan
        q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
        variances.append((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2))
    return math.sqrt(max(sum(variances), 0.0)) / len(variances)


TSTR = MetricSpec(
    name="tstr",
    family="utility",
    goal=Goal.MAXIMIZE,
    description="Train on synthetic, test on the real holdout (ROC AUC of logistic regression and "
    "random forest), relative to training on real train rows: mean of "
    "clip((AUC_tstr − 0.5) / (AUC_trtr − 0.5), 0, 1).",
    min_rows=30,
    sdmetrics="SDMetrics' BinaryLogisticRegression / MulticlassDecisionTreeClassifier report the TSTR score "
    "alone; here it is divided by what real training rows give (TRTR).",
)


@register(TSTR)
def tstr(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
    """Raw: mean TSTR ROC AUC; breakdown: relative score per model; details: every number."""
    card = ctx.card
    target = card.target
    features = feature_names(card)
    if not target:
        return TSTR.skip(f"card {card.name!r} names no target column")
    if not features:
        return TSTR.skip(f"card {card.name!r} leaves no feature besides the target and outcomes")
    for label, table in (("train", train), ("synthetic", synthetic), ("holdout", ctx.holdout)):
        lacking = [c for c in [target, *features] if c not in table.columns]
        if lacking:
            return TSTR.skip(f"the {label} table lacks column(s) {lacking}")
    syn = sample_rows(synthetic[synthetic[target].notna()], MAX_SYNTHETIC_ROWS, ctx.random_state)
    real = sample_rows(train[train[target].notna()], MAX_REFERENCE_ROWS, ctx.random_state)
    test = ctx.holdout[ctx.holdout[target].notna()]
    y_syn, y_real, y_test = (_labels(target_values(t, card)) for t in (syn, real, test))
    if len(set(y_syn)) < 2:
        found = f"a single class ({sorted(set(y_syn))})" if len(y_syn) else "no value at all"
        return TSTR.fail(f"the synthetic target {target!r} has {found}; no model can be trained")
    counts = pd.Series(y_syn).value_counts()
    if int((counts >= MIN_CLASS_ROWS).sum()) < 2:
        # Far fewer than a model needs (not a near miss, which chance explains): the rows lack a class.
        lacking = counts.iloc[1] < MIN_CLASS_ROWS / 2
        return (TSTR.fail if lacking else TSTR.skip)(
            f"the synthetic target {target!r} has fewer than two classes with {MIN_CLASS_ROWS} rows or more "
            f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); a model cannot learn from so few"
        )
    if len(set(y_test)) < 2:
        return TSTR.skip(f"the holdout target {target!r} has a single class; AUC is undefined")
    classes = sorted(set(y_test), key=_class_order)
    majority = pd.Series(y_real).mode().iloc[0]
    # Integer codes for the models (sklearn's class weights trip over object labels).
    codes = {label: i for i, label in enumerate(sorted({*y_syn, *y_real, *y_test}, key=_class_order))}
    encode = np.vectorize(codes.__getitem__, otypes=[np.int64])
    details: dict = {
        "target": target,
        "features": features,
        "classes": classes,
        "rows": {"synthetic": len(syn), "reference": len(real), "holdout": len(test)},
        "majority_class": majority,
        "majority_accuracy": float(np.mean(y_test == majority)),
        "majority_balanced_accuracy": 1.0 / len(classes),
        "majority_auc": 0.5,
    }
    x_syn, x_real, x_test = (_frame(t, card, features) for t in (syn, real, test))
    breakdown, tstr_aucs = {}, []
    test_codes, class_codes = encode(y_test), [codes[c] for c in classes]
    real_key = (card, table_digest(real), table_digest(test), tuple(codes), ctx.random_state)
    for kind in MODELS:
        fitted = {
            "tstr": _fit_and_score(
                kind, card, features, ctx.random_state, (x_syn, encode(y_syn)), (x_test, test_codes), class_codes
            ),
            "trtr": memoised(
                ("trtr", kind, *real_key),
                lambda k=kind: _fit_and_score(
                    k, card, features, ctx.random_state, (x_real, encode(y_real)), (x_test, test_codes), class_codes
                ),
            ),
        }
        details[kind] = fitted
        tstr_aucs.append(fitted["tstr"]["auc"])
        gain = fitted["trtr"]["auc"] - 0.5
        if gain > 0:
            breakdown[kind] = min(max((fitted["tstr"]["auc"] - 0.5) / gain, 0.0), 1.0)
    if not breakdown:
        return TSTR.skip("models trained on real rows do no better than chance (TRTR AUC ≤ 0.5)", details=details)
    raw = float(np.mean(tstr_aucs))
    half = Z95 * float(np.mean([details[kind]["tstr"]["auc_se"] for kind in MODELS]))
    details["auc_interval"] = (raw - half, raw + half)
    details["beats_chance"] = bool(raw - half > 0.5)  # calibration reads this on the real reference sample
    score = float(np.mean(list(breakdown.values())))
    return TSTR.result(raw, score=score, breakdown=breakdown, details=details)


def _fit_and_score(kind: str, card: Card, features: list[str], random_state: int, fit_on, test_on, classes):
    """Train one model on ``fit_on`` (x, y codes) and score it on ``test_on``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(kind, card, features, random_state).fit(*fit_on)
    return _scores(model, *test_on, classes)


def _class_order(label: str) -> tuple:
    """Numbers in numeric order, then text."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, math.inf, label)
