"""Two small medical-style CSV files that synllm has never seen, made up here (no licence needed).

- :func:`pima_like_csv`: a diabetes screening table in the layout of the Pima Indians
  diabetes data: 0 means "not measured" in Glucose, BloodPressure, SkinThickness, Insulin
  and BMI, while 0 is a real value in Pregnancies; Outcome is 0/1.
- :func:`heart_like_csv`: a heart-disease table in the layout of the UCI Cleveland file:
  every number written with ``.0`` (``63.0``), ``?`` for a missing cell, ``num`` a 0-4
  diagnosis code (the study predicts ``num > 0``), and ``followup_days``, a follow-up time
  that ends at death and so is measured after the outcome (a leakage column).

The values are drawn with fixed seeds so every run writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def pima_like_csv(path: Path, n: int = 400, seed: int = 11) -> Path:
    """Write the diabetes-screening table to ``path`` and return it."""
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 81, n)
    outcome = (rng.random(n) < 0.15 + 0.35 * (age > 45)).astype(int)
    pregnancies = rng.poisson(3.5, n)
    glucose = np.round(rng.normal(110 + 35 * outcome, 20)).clip(56, 199).astype(int)
    pressure = np.round(rng.normal(70 + 4 * outcome, 10)).clip(30, 122).astype(int)
    bmi = np.round(rng.normal(31 + 4 * outcome, 5), 1).clip(18.2, 60)
    skin = np.round(bmi * 0.9 + rng.normal(0, 5, n)).clip(7, 60).astype(int)
    insulin = np.round(rng.lognormal(4.6 + 0.3 * outcome, 0.5)).clip(14, 800).astype(int)
    pedigree = np.round(rng.gamma(2, 0.22, n).clip(0.078, 2.42), 3)
    table = pd.DataFrame(
        {
            "Pregnancies": pregnancies,
            "Glucose": glucose,
            "BloodPressure": pressure,
            "SkinThickness": skin,
            "Insulin": insulin,
            "BMI": bmi,
            "DiabetesPedigreeFunction": pedigree,
            "Age": age,
            "Outcome": outcome,
        }
    )
    for column, share in (("Glucose", 0.01), ("BloodPressure", 0.05), ("SkinThickness", 0.3), ("Insulin", 0.45)):
        table.loc[rng.random(n) < share, column] = 0
    table.loc[rng.random(n) < 0.015, "BMI"] = 0.0
    path.write_text(table.to_csv(index=False), encoding="utf-8")
    return path


def heart_like_csv(path: Path, n: int = 300, seed: int = 5) -> Path:
    """Write the heart-disease table to ``path`` (numbers as ``63.0``, ``?`` for missing) and return it."""
    rng = np.random.default_rng(seed)
    age = rng.integers(29, 78, n)
    sex = (rng.random(n) < 0.68).astype(int)
    risk = 0.02 * (age - 54) + 0.8 * sex + rng.normal(0, 1, n)
    num = np.digitize(risk, [0.3, 1.0, 1.6, 2.2])  # 0 = no disease, 1-4 = increasing severity
    sick = num > 0
    cp = np.where(sick, rng.choice([1, 2, 3, 4], n, p=[0.05, 0.1, 0.15, 0.7]), rng.choice([1, 2, 3, 4], n))
    thalach = np.round(rng.normal(160 - 20 * sick - 0.5 * (age - 54), 15)).clip(71, 202)
    oldpeak = np.round(rng.gamma(1 + 1.5 * sick, 0.6), 1).clip(0, 6.2)
    oldpeak[rng.random(n) < 0.3] = 0.0
    ca = np.where(
        sick, rng.choice([0, 1, 2, 3], n, p=[0.3, 0.3, 0.2, 0.2]), rng.choice([0, 1, 2, 3], n, p=[0.8, 0.1, 0.05, 0.05])
    )
    thal = np.where(sick, rng.choice([3, 6, 7], n, p=[0.3, 0.1, 0.6]), rng.choice([3, 6, 7], n, p=[0.8, 0.05, 0.15]))
    followup = np.round(np.where(sick, rng.uniform(30, 900, n) / num.clip(1), rng.uniform(900, 3650, n)))
    table = pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "cp": cp,
            "trestbps": np.round(rng.normal(131 + 0.4 * (age - 54), 17)).clip(94, 200),
            "chol": np.round(rng.normal(246, 50, n)).clip(126, 564),
            "fbs": (rng.random(n) < 0.15).astype(int),
            "restecg": rng.choice([0, 1, 2], n, p=[0.5, 0.02, 0.48]),
            "thalach": thalach,
            "exang": (rng.random(n) < 0.15 + 0.4 * sick).astype(int),
            "oldpeak": oldpeak,
            "slope": rng.choice([1, 2, 3], n, p=[0.47, 0.46, 0.07]),
            "ca": ca,
            "thal": thal,
            "num": num,
            "followup_days": followup,
        }
    ).astype(float)
    lines = [",".join(table.columns)]
    for i, row in enumerate(table.itertuples(index=False)):
        cells = [f"{v:.1f}" for v in row]
        if i % 61 == 7:
            cells[11] = "?"  # ca not recorded
        if i % 97 == 13:
            cells[12] = "?"  # thal not recorded
        cells[13] = str(int(row.num))  # the diagnosis code is written as an integer, as in the UCI file
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
