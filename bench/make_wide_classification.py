"""Write a census-like binary classification CSV (generated data) to time ``training train``.

32k rows × 15 columns by default, with awkward column names (spaces, hyphens, symbols,
parentheses), text categories with leading spaces, missing values and a target 'income >50K'.

    python bench/make_wide_classification.py --rows 32000 --out /tmp/wide.csv
    time python -m training train --data /tmp/wide.csv --target 'income >50K' --name wide \
        --registry /tmp/registry
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "income >50K"


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 91, size=rows).astype(float)
    hours = np.clip(rng.normal(40, 12, size=rows).round(), 1, 99)
    edu_levels = np.array(
        ["Preschool", "HS-grad", "Some-college", "Assoc-voc", "Bachelors", "Masters", "Doctorate"]
    )
    edu_idx = rng.choice(len(edu_levels), size=rows, p=[0.02, 0.32, 0.22, 0.08, 0.2, 0.12, 0.04])
    education = edu_levels[edu_idx]
    edu_num = (edu_idx * 2 + 7 + rng.integers(-1, 2, size=rows)).astype(float)
    workclass = rng.choice(
        [" Private", " Self-emp-not-inc", " Local-gov", " State-gov", " Federal-gov", " ?"],
        size=rows,
        p=[0.7, 0.1, 0.07, 0.05, 0.03, 0.05],
    )
    marital = rng.choice(
        ["Married-civ-spouse", "Never-married", "Divorced", "Widowed", "Separated"],
        size=rows,
        p=[0.46, 0.33, 0.14, 0.03, 0.04],
    )
    occupation = rng.choice(
        [
            "Exec-managerial",
            "Prof-specialty",
            "Craft-repair",
            "Sales",
            "Adm-clerical",
            "Other-service",
            "Machine-op-inspct",
            "Tech-support",
        ],
        size=rows,
    )
    relationship = np.where(
        marital == "Married-civ-spouse",
        rng.choice(["Husband", "Wife"], size=rows, p=[0.85, 0.15]),
        rng.choice(["Not-in-family", "Own-child", "Unmarried"], size=rows),
    )
    sex = np.where(relationship == "Wife", "Female", rng.choice(["Male", "Female"], size=rows))
    race = rng.choice(
        ["White", "Black", "Asian-Pac-Islander", "Other"], size=rows, p=[0.85, 0.1, 0.03, 0.02]
    )
    gain = np.where(rng.random(rows) < 0.08, rng.lognormal(8.5, 1.0, size=rows), 0.0).round()
    loss = np.where(rng.random(rows) < 0.05, rng.lognormal(7.4, 0.3, size=rows), 0.0).round()
    country = rng.choice(
        ["United-States", "Mexico", "Philippines", "Germany", "India"],
        size=rows,
        p=[0.9, 0.04, 0.02, 0.02, 0.02],
    )
    fnlwgt = rng.lognormal(12.0, 0.5, size=rows).round()

    logit = (
        -10.0
        + 0.045 * np.minimum(age, 60)
        + 0.03 * hours
        + 0.3 * edu_num
        + 1.6 * (marital == "Married-civ-spouse")
        + 0.6 * np.isin(occupation, ["Exec-managerial", "Prof-specialty"])
        + 0.3 * (sex == "Male")
        + np.log1p(gain) / 4.0
        + 0.4 * (loss > 1500)
        + rng.normal(0, 0.5, size=rows)
    )
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    frame = pd.DataFrame(
        {
            "age (years)": age,
            "work-class": workclass,
            "fnlwgt #": fnlwgt,
            "education level": education,
            "education-num": edu_num,
            "marital status": marital,
            "occupation/job": occupation,
            "relationship": relationship,
            "race": race,
            "sex": sex,
            "capital gain $": gain,
            "capital-loss $": loss,
            "hours-per-week": hours,
            "native country": country,
            TARGET: label,
        }
    )
    frame.loc[rng.random(rows) < 0.03, "occupation/job"] = None
    frame.loc[rng.random(rows) < 0.02, "hours-per-week"] = None
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    frame = generate(args.rows, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    share = (frame[TARGET] == ">50K").mean()
    print(f"wrote {len(frame)} rows × {frame.shape[1]} columns to {args.out} ({share:.1%} >50K)")


if __name__ == "__main__":
    main()
