"""One batch of records scored (pure): validated, predicted and formatted into output bytes.

The same function runs in the run's own process, on its threads (``scored_on_threads``) or in a
forked worker, so a file's outputs are the same bytes whatever the number of workers or threads;
``Totals`` adds the results up in file order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scorer import output
from scorer.codes import Code
from scorer.drift import Distributions
from scorer.model import LoadedModel, PlanEngine
from scorer.plan import EstimatorHead
from scorer.predict import Predictions, predict, refused_rows
from scorer.schema import HeaderPlan
from scorer.units import Batch, ColumnBatch
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


def score_batch(
    batch: Batch, model: LoadedModel, plan: HeaderPlan, *, threads: int | None = None
) -> BatchResult:
    """``threads``: the threads the model's library may use (``Engine.predict``); the bytes
    are the same whatever it is."""

    def check(refuse: Refuse | None = None) -> CheckedBatch:
        if isinstance(batch, ColumnBatch):
            return check_columns(batch, plan, refuse)
        return check_batch(batch.records, batch.row_numbers, batch.lines, plan, refuse)

    checked = check()
    first_valid = checked.valid
    refused: dict[int, tuple[str, str]] = {}  # positions in the first check's frame
    try:
        preds = predict(model, checked.frame, typed=True, threads=threads)
    except ValueError:
        # The model refused the batch (e.g. a tree model and a number beyond float32): find
        # the rows it refuses, reject them with its reason, and score the rest.
        refused = refused_rows(model, checked.frame, threads=threads)
        checked = check(lambda frame: refused)
        preds = predict(model, checked.frame, typed=True, threads=threads)
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


def threads_help(model: LoadedModel) -> bool:
    """Whether scoring batches on threads of the run's process pays: a scoring plan with an
    estimator head, whose library predicts outside the GIL (LightGBM: two thirds of a batch's
    CPU time). Not a numpy-only plan (it is forked instead, ``scorer.workers``), not the
    pipeline engine (its calls are serialised by a lock)."""
    engine = model.engine
    return isinstance(engine, PlanEngine) and isinstance(engine.plan.head, EstimatorHead)


def scored_on_threads(
    batches: Iterable[Batch], model: LoadedModel, plan: HeaderPlan, threads: int
) -> Iterator[BatchResult]:
    """``score_batch`` over ``batches``, results in file order, ``threads`` batches scored at
    once on threads of this process, each predicting on one thread of the model's library.

    For models that must not be forked (``fork_safe``): while one thread is in LightGBM's
    predict (outside the GIL), another validates or formats, and no OpenMP team spins waiting
    between batches. The bytes are those of one thread: each batch is scored on its own.
    Batches are read here, at most one ahead of the threads; an error reading one is raised
    only after every batch before it was yielded, as when scoring one batch at a time.
    """
    if threads < 2:
        yield from (score_batch(batch, model, plan) for batch in batches)
        return
    pending: deque[Future[BatchResult]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="score") as pool:
        try:
            source = iter(batches)
            while True:
                try:
                    batch = next(source)
                except StopIteration:
                    break
                except Exception:
                    while pending:  # the batches before it come first
                        yield pending.popleft().result()
                    raise
                pending.append(pool.submit(score_batch, batch, model, plan, threads=1))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early: what has not started never will
                future.cancel()


NON_FINITE_PREDICTION = Code.NON_FINITE_PREDICTION


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
