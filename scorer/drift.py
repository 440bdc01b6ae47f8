"""Drift of a run against its model's training baseline (pure): PSI per feature and prediction.

Everything comes from the card (baseline bins/categories and their shares) and the manifest's
``distributions`` (counts of the run's values in those same bins, counted by ``Distributions``
while the run scores), so a drift view never re-reads predictions.csv.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from scorer.card import Feature, ModelCard

Level = Literal["stable", "moderate", "major", "no data"]

#: Conventional PSI reading: < 0.1 no meaningful shift, 0.1–0.25 moderate, > 0.25 major.
MODERATE = 0.1
MAJOR = 0.25
#: Floor for empty buckets, so log(0) never happens and one empty bin cannot dominate.
EPSILON = 1e-4
UNSEEN = "(unseen)"


@dataclass(frozen=True, slots=True)
class Distribution:
    """One variable's baseline and observed shares over the same buckets."""

    name: str
    buckets: tuple[str, ...]  # human labels: "[18, 25)" or a category
    baseline: tuple[float, ...]  # shares, sum 1 (or all 0 when the card has no baseline)
    observed: tuple[float, ...]  # shares of this run's values, sum 1 (or all 0)
    count: int  # values observed (missing ones excluded)
    missing: int = 0
    psi: float = 0.0
    level: Level = "no data"


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same buckets."""
    if len(expected) != len(actual):
        raise ValueError(f"PSI needs equal bucket counts ({len(expected)} != {len(actual)})")
    e = _normalise([max(float(x), 0.0) for x in expected], eps)
    a = _normalise([max(float(x), 0.0) for x in actual], eps)
    return float(sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True)))


def level(value: float, moderate: float = MODERATE, major: float = MAJOR) -> Level:
    if value >= major:
        return "major"
    if value >= moderate:
        return "moderate"
    return "stable"


def _normalise(shares: list[float], eps: float) -> list[float]:
    floored = [max(s, eps) for s in shares]
    total = sum(floored)
    return [s / total for s in floored]


def _shares(counts: Sequence[float]) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple((float(c) / total) if total else 0.0 for c in counts)


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """A label per bin; the first and last bins also hold values beyond the training range."""
    n = len(edges) - 1
    if n < 1:
        return ()
    if n == 1:
        return (f"{_fmt(edges[0])}–{_fmt(edges[1])}",)
    inner = [f"{_fmt(edges[i])}–{_fmt(edges[i + 1])}" for i in range(1, n - 1)]
    return (f"< {_fmt(edges[1])}", *inner, f"≥ {_fmt(edges[n - 1])}")


def code_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """A label per bin of a coded column (one bin per code, edges at the midpoints): the code."""
    n = len(edges) - 1
    if n < 1:
        return ()
    if n == 1 and edges[0] == edges[1]:
        return (_fmt(edges[0]),)
    codes = [float(edges[0])]
    for mid in edges[1:-1]:  # each inner edge is the midpoint of its two codes
        codes.append(2 * float(mid) - codes[-1])
    return tuple(_fmt(round(c, 6)) for c in codes)


def _fmt(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6 or (0 < ax < 1e-3):
        return f"{x:.3g}"
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if ax < 10 else f"{x:.1f}".rstrip("0").rstrip(".")


def _compare(
    name: str,
    buckets: tuple[str, ...],
    baseline: Sequence[float],
    counts: Sequence[float],
    missing: int,
    moderate: float,
    major: float,
) -> Distribution:
    count = int(sum(counts))
    base = tuple(float(s) for s in baseline)
    if not buckets or count == 0 or not any(base):
        return Distribution(name, buckets, base, _shares(counts), count, missing)
    value = psi(base, counts)
    return Distribution(
        name, buckets, base, _shares(counts), count, missing, round(value, 6),
        level(value, moderate, major),
    )  # fmt: skip


def feature_drift(
    feature: Feature,
    observed: Mapping[str, Any],
    *,
    moderate: float = MODERATE,
    major: float = MAJOR,
) -> Distribution:
    """PSI of one feature; unseen categories form an extra bucket the baseline never had."""
    counts = [int(c) for c in observed.get("counts", [])]
    missing = int(observed.get("missing", 0))
    if feature.kind == "number":
        buckets = code_labels(feature.bins) if feature.coded else bin_labels(feature.bins)
        baseline: list[float] = list(feature.shares)
    else:
        buckets = tuple(feature.categories)
        baseline = list(feature.shares)
        other = int(observed.get("other", 0))
        if other:
            buckets = (*buckets, UNSEEN)
            baseline.append(0.0)
            counts.append(other)
    if len(counts) != len(buckets) or len(baseline) != len(buckets):
        return Distribution(feature.name, buckets, tuple(baseline), (), 0, missing)
    return _compare(feature.name, buckets, baseline, counts, missing, moderate, major)


def prediction_drift(
    card: ModelCard,
    observed: Mapping[str, Any],
    *,
    moderate: float = MODERATE,
    major: float = MAJOR,
) -> Distribution:
    """The run's prediction distribution against the card's hold-out predictions."""
    pb = card.prediction_baseline
    buckets = tuple(pb.classes) if pb.classes else bin_labels(pb.bins)
    counts = [int(c) for c in observed.get("counts", [])]
    if len(counts) != len(buckets) or len(pb.shares) != len(buckets):
        return Distribution("prediction", buckets, tuple(pb.shares), (), 0)
    return _compare("prediction", buckets, pb.shares, counts, 0, moderate, major)


def run_drift(
    card: ModelCard,
    distributions: Mapping[str, Any],
    *,
    moderate: float = MODERATE,
    major: float = MAJOR,
) -> tuple[Distribution, list[Distribution]]:
    """(prediction drift, per-feature drift in card order) from a manifest's distributions."""
    features = distributions.get("features", {}) or {}
    per_feature = [
        feature_drift(f, features.get(f.name, {}), moderate=moderate, major=major)
        for f in card.features
    ]
    pred = prediction_drift(
        card, distributions.get("prediction", {}) or {}, moderate=moderate, major=major
    )
    return pred, per_feature


# --- counting a run's values in the baseline's bins --------------------------------------------
class Distributions:
    """Counts of scored values in the card's baseline bins, for drift views without re-reading.

    A worker's counts come back pickled with their card (a few KB beside a batch's MBs of
    output): a copy without it could not count another batch."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.features: dict[str, np.ndarray] = {}
        self.missing: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        for f in card.features:
            n = len(f.bins) - 1 if f.kind == "number" else len(f.categories)
            self.features[f.name] = np.zeros(max(n, 0), dtype=np.int64)
        pb = card.prediction_baseline
        n_pred = len(pb.classes) if pb.classes else max(len(pb.bins) - 1, 0)
        self.prediction = np.zeros(n_pred, dtype=np.int64)

    def merge(self, other: Distributions) -> None:
        for name, counts in other.features.items():
            self.features[name] += counts
        self.missing.update(other.missing)
        self.other.update(other.other)
        self.prediction += other.prediction

    def add(
        self, frame: Any, values: np.ndarray, codes: dict[str, np.ndarray] | None = None
    ) -> None:
        """Count a batch's scored rows; ``codes``: categories as positions in the card's list
        (-1 unseen, -2 missing), as validation found them, instead of counting the strings."""
        codes = codes or {}
        for f in self.card.features:
            counts = self.features[f.name]
            code = codes.get(f.name)
            if code is not None:
                self.missing[f.name] += int((code == -2).sum())
                self.other[f.name] += int((code == -1).sum())
                if len(counts):
                    counts += np.bincount(code[code >= 0], minlength=len(counts))
            elif f.kind == "number":
                vals = _column(frame, f.name).astype(float)
                self.missing[f.name] += int(np.isnan(vals).sum())
                vals = vals[~np.isnan(vals)]
                if len(counts):
                    idx = np.searchsorted(np.asarray(f.bins[1:-1]), vals, side="right")
                    counts += np.bincount(idx, minlength=len(counts))
            else:
                col = _column(frame, f.name)
                seen = pd.Series(col, dtype=object).value_counts(dropna=True)
                self.missing[f.name] += len(col) - int(seen.sum())
                pos = {c: i for i, c in enumerate(f.categories)}
                for value, n in seen.items():
                    i = pos.get(value)
                    if i is None:
                        self.other[f.name] += int(n)
                    else:
                        counts[i] += int(n)
        pb = self.card.prediction_baseline
        if len(self.prediction) and len(values):
            if pb.classes:
                seen = pd.Series(values, dtype=object).astype(str).value_counts()
                for i, c in enumerate(pb.classes):
                    self.prediction[i] += int(seen.get(c, 0))
            else:
                idx = np.searchsorted(np.asarray(pb.bins[1:-1]), values.astype(float), "right")
                self.prediction += np.bincount(idx, minlength=len(self.prediction))

    def as_dict(self) -> dict[str, Any]:
        return {
            "prediction": {"counts": self.prediction.tolist()},
            "features": {
                name: {
                    "counts": counts.tolist(),
                    "missing": int(self.missing[name]),
                    "other": int(self.other[name]),
                }
                for name, counts in self.features.items()
            },
        }


def _column(frame: Any, name: str) -> np.ndarray:
    return frame[name].to_numpy() if name in frame else np.array([])
