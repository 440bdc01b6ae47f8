"""One batch of records scored (pure): validated, predicted and formatted into output bytes.

The same function runs in the run's own process or in a forked worker, so a file's outputs are
the same bytes whatever the number of workers; ``Totals`` adds the results up in file order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scorer import output
from scorer.card import ModelCard
from scorer.errors import ModelFailed
from scorer.predict import Predictions, predict
from scorer.reader import Batch, ColumnBatch
from scorer.registry import LoadedModel
from scorer.schema import HeaderPlan
from scorer.validate import CheckedBatch, Refuse, check_batch, check_columns


@dataclass(slots=True)
class BatchResult:
    """What one batch adds to the outputs and to the manifest's counts."""

    predictions: bytes  # CSV lines, no header
    rejected: bytes  # CSV lines, no header
    rows: int
    rows_scored: int
    rejected_by_code: Counter[str]  # codes in the order they first occur (ties in messages)
    warnings: Counter[str]
    column_warnings: dict[str, Counter[str]]
    distributions: Distributions


def score_batch(batch: Batch, model: LoadedModel, plan: HeaderPlan) -> BatchResult:
    def check(refuse: Refuse | None = None) -> CheckedBatch:
        if isinstance(batch, ColumnBatch):
            return check_columns(batch, plan, refuse)
        return check_batch(batch.records, batch.row_numbers, batch.lines, plan, refuse)

    checked = check()
    first_valid = checked.valid
    refused: dict[int, tuple[str, str]] = {}  # positions in the first check's frame
    try:
        preds = predict(model, checked.frame, typed=True)
    except ValueError:
        # The model refused the batch (e.g. a tree model and a number beyond float32): find
        # the rows it refuses, reject them with its reason, and score the rest.
        refused = refused_rows(model, checked.frame)
        checked = check(lambda frame: refused)
        preds = predict(model, checked.frame, typed=True)
    bad = non_finite(preds)
    if bad.any():
        # A finite input can still push a model past float64 (a linear model and 1e308): an
        # inf/NaN prediction is not a score, so those rows are rejected and the rest scored.
        kept = np.setdiff1d(np.arange(len(first_valid)), np.fromiter(refused, np.int64))
        overflow = {
            int(kept[j]): _overflow(model, checked.frame.iloc[j], preds, j)
            for j in np.flatnonzero(bad)
        }
        rows_out = {_row_number(batch, int(first_valid[p])) for p in overflow}
        checked = check(lambda frame: {**refused, **overflow})
        checked.rejections = [
            dataclasses.replace(r, code=NON_FINITE_PREDICTION) if r.row_number in rows_out else r
            for r in checked.rejections
        ]
        preds = _keep(preds, ~bad)
    if isinstance(batch, ColumnBatch):
        rows = batch.n
        row_numbers = checked.valid.astype(np.int64) + batch.first_row
    else:
        rows = len(batch.records)
        row_numbers = np.asarray(batch.row_numbers, dtype=np.int64)[checked.valid]
    predictions = output.predictions_csv(
        checked.valid_cells,
        row_numbers,
        preds.values,
        preds.score,
        checked.formula_safe,
        preds.proba,
    )
    rejected = output.rejected_csv(checked.rejections) if checked.rejections else b""
    dist = Distributions(model.card)
    dist.add(checked.frame, preds.values, checked.category_codes)
    return BatchResult(
        predictions=predictions,
        rejected=rejected,
        rows=rows,
        rows_scored=len(checked.valid),
        rejected_by_code=Counter(r.code for r in checked.rejections),
        warnings=checked.warnings,
        column_warnings=checked.column_warnings,
        distributions=dist,
    )


def refused_rows(model: LoadedModel, frame: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """The rows of ``frame`` the model raises ValueError on, with the column and reason, found
    by halving (a few dozen calls for a few bad rows in a batch of 32k). If the model refuses
    even the card's typical row, the model is broken, not the rows: ModelFailed."""
    typical = pd.DataFrame(
        {
            f.name: np.array(
                [f.typical if f.typical is not None else np.nan],
                dtype=np.float64 if f.kind == "number" else object,
            )
            for f in model.card.features
        }
    )
    try:
        predict(model, typical, typed=True)
    except ValueError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ModelFailed(
            f"{model.card.ref} cannot score even its own typical row ({detail}); the model is "
            "broken, so the input stays pending"
        ) from exc
    out: dict[int, tuple[str, str]] = {}

    def search(lo: int, hi: int) -> None:
        try:
            predict(model, frame.iloc[lo:hi], typed=True)
        except ValueError as exc:
            if hi - lo == 1:
                out[lo] = _refusal(model, frame.iloc[lo], exc)
            elif hi - lo <= 16:  # one by one: bounded work even when every row is refused
                for i in range(lo, hi):
                    search(i, i + 1)
            else:
                mid = (lo + hi) // 2
                search(lo, mid)
                search(mid, hi)

    search(0, len(frame))
    return out


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _refusal(model: LoadedModel, row: pd.Series, exc: ValueError) -> tuple[str, str]:
    for feat in model.card.features:
        value = row.get(feat.name)
        if feat.kind == "number" and isinstance(value, float) and abs(value) > _FLOAT32_MAX:
            return feat.name, (
                f"'{feat.name}' is {value:g}, beyond the ±3.4e38 this model can take "
                "(it computes in float32); check the value"
            )
    detail = " ".join(str(exc).split())[:200]
    return "", f"the model could not score this row ({detail}); check its values"


NON_FINITE_PREDICTION = "NON_FINITE_PREDICTION"


def non_finite(preds: Predictions) -> np.ndarray:
    """Rows whose prediction, score or any class probability is inf or NaN."""
    n = len(preds.values)
    bad = np.zeros(n, dtype=bool)
    if preds.values.dtype.kind == "f":
        bad |= ~np.isfinite(preds.values)
    if preds.score is not None:
        bad |= ~np.isfinite(np.asarray(preds.score, dtype=float))
    if preds.proba is not None:
        bad |= ~np.isfinite(np.asarray(preds.proba, dtype=float)).all(axis=1)
    return bad


def _keep(preds: Predictions, mask: np.ndarray) -> Predictions:
    return Predictions(
        preds.values[mask],
        None if preds.score is None else preds.score[mask],
        None if preds.proba is None else preds.proba[mask],
    )


def _row_number(batch: Batch, position: int) -> int:
    """The 1-based record number of the record at ``position`` in its batch."""
    if isinstance(batch, ColumnBatch):
        return batch.first_row + position
    return batch.row_numbers[position]


def _overflow(model: LoadedModel, row: pd.Series, preds: Predictions, j: int) -> tuple[str, str]:
    """(column, message) for a row whose prediction is not a finite number: the number the
    model's training range makes look most extreme is named, as the likely cause."""
    what = preds.values[j] if preds.values.dtype.kind == "f" else "not a finite probability"
    worst, ratio = "", 0.0
    for feat in model.card.features:
        value = row.get(feat.name)
        if feat.kind != "number" or not isinstance(value, float) or not np.isfinite(value):
            continue
        scale = max(abs(feat.min or 0.0), abs(feat.max or 0.0), 1.0)
        if abs(value) / scale > ratio:
            worst, ratio = feat.name, abs(value) / scale
    extreme = (
        f"; '{worst}' is {row[worst]:g}, far outside the {model.card.ref} training range — check it"
        if worst and ratio > 1.0
        else "; check its values"
    )
    return "", (
        f"the prediction is {what}: this row's values push the model outside finite "
        f"numbers{extreme}"
    )


@dataclass(slots=True)
class Totals:
    """The manifest's counts over every batch so far, added in file order."""

    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    column_warnings: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, result: BatchResult) -> None:
        self.rows_scored += result.rows_scored
        self.rows_rejected += result.rows - result.rows_scored
        self.rejected_by_code.update(result.rejected_by_code)
        self.warnings.update(result.warnings)
        for col, cnt in result.column_warnings.items():
            self.column_warnings.setdefault(col, Counter()).update(cnt)


class Distributions:
    """Counts of scored values in the card's baseline bins, for drift views without re-reading."""

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

    def __getstate__(self) -> dict[str, Any]:
        # a worker sends its counts back; the card stays with the receiver
        return {
            "features": self.features,
            "missing": self.missing,
            "other": self.other,
            "prediction": self.prediction,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

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
