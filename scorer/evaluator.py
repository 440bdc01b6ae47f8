"""The public evaluator of a scoring plan: its numbers as arrays, built once per model load.

``Evaluator(plan, estimator)`` turns a ``scorer.plan.Plan`` (a plain value) into the arrays
``predict`` and ``design_matrix`` use; an estimator head gets its unpickled estimator here,
checked to be the one plan.json names. Nothing changes after construction (the arrays are
read-only), so one evaluator serves any number of threads at once. Needs numpy only (and pandas
plus the estimator's library for an estimator head).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import repeat
from typing import Any

import numpy as np

from scorer.errors import PlanInvalid
from scorer.plan import (
    ESTIMATOR_FILE,
    Encode,
    EstimatorHead,
    ImputeCategories,
    ImputeNumbers,
    LinearHead,
    LogisticHead,
    Plan,
    class_path,
)


class Evaluator:
    """A plan (checked for consistency when it was made) turned into arrays once, for many
    predict calls from any thread."""

    __slots__ = (
        "classes",
        "coef",
        "encoders",
        "estimator",
        "intercept",
        "order",
        "origins",
        "plan",
    )

    def __init__(self, plan: Plan, estimator: Any = None) -> None:
        """``estimator``: an estimator head's fitted estimator, checked to be the one it names;
        without it such a plan refuses to predict."""
        self.plan = plan
        self.origins = plan.origins
        self.encoders: list[tuple[dict[str, int], np.ndarray] | None] = []
        for step in plan.steps:
            self.encoders.append(None)
            if isinstance(step, Encode):
                rows = [*step.table, step.unseen, step.missing]
                lookup = {c: i for i, c in enumerate(step.categories)}
                table = np.array(rows, dtype=np.float64).reshape(len(rows), len(step.outputs))
                self.encoders[-1] = (lookup, _frozen(table))
        head = plan.head
        n = len(plan.design)
        self.estimator: Any = None  # an estimator head's
        self.coef: Any = None
        self.intercept: Any = None
        self.order = _frozen(np.array(getattr(head, "order", ()), dtype=np.intp))
        self.classes = _frozen(np.array(plan.classes, dtype=object))
        if isinstance(head, EstimatorHead):
            if estimator is not None:
                _check_estimator(plan, head, estimator)
            self.estimator = estimator
        elif estimator is not None:
            raise PlanInvalid("plan: only an estimator head takes an estimator")
        elif isinstance(head, LinearHead):
            self.coef = _frozen(np.array(head.coef, dtype=np.float64))
            self.intercept = np.float64(head.intercept)
        else:
            # C-ordered like LogisticRegression.coef_, so ``coef.T`` has the same layout
            self.coef = _frozen(np.array(head.coef, dtype=np.float64).reshape(len(head.coef), n))
            self.intercept = _frozen(np.array(head.intercept, dtype=np.float64))

    def predict(
        self, columns: Mapping[str, np.ndarray], *, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(values, score, proba) with the meaning of ``scorer.predict.Predictions``. Numbers
        come as float64 with NaN for missing, categories as object arrays of str / NaN.

        ``threads``: the OpenMP threads an estimator head may use for this call (LightGBM's
        ``num_threads``; None: the estimator's own setting). The numbers do not depend on it."""
        design = self.design_matrix(columns)
        rows = design.shape[0]
        if isinstance(self.plan.head, EstimatorHead):
            return self._estimator_predict(design, rows, threads)
        if not np.isfinite(design).all():  # the estimator's own input check
            raise ValueError("Input X contains NaN or infinity after preprocessing")
        if isinstance(self.plan.head, LinearHead):
            return design @ self.coef + self.intercept, None, None
        proba = self._proba(design)[:, self.order]
        best = proba.argmax(axis=1)
        return self.classes[best], proba[np.arange(len(best)), best], proba

    def design_matrix(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows as the estimator sees them (imputed, encoded, renamed): one column per
        ``design`` name. Used to explain a prediction in the model's own space."""
        plan = self.plan
        state: dict[str, np.ndarray] = {}
        n: int | None = None
        for inp in plan.inputs:
            if inp.name not in columns:
                raise ValueError(f"column '{inp.name}' is missing; the plan needs it")
            if inp.kind == "number":
                arr = np.asarray(columns[inp.name], dtype=np.float64)
            else:
                arr = np.asarray(columns[inp.name], dtype=object)
            if arr.ndim != 1 or (n is not None and len(arr) != n):
                raise ValueError("every column must be one-dimensional and of the same length")
            n = len(arr)
            state[inp.name] = arr
        rows = n or 0
        fills: dict[str, str] = {}  # category imputations not applied yet
        for step, enc in zip(plan.steps, self.encoders, strict=True):
            if isinstance(step, ImputeNumbers):
                for col, fill in zip(step.columns, step.fill, strict=True):
                    x = state[col]
                    if np.isinf(x).any():  # SimpleImputer accepts NaN, refuses infinity
                        raise ValueError(f"Input X contains infinity (column '{col}')")
                    state[col] = np.where(np.isnan(x), fill, x)
            elif isinstance(step, ImputeCategories):
                # Deferred to the column's encoder, which finds the NaNs anyway; a later
                # imputer finds none to fill, so the first fill stands.
                for col, text in zip(step.columns, step.fill, strict=True):
                    fills.setdefault(col, text)
            elif isinstance(step, Encode):
                assert enc is not None
                lookup, table = enc
                pending = fills.pop(step.column, None)
                codes = _codes(state.pop(step.column), lookup, step.column, pending)
                for j, out in enumerate(step.outputs):
                    state[out] = table[:, j][codes]
            else:
                for col, text in fills.items():
                    state[col] = _fill(state[col], text)
                fills = {}
                renames = dict(step.names)
                state = {renames.get(k, k): v for k, v in state.items()}
        # Filled like the frame pandas hands scikit-learn: column-major, so BLAS sums each row
        # in the same order as for the pipeline.
        x_t = np.empty((len(plan.design), rows), dtype=np.float64)
        for j, name in enumerate(plan.design):
            x_t[j] = state[name]
        return x_t.T

    def _estimator_predict(
        self, design: np.ndarray, rows: int, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The estimator called as the pipeline calls it: on a DataFrame of the design columns
        (float64, the names it was fitted on); it checks its input (NaN, …) itself."""
        import pandas as pd

        est = self.estimator
        if est is None:
            raise PlanInvalid(f"plan: its estimator ({ESTIMATOR_FILE}) was not loaded")
        if rows == 0:
            empty = np.empty(0, dtype=np.float64)
            if self.plan.task == "regression":
                return empty, None, None
            return self.classes[:0], empty, np.empty((0, len(self.classes)))
        frame = pd.DataFrame(design, columns=list(self.plan.design), copy=False)
        # Each row's prediction is computed on its own (trees summed in their order), so the
        # thread count changes the time, never the numbers.
        kw = {"num_threads": threads} if threads and _takes_num_threads(est) else {}
        if self.plan.task == "regression":
            values = np.asarray(est.predict(frame, **kw), dtype=np.float64)
            if values.shape != (rows,):
                raise ValueError(f"the estimator returned shape {values.shape} for {rows} rows")
            return values, None, None
        proba = np.asarray(est.predict_proba(frame, **kw), dtype=np.float64)
        if proba.shape != (rows, len(self.classes)):
            raise ValueError(f"the estimator returned probabilities of shape {proba.shape}")
        proba = proba[:, self.order]
        best = proba.argmax(axis=1)
        return self.classes[best], proba[np.arange(len(best)), best], proba

    def _proba(self, design: np.ndarray) -> np.ndarray:
        """LogisticRegression.predict_proba, operation for operation (scikit-learn 1.4)."""
        scores = design @ self.coef.T + self.intercept
        decision = scores.reshape(-1) if scores.shape[1] == 1 else scores
        assert isinstance(self.plan.head, LogisticHead)
        if self.plan.head.proba == "ovr":
            prob = _expit(decision)
            if prob.ndim == 1:
                return np.vstack([1 - prob, prob]).T
            prob /= prob.sum(axis=1).reshape((prob.shape[0], -1))
            return prob
        d2 = np.c_[-decision, decision] if decision.ndim == 1 else decision
        d2 -= d2.max(axis=1).reshape((-1, 1))
        np.exp(d2, out=d2)
        d2 /= d2.sum(axis=1).reshape((-1, 1))
        return d2


_EXP_SAFE = 709.0  # math.exp overflows (raises) a little above 709.78


def _expit(x: np.ndarray) -> np.ndarray:
    """scipy.special.expit without scipy: ``1 / (1 + exp(-x))`` with the C library's exp
    (scipy's loop calls it per element). numpy's SIMD exp differs from libm in the last bit for
    ~10% of inputs; libm keeps the plan's probabilities bit-identical to the pipeline's."""
    neg = -np.asarray(x, dtype=np.float64).reshape(-1)
    big = neg > _EXP_SAFE
    e = np.fromiter(map(math.exp, np.where(big, 0.0, neg).tolist()), np.float64, len(neg))
    for i in np.flatnonzero(big):
        try:
            e[i] = math.exp(neg[i])
        except OverflowError:
            e[i] = math.inf
    out: np.ndarray = 1 / (1 + e)
    return out.reshape(np.shape(x))


def _codes(values: np.ndarray, lookup: dict[str, int], column: str, fill: str | None) -> np.ndarray:
    """Row of the encoder table per value: a known category, unseen (len) or missing (len+1);
    with ``fill`` (an imputer's statistic), a missing value is encoded as that category."""
    n = len(lookup)
    codes = np.fromiter(map(lookup.get, values.tolist(), repeat(-1)), np.intp, len(values))
    odd = np.flatnonzero(codes < 0)
    if odd.size:
        rest = values[odd]
        text = np.fromiter(map(isinstance, rest, repeat(str)), bool, len(rest))
        gaps = ~text & (rest != rest)  # NaN, as SimpleImputer and the encoders test for it
        bad = ~(text | gaps)
        if bad.any():
            v = rest[np.flatnonzero(bad)[0]]
            raise ValueError(f"column '{column}' holds {v!r}; a category must be text or NaN")
        codes[odd[text]] = n
        codes[odd[gaps]] = n + 1 if fill is None else lookup.get(fill, n)
    return codes


def _fill(values: np.ndarray, text: str) -> np.ndarray:
    """SimpleImputer on an object column: NaN (``x != x``) → ``text``."""
    gaps = values != values
    if not gaps.any():
        return values
    out = values.copy()
    out[gaps] = text
    return out


def _takes_num_threads(estimator: Any) -> bool:
    """LightGBM's scikit-learn estimators take ``num_threads`` per predict call."""
    return type(estimator).__module__.split(".")[0] == "lightgbm"


def _frozen(array: np.ndarray) -> np.ndarray:
    """Read-only, so that no call can change what other threads compute with."""
    array.flags.writeable = False
    return array


def _check_estimator(plan: Plan, head: EstimatorHead, estimator: Any) -> None:
    """The unpickled estimator is the one plan.json names, for the plan's classes."""
    if class_path(estimator) != head.estimator:
        raise PlanInvalid(
            f"plan: {head.file} holds a {class_path(estimator)}, plan.json names "
            f"{head.estimator}; republish the model"
        )
    if plan.task == "classification" and len(getattr(estimator, "classes_", ())) != len(
        plan.classes
    ):
        raise PlanInvalid(f"plan: {head.file} predicts other classes than the plan lists")
