"""The augmentation study's sentences: does anything beat real only, does any generator beat random oversampling.

Said plainly when nothing does. A gain is named only where the study's intervals separate
(:mod:`synllm.metrics.augmentation_verdicts`).
"""

from __future__ import annotations

import pandas as pd

from synllm.metrics.augmentation import REAL_ONLY, AugmentationStudy
from synllm.metrics.augmentation_verdicts import augmentation_table, gains
from synllm.report.augmentation_report import METRIC_NAMES, not_run
from synllm.report.escape import md_text

#: Measures that move with the decision threshold, which any added minority row shifts.
THRESHOLD_METRICS = ("minority_recall", "minority_f1", "balanced_accuracy")


def _items(rows: pd.DataFrame) -> str:
    """'gaussian copula at 2× on AUPRC (0.78 [0.75, 0.80])', joined."""
    parts = [
        f"{md_text(r['comparator'])}"
        + (f" at {r['level']:g}×" if r["level"] > 0 else "")
        + f" on {METRIC_NAMES[r['metric']]} ({r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}])"
        for _, r in rows.iterrows()
    ]
    return "; ".join(parts)


def augmentation_summary(study: AugmentationStudy) -> str:
    """What the study shows, as Markdown: first whether anything beats real only, then whether any generator
    beats random oversampling, then the threshold measures; plainly 'nothing' when nothing does."""
    if study.skipped:
        return f"The augmentation study could not run on {md_text(study.dataset)}: {md_text(study.skipped)}."
    table = augmentation_table(study)
    d = study.details
    one_vs_rest = " (one class against all others)" if d.get("one_vs_rest") else ""
    real = table[(table["comparator"] == REAL_ONLY) & (table["metric"] == "auprc")].iloc[0]
    intro = (
        f"Minority class: {md_text(d['target'])} = {md_text(study.minority)}{one_vs_rest}. Each of {d['repeats']} "
        f"repeats trains on {d['minority_rows']} real minority rows and {d['majority_rows']} others (the real "
        f"prevalence, {d['prevalence']:.1%}) and tests on {d['holdout_rows']:,} holdout rows ({d['holdout_minority']} "
        f"minority). Real only reaches AUPRC {real['mean']:.3f} [{real['low']:.3f}, {real['high']:.3f}]; a gain "
        "is claimed only when intervals separate."
    )
    if gains(table).empty:
        intro += " **Nothing beats real only** on any of the four measures."
    out = []
    auprc = gains(table, metric="auprc")
    if auprc.empty:
        out.append(
            "- **On AUPRC nothing beats real only**: no comparator's interval lies above it. AUPRC ranks patients "
            "without a threshold, so it is where added rows show whether they carry information."
        )
    else:
        out.append(f"- On AUPRC, beating real only: {_items(auprc)}.")
    generators = table[table["kind"] == "generator"]
    over = gains(generators, "vs_oversampling")
    if generators.empty:
        out.append("- No generator's rows were studied.")
    elif over.empty:
        out.append(
            "- **No generator beats random oversampling** at the same level on any measure: its rows add nothing "
            "that copying real minority rows does not."
        )
    else:
        out.append(f"- Beating random oversampling at the same level: {_items(over)}.")
    threshold = gains(table)[lambda t: t["metric"].isin(THRESHOLD_METRICS)]
    if len(threshold):
        out.append(
            "- Minority recall, F1 and balanced accuracy move with the decision threshold, which class weights and "
            f"any added minority row shift: beating real only there: {_items(threshold)}."
        )
    lines = not_run(generators)
    if lines:
        out.append(f"- Not run (rows are drawn without replacement): {md_text('; '.join(lines))}.")
    return intro + "\n\n" + "\n".join(out)
