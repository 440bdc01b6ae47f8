"""Why one prediction came out as it did, for any estimator (pure: takes a prediction function).

Method — one feature at a time against the training distribution: each feature in turn is
replaced by values drawn from its training baseline in the card (bin midpoints for numbers,
seen categories for categories, weighted by their training shares) while every other feature
keeps the value entered. A feature's effect is the prediction minus the average of those
predictions: how far *this* value moves the prediction away from a typical one. It needs only
``predict``, so it works for every PyCaret estimator; effects are not additive (unlike SHAP),
because features interact. All perturbed rows go through the model in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scorer import categories
from scorer.card import Feature, ModelCard

METHOD = (
    "one feature at a time against the training distribution: each feature is replaced by "
    "values from its training baseline (weighted by how often they occurred) while the others "
    "keep what you entered; the bar is how far your value moves the prediction from that "
    "average. Model-agnostic (works for every estimator); effects are not additive like SHAP."
)

#: f(frame) -> one number per row (a regression value or one class's probability)
ScoreFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: Any  # what was entered
    effect: float  # prediction minus the average over the feature's baseline values
    reference: float  # that average


@dataclass(frozen=True, slots=True)
class RangeWarning:
    feature: str
    value: float
    min: float
    max: float

    @property
    def message(self) -> str:
        side = "below" if self.value < self.min else "above"
        return (
            f"'{self.feature}' = {self.value:g} is {side} the training range "
            f"{self.min:g}–{self.max:g}; the model has not seen such values, so treat the "
            "prediction with care"
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    prediction: float  # the explained score (value, or the chosen class's probability)
    contributions: tuple[Contribution, ...]  # largest |effect| first
    target: str  # what ``prediction`` is: the target name or "P(class)"


def baseline_values(feature: Feature, max_values: int = 12) -> tuple[list[Any], np.ndarray]:
    """Representative training values of a feature and their weights (summing to 1)."""
    if feature.kind == "number":
        edges = np.asarray(feature.bins, dtype=float)
        shares = np.asarray(feature.shares, dtype=float)
        if len(edges) >= 2 and len(shares) == len(edges) - 1 and shares.sum() > 0:
            mids = (edges[:-1] + edges[1:]) / 2
            if feature.integer:
                mids = np.round(mids)
            return list(mids.astype(float)), shares / shares.sum()
        if feature.typical is not None:
            return [float(feature.typical)], np.ones(1)
        return [], np.zeros(0)
    cats = list(feature.categories)
    shares = np.asarray(feature.shares, dtype=float)
    if cats and len(shares) == len(cats) and shares.sum() > 0:
        order = np.argsort(-shares, kind="stable")[:max_values]
        kept = shares[order]
        return [cats[i] for i in order], kept / kept.sum()
    if feature.typical is not None:
        return [feature.typical], np.ones(1)
    return [], np.zeros(0)


def explain(card: ModelCard, row: Mapping[str, Any], score: ScoreFn, target: str) -> Explanation:
    """Effects of each feature of one row (see the module docstring for the method)."""
    row = canonical_row(card, row)
    base = pd.DataFrame([{f.name: row.get(f.name) for f in card.features}])
    blocks = [base]
    spans: list[tuple[Feature, int, int, np.ndarray]] = []
    start = 1
    for feat in card.features:
        values, weights = baseline_values(feat)
        if not values:
            continue
        block = pd.concat([base] * len(values), ignore_index=True)
        block[feat.name] = pd.Series(values, dtype=object if feat.kind == "category" else float)
        blocks.append(block)
        spans.append((feat, start, start + len(values), weights))
        start += len(values)
    frame = pd.concat(blocks, ignore_index=True)
    scores = np.asarray(score(frame), dtype=float)
    prediction = float(scores[0])
    out = []
    for feat, lo, hi, weights in spans:
        reference = float(np.dot(scores[lo:hi], weights))
        out.append(Contribution(feat.name, row.get(feat.name), prediction - reference, reference))
    out.sort(key=lambda c: abs(c.effect), reverse=True)
    return Explanation(prediction, tuple(out), target)


def range_warnings(card: ModelCard, row: Mapping[str, Any]) -> list[RangeWarning]:
    """Numbers outside the range the model saw in training."""
    found = []
    for feat in card.features:
        value = row.get(feat.name)
        if feat.kind != "number" or value is None or feat.min is None or feat.max is None:
            continue
        number = float(value)
        if np.isfinite(number) and (number < feat.min or number > feat.max):
            found.append(RangeWarning(feat.name, number, feat.min, feat.max))
    return found


def canonical_row(card: ModelCard, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with each category as the batch scorer feeds it (``scorer.categories``): the
    seen category it stands for, else trimmed; a blank category is missing."""
    out = dict(row)
    for f in card.features:
        value = row.get(f.name)
        if f.kind == "category" and isinstance(value, str):
            out[f.name] = categories.index(f.categories).canonical(value) or value.strip() or None
    return out


def unseen_categories(card: ModelCard, row: Mapping[str, Any]) -> list[str]:
    """Features whose category was never seen in training (by the category rule)."""
    return [
        f.name
        for f in card.features
        if f.kind == "category"
        and f.categories
        and row.get(f.name) is not None
        and categories.index(f.categories).canonical(str(row.get(f.name))) is None
    ]
