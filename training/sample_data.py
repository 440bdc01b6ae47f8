"""Synthetic insurance-like data: the only place in dropscore where these columns exist.

Relationships follow the well-known shape of medical-charges data: a steady age trend, a small
effect of children, a large smoker premium that grows sharply with BMI above 30, and skewed noise,
so that a good regression model reaches a hold-out R² near 0.85.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONS = ("northeast", "northwest", "southeast", "southwest")
TARGET = "charges"


def generate(rows: int, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 65, size=rows)
    sex = rng.choice(["female", "male"], size=rows)
    region = rng.choice(REGIONS, size=rows, p=[0.24, 0.24, 0.28, 0.24])
    bmi_shift = np.where(region == "southeast", 3.0, 0.0)
    bmi = np.round(np.clip(rng.normal(29.5 + bmi_shift, 6.0, size=rows), 15.0, 54.0), 2)
    children = np.minimum(rng.poisson(1.1, size=rows), 5)
    smoker = np.where(rng.random(rows) < 0.2, "yes", "no")

    is_smoker = smoker == "yes"
    base = 2200.0 + 265.0 * (age - 18) + 480.0 * children + 35.0 * np.maximum(bmi - 25, 0)
    smoker_premium = np.where(is_smoker, 13500.0 + 1450.0 * np.maximum(bmi - 30.0, 0.0), 0.0)
    obese_smoker = np.where(is_smoker & (bmi >= 30.0), 6500.0, 0.0)
    noise = rng.gamma(shape=1.5, scale=3300.0, size=rows) - 1.5 * 3300.0
    noise *= 1.0 + 0.25 * is_smoker
    charges = np.round(np.maximum(base + smoker_premium + obese_smoker + noise, 1100.0), 2)
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "bmi": bmi,
            "children": children,
            "smoker": smoker,
            "region": region,
            TARGET: charges,
        }
    )
