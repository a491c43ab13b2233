"""The three privacy risks: how fast they are, and whether they agree with the published method.

1. **Speed.** The whole privacy family on diabetes (1,000 synthetic rows of the Gaussian copula
   against the ~80k train rows, with its real reference sample) through :func:`synllm.metrics.evaluate`;
   the issue's bound is 30 s. Prints the seconds of each metric on the run's side and the total.
2. **Cross-check.** On the same inputs (targets' population, synthetic rows, control, written to
   CSV), synllm's univariate singling-out risk and its inference risk next to the published
   method's (Giomi et al., PETS 2023) as the ``anonymeter`` package computes them, run in a
   separate environment (``--anonymeter /tmp/anonvenv/bin/python``; it is never a synllm
   dependency). Without that interpreter, the paper's formula is recomputed by hand from
   synllm's success counts instead. Anonymeter is given as many attacks as synllm formed
   predicates (its rate divides by the attacks asked for) and one neighbour. The diabetes copy is
   also attacked the usual way (targets drawn from all of train), which misses it.

Run: ``PYTHONPATH=. .venv/bin/python bench/bench_privacy_risks.py [--anonymeter /tmp/anonvenv/bin/python]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from synllm.dataset import drop_identifiers, load_dataset, split
from synllm.generation.baselines import get_baseline
from synllm.metrics import EvalContext, evaluate, get_metric, metric_names
from synllm.metrics import singling_out as so
from synllm.metrics.evaluation import holdout_halves
from synllm.metrics.risks import target_population

#: Runs inside the separate anonymeter environment: reads the three CSVs, prints JSON risks.
ANONYMETER_DRIVER = """
import json, sys, warnings
import pandas as pd
from anonymeter.evaluators import InferenceEvaluator, SinglingOutEvaluator
warnings.filterwarnings("ignore")
folder, n_uni, qis, secrets = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
ori, syn, control = (pd.read_csv(f"{folder}/{n}.csv") for n in ("ori", "syn", "control"))
out = {}
so = SinglingOutEvaluator(ori=ori, syn=syn, control=control, n_attacks=max(n_uni, 1)).evaluate(mode="univariate")
r = so.risk()
out["singling_out_univariate"] = [r.value, r.ci[0], r.ci[1]]
for secret in secrets:
    ev = InferenceEvaluator(ori=ori, syn=syn, control=control, aux_cols=qis, secret=secret,
                            n_attacks=min(len(ori), len(control)))
    r = ev.evaluate(n_jobs=1).risk()
    out[f"inference {secret}"] = [r.value, r.ci[0], r.ci[1]]
print(json.dumps(out))
"""


def speed(repeats: int) -> None:
    """Seconds of the privacy family on diabetes: 1,000 copula rows against the ~80k train rows."""
    table, card = load_dataset("diabetes")
    train, holdout = split(table, card, holdout=0.2, random_state=0)
    synthetic = get_baseline("gaussian_copula").fit(train, card).sample(1000, random_state=0)
    names = metric_names("privacy")
    print(f"== speed: privacy family on diabetes, {len(synthetic)} synthetic rows, {len(train):,} train rows")
    for attempt in range(repeats):
        start = time.perf_counter()
        ev = evaluate(synthetic, train=train, holdout=holdout, card=card, exposed=train, metrics=names)
        total = time.perf_counter() - start
        per = ", ".join(f"{n} {s:.2f}" for n, s in sorted(ev.seconds.items(), key=lambda kv: -kv[1]))
        print(f"  attempt {attempt + 1}: {total:.1f} s in all (run + reference; bound 30 s, {total / 30:.2f}x)")
        print(f"    run side, seconds per metric: {per}")


def _inputs(dataset: str, n: int, source: str, seed: int):
    """(card, train, targets' population, synthetic, control) as the metrics see them."""
    table, card = load_dataset(dataset)
    train, held = split(table, card, holdout=0.2, random_state=0)
    pool, test = holdout_halves(held, card, seed)
    n = min(n, len(pool))
    if source.startswith("exposed copy"):
        exposed = drop_identifiers(train.sample(n, random_state=seed), card).reset_index(drop=True)
        synthetic = exposed
        if source.endswith("random train targets"):  # the usual way: targets drawn at random from all of train
            exposed = None
    else:
        exposed = drop_identifiers(train, card)
        synthetic = get_baseline(source).fit(train, card).sample(n, random_state=seed)
    usual = source.endswith("random train targets")  # another draw than the copy's, or the targets are the copy
    ctx = EvalContext(card=card, holdout=test, exposed=exposed, random_state=seed + 1 if usual else seed)
    size = min(len(test), max(len(synthetic), 30), 2000)
    control = test.sample(n=size, random_state=seed)[card.synth_names].reset_index(drop=True)
    population, _ = target_population(train, ctx, size)
    return card, train, population.reset_index(drop=True), synthetic.reset_index(drop=True), control


def synllm_side(card, train, population, synthetic, control, seed: int) -> tuple[dict, int]:
    """synllm's univariate singling-out and inference risks on exactly these tables."""
    (syn, main, ctrl), ordered = so.coded_tables([synthetic, population, control], card, card.synth_names)
    predicates = so.univariate_predicates(syn, ordered, np.random.default_rng(seed))
    risk = so.singling_out_risk(predicates, main, ctrl)
    out = {"singling_out_univariate": [risk.risk, risk.low, risk.high]}
    by_hand = (risk.main_rate - risk.control_rate) / (1 - risk.control_rate)
    out["  by hand (m - c) / (1 - c)"] = [max(by_hand, 0.0), risk.main_rate, risk.control_rate]
    ctx = EvalContext(card=card, holdout=control, exposed=population, random_state=seed)
    inference = get_metric("attribute_inference")[1](train, synthetic, ctx)
    for secret in [s for s in card.sensitive if s not in card.quasi_identifiers]:
        d = inference.details.get(secret, {})
        out[f"inference {secret}"] = [d.get("risk", math.nan), *d.get("ci95", (math.nan, math.nan))]
    return out, len(predicates)


def anonymeter_side(python: str, card, population, synthetic, control, n_uni: int) -> dict:
    """The published method's risks on the same tables (separate interpreter); {} when it cannot run."""
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in (("ori", population), ("syn", synthetic), ("control", control)):
            frame[card.synth_names].astype(object).to_csv(Path(folder) / f"{name}.csv", index=False)
        driver = Path(folder) / "driver.py"
        driver.write_text(ANONYMETER_DRIVER)
        qis = json.dumps(list(card.quasi_identifiers))
        secrets = json.dumps([s for s in card.sensitive if s not in card.quasi_identifiers])
        try:
            done = subprocess.run(
                [python, str(driver), folder, str(n_uni), qis, secrets],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"  anonymeter could not run ({type(exc).__name__}); by-hand formula only", file=sys.stderr)
            return {}
        return json.loads(done.stdout.strip().splitlines()[-1])


def cross_check(python: str | None, seed: int) -> None:
    """Both implementations' numbers, side by side."""
    cases = [
        ("stroke", 400, "exposed copy"),
        ("stroke", 400, "gaussian_copula"),
        ("stroke", 400, "independent"),
        ("stroke", 400, "smoothed_copula"),
        ("cirrhosis", 42, "exposed copy"),
        ("cirrhosis", 42, "gaussian_copula"),
        ("cirrhosis", 42, "independent"),
        ("cirrhosis", 42, "smoothed_copula"),
        ("diabetes", 1000, "exposed copy"),
        ("diabetes", 1000, "exposed copy, random train targets"),
        ("diabetes", 1000, "gaussian_copula"),
    ]
    usable = python is not None and os.path.exists(python)
    print(f"\n== cross-check with the published method ({'anonymeter in ' + python if usable else 'by hand'})")
    print(f"  {'case':48s} {'risk':34s} {'synllm (risk, 95 % CI)':26s} anonymeter (risk, 95 % CI)")
    for dataset, n, source in cases:
        card, train, population, synthetic, control = _inputs(dataset, n, source, seed)
        ours, n_uni = synllm_side(card, train, population, synthetic, control, seed)
        theirs = anonymeter_side(python, card, population, synthetic, control, n_uni) if usable else {}
        label = f"{dataset} n={len(synthetic)} {source}"
        for key, (value, low, high) in ours.items():
            if key.startswith("  by hand"):
                print(f"  {'':48s} {key:34s} {value:.3f} from m={low:.3f}, c={high:.3f}")
                continue
            other = theirs.get(key)
            them = "-" if other is None else f"{other[0]:.3f} ({other[1]:.3f}-{other[2]:.3f})"
            print(f"  {label:48s} {key:34s} {value:.3f} ({low:.3f}-{high:.3f})       {them}")
            label = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anonymeter", default="/tmp/anonvenv/bin/python", help="python with anonymeter installed")
    parser.add_argument("--repeats", type=int, default=2, help="timed evaluations of the diabetes case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.repeats)
    cross_check(args.anonymeter, args.seed)


if __name__ == "__main__":
    main()
