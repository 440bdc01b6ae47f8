"""Build a model card's feature profiles and baselines from a DataFrame (pure, no I/O)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scorer.card import Feature, PredictionBaseline

N_BINS = 10
MAX_CATEGORIES = 1000
MAX_CODES = 20  # whole numbers with at most this many values may be codes (SEX 1/2, EDUCATION 1–6)


def _clean(x: float) -> float:
    return float(x) if math.isfinite(float(x)) else 0.0


def quantile_edges(values: np.ndarray, n_bins: int = N_BINS) -> tuple[float, ...]:
    """Bin edges at the quantiles of ``values`` (deduplicated; at least two edges)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ()
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return tuple(float(e) for e in edges)


def code_edges(values: np.ndarray) -> tuple[float, ...]:
    """One bin per distinct value (codes 1, 2, 5 → edges 1, 1.5, 3.5, 5): quantile bins of a
    column with few values collapse (SEX 1/2 in one bin can never show a shift). Edges are the
    midpoints between neighbouring codes, so counting stays a search over edges."""
    codes = np.unique(values[np.isfinite(values)])
    if codes.size == 0:
        return ()
    if codes.size == 1:
        return (float(codes[0]), float(codes[0]))
    mids = (codes[:-1] + codes[1:]) / 2
    return tuple(float(e) for e in (codes[0], *mids, codes[-1]))


def bin_shares(values: np.ndarray, edges: tuple[float, ...]) -> tuple[float, ...]:
    """Share of values per bin; values outside the edges count in the first/last bin."""
    if len(edges) < 2:
        return ()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return tuple(0.0 for _ in range(len(edges) - 1))
    inner = np.asarray(edges[1:-1])
    idx = np.searchsorted(inner, values, side="right")
    counts = np.bincount(idx, minlength=len(edges) - 1)
    return tuple(float(c) / values.size for c in counts)


def is_number(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def profile_feature(name: str, series: pd.Series) -> Feature:
    missing_rate = float(series.isna().mean()) if len(series) else 0.0
    present = series.dropna()
    if is_number(series):
        values = present.to_numpy(dtype=float)
        integer = bool(values.size and np.all(np.mod(values, 1) == 0))
        coded = integer and len(np.unique(values)) <= MAX_CODES
        edges = code_edges(values) if coded else quantile_edges(values)
        return Feature(
            name=name,
            kind="number",
            nullable=missing_rate > 0,
            missing_rate=round(missing_rate, 6),
            min=_clean(values.min()) if values.size else None,
            max=_clean(values.max()) if values.size else None,
            integer=integer,
            typical=_clean(np.median(values)) if values.size else None,
            bins=edges,
            shares=bin_shares(values, edges),
            coded=coded,
        )
    counts = present.astype(str).value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = counts.head(MAX_CATEGORIES)
    total = max(int(counts.sum()), 1)
    return Feature(
        name=name,
        kind="category",
        nullable=missing_rate > 0,
        missing_rate=round(missing_rate, 6),
        categories=tuple(sorted(str(c) for c in top.index)),
        typical=str(top.index[0]) if len(top) else None,
        bins=(),
        shares=tuple(float(top.get(c, 0)) / total for c in sorted(str(c) for c in top.index)),
    )


def prediction_baseline(
    predictions: pd.Series | np.ndarray, classes: tuple[str, ...] = ()
) -> PredictionBaseline:
    if classes:
        labels = pd.Series(np.asarray(predictions)).astype(str)
        total = max(len(labels), 1)
        return PredictionBaseline(
            classes=classes,
            shares=tuple(float((labels == c).sum()) / total for c in classes),
        )
    values = np.asarray(predictions, dtype=float)
    edges = quantile_edges(values)
    return PredictionBaseline(bins=edges, shares=bin_shares(values, edges))
