"""Scoring plans: a PyCaret pipeline's fitted preprocessing as JSON, evaluated with numpy.

Unpickling a PyCaret pipeline imports PyCaret (seconds) and its pandas transformers are slow; a
plan holds the same numbers (imputation fills, encoder tables, coefficients) and repeats the
floating-point operations scikit-learn performs, in the same order and memory layout, so its
predictions match the pipeline's (bit for bit in practice). ``compile_pipeline`` refuses with
``PlanUnsupported`` anything it cannot reproduce exactly, and ``verify`` checks a plan against
its pipeline before it is published.

The head is either linear (its coefficients in the JSON, format 1) or, for any other estimator
(trees, boosting …), the fitted estimator object itself (format 2): pickled on its own as
``estimator.pkl``, loaded with its own library only (never PyCaret) and called with the design
matrix as the DataFrame the pipeline hands it.

The evaluation side (``Plan``) needs only numpy (and pandas plus the estimator's library for an
estimator head); the compile side imports scikit-learn, category_encoders and PyCaret inside its
functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

import numpy as np

from scorer.card import ModelCard
from scorer.errors import PlanInvalid, PlanUnsupported

FORMAT = 1  # plans with a linear head: their JSON is all a scorer needs
FORMAT_ESTIMATOR = 2  # plans whose head is a pickled estimator (ESTIMATOR_FILE)
FORMATS = (FORMAT, FORMAT_ESTIMATOR)
ESTIMATOR_FILE = "estimator.pkl"
TOLERANCE = 1e-9  # largest relative difference from the pipeline a published plan may have

Kind = Literal["number", "category"]


# --- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Input:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class ImputeNumbers:
    """SimpleImputer on number columns: NaN → the fitted statistic; infinity is an error."""

    columns: tuple[str, ...]
    fill: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ImputeCategories:
    """SimpleImputer on category columns: NaN → the fitted statistic (a category)."""

    columns: tuple[str, ...]
    fill: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Encode:
    """A category encoder on one column as a table: one row of outputs per known category, one
    for any unseen value and one for a missing value; the outputs replace the column."""

    column: str
    outputs: tuple[str, ...]
    categories: tuple[str, ...]
    table: tuple[tuple[float, ...], ...]
    unseen: tuple[float, ...]
    missing: tuple[float, ...]
    encoder: str  # the encoder it reproduces, for people reading plan.json


@dataclass(frozen=True, slots=True)
class Rename:
    """Column renames (PyCaret's CleanColumnNames)."""

    names: tuple[tuple[str, str], ...]


Step = ImputeNumbers | ImputeCategories | Encode | Rename


@dataclass(frozen=True, slots=True)
class LinearHead:
    """``X @ coef + intercept``: every scikit-learn linear regressor's predict."""

    estimator: str
    coef: tuple[float, ...]
    intercept: float


@dataclass(frozen=True, slots=True)
class LogisticHead:
    """LogisticRegression.predict_proba (scikit-learn 1.4): ``ovr`` = expit, normalised over
    the classes when there are more than two; ``softmax`` = multinomial."""

    estimator: str
    coef: tuple[tuple[float, ...], ...]
    intercept: tuple[float, ...]
    proba: Literal["ovr", "softmax"]
    order: tuple[int, ...]  # card class i is column order[i] of the estimator's probabilities


@dataclass(frozen=True, slots=True)
class EstimatorHead:
    """The fitted estimator itself, unpickled from ``file`` once its sha256 matches, called with
    the design matrix as a float64 DataFrame with the column names PyCaret hands it."""

    estimator: str  # module.Class, checked against the unpickled object
    file: str
    sha256: str
    order: tuple[int, ...] = ()  # classification: card class i is predict_proba column order[i]


Head = LinearHead | LogisticHead | EstimatorHead


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What a plan is compiled for: the task, the input columns and the card's class order."""

    task: Literal["regression", "classification"]
    inputs: tuple[Input, ...]
    classes: tuple[str, ...] = ()

    @classmethod
    def of(cls, card: ModelCard) -> ModelShape:
        return cls(card.task, tuple(Input(f.name, f.kind) for f in card.features), card.classes)


@dataclass(frozen=True)
class Plan:
    task: Literal["regression", "classification"]
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    design: tuple[str, ...]  # the estimator's columns, in the order it was fitted on
    head: Head
    classes: tuple[str, ...] = ()
    _rt: _Runtime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rt", _Runtime(self))

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def format(self) -> int:
        return FORMAT_ESTIMATOR if isinstance(self.head, EstimatorHead) else FORMAT

    def bind(self, estimator: Any) -> Plan:
        """Give an estimator head its unpickled estimator (checked to be the one it names);
        returns the plan itself, ready to predict."""
        head = self.head
        if not isinstance(head, EstimatorHead):
            raise PlanInvalid("plan: only an estimator head takes an estimator")
        if _class_path(estimator) != head.estimator:
            raise PlanInvalid(
                f"plan: {head.file} holds a {_class_path(estimator)}, plan.json names "
                f"{head.estimator}; republish the model"
            )
        if self.task == "classification" and len(getattr(estimator, "classes_", ())) != len(
            self.classes
        ):
            raise PlanInvalid(f"plan: {head.file} predicts other classes than the plan lists")
        self._rt.estimator = estimator
        return self

    def predict(
        self, columns: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(values, score, proba) with the meaning of ``scorer.predict.Predictions``. Numbers
        come as float64 with NaN for missing, categories as object arrays of str / NaN."""
        return self._rt.predict(columns)

    def design_matrix(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows as the estimator sees them (imputed, encoded, renamed): one column per
        ``design`` name. Used to explain a prediction in the model's own space."""
        return self._rt.design(columns)

    @property
    def origins(self) -> tuple[str, ...]:
        """For each ``design`` column, the input column it is computed from."""
        return self._rt.origins

    @property
    def estimator(self) -> Any:
        """An estimator head's fitted estimator, once bound (else None)."""
        return self._rt.estimator

    # --- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> bytes:
        """Deterministic bytes; every float as ``float.hex`` so it round-trips exactly."""
        body = {
            "format": self.format,
            "task": self.task,
            "inputs": [{"name": i.name, "kind": i.kind} for i in self.inputs],
            "steps": [_step_to_dict(s) for s in self.steps],
            "design": list(self.design),
            "head": _head_to_dict(self.head),
            "classes": list(self.classes),
        }
        text = json.dumps(body, indent=1, sort_keys=True, ensure_ascii=True, allow_nan=False)
        return (text + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str) -> Plan:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise PlanInvalid(f"plan.json is not JSON ({exc}); republish the model") from exc
        if not isinstance(raw, dict) or "format" not in raw:
            raise PlanInvalid("plan.json has no 'format'; it is not a scoring plan")
        if raw["format"] not in FORMATS:
            raise PlanInvalid(
                f"plan.json has format {raw['format']!r} but this scorer reads formats "
                f"{' and '.join(map(str, FORMATS))}; score with the pipeline engine or install "
                "the dropscore version that wrote it"
            )
        try:
            plan = cls(
                task=_literal(raw["task"], ("regression", "classification")),
                inputs=tuple(
                    Input(_str(i["name"]), _literal(i["kind"], ("number", "category")))
                    for i in raw["inputs"]
                ),
                steps=tuple(_step_from_dict(s) for s in raw["steps"]),
                design=tuple(_str(d) for d in raw["design"]),
                head=_head_from_dict(raw["head"]),
                classes=tuple(_str(c) for c in raw["classes"]),
            )
        except PlanInvalid:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanInvalid(f"plan.json is malformed ({exc!r}); republish the model") from exc
        if plan.format != raw["format"]:
            raise PlanInvalid(f"plan.json says format {raw['format']} but its head is format 2")
        return plan


def _hex(values: Sequence[float]) -> list[str]:
    return [float(v).hex() for v in values]


def _unhex(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PlanInvalid("plan.json: numbers must be lists of float.hex strings")
    return tuple(float.fromhex(v) for v in values)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise PlanInvalid(f"plan.json: expected text, got {value!r}")
    return value


def _literal(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise PlanInvalid(f"plan.json: {value!r} is not one of {', '.join(allowed)}")
    return value


def _step_to_dict(step: Step) -> dict[str, Any]:
    if isinstance(step, ImputeNumbers):
        return {"op": "impute_numbers", "columns": list(step.columns), "fill": _hex(step.fill)}
    if isinstance(step, ImputeCategories):
        return {"op": "impute_categories", "columns": list(step.columns), "fill": list(step.fill)}
    if isinstance(step, Encode):
        return {
            "op": "encode",
            "encoder": step.encoder,
            "column": step.column,
            "outputs": list(step.outputs),
            "categories": list(step.categories),
            "table": [_hex(row) for row in step.table],
            "unseen": _hex(step.unseen),
            "missing": _hex(step.missing),
        }
    return {"op": "rename", "names": [[a, b] for a, b in step.names]}


def _step_from_dict(raw: dict[str, Any]) -> Step:
    op = raw["op"]
    if op == "impute_numbers":
        return ImputeNumbers(tuple(_str(c) for c in raw["columns"]), _unhex(raw["fill"]))
    if op == "impute_categories":
        return ImputeCategories(
            tuple(_str(c) for c in raw["columns"]), tuple(_str(f) for f in raw["fill"])
        )
    if op == "encode":
        return Encode(
            column=_str(raw["column"]),
            outputs=tuple(_str(o) for o in raw["outputs"]),
            categories=tuple(_str(c) for c in raw["categories"]),
            table=tuple(_unhex(row) for row in raw["table"]),
            unseen=_unhex(raw["unseen"]),
            missing=_unhex(raw["missing"]),
            encoder=_str(raw["encoder"]),
        )
    if op == "rename":
        return Rename(tuple((_str(a), _str(b)) for a, b in raw["names"]))
    raise PlanInvalid(f"plan.json has an unknown step {op!r}")


def _head_to_dict(head: Head) -> dict[str, Any]:
    if isinstance(head, EstimatorHead):
        return {
            "kind": "estimator",
            "estimator": head.estimator,
            "file": head.file,
            "sha256": head.sha256,
            "order": list(head.order),
        }
    if isinstance(head, LinearHead):
        return {
            "kind": "linear",
            "estimator": head.estimator,
            "coef": _hex(head.coef),
            "intercept": float(head.intercept).hex(),
        }
    return {
        "kind": "logistic",
        "estimator": head.estimator,
        "coef": [_hex(row) for row in head.coef],
        "intercept": _hex(head.intercept),
        "proba": head.proba,
        "order": list(head.order),
    }


def _head_from_dict(raw: dict[str, Any]) -> Head:
    if raw["kind"] == "linear":
        return LinearHead(_str(raw["estimator"]), _unhex(raw["coef"]), *_unhex([raw["intercept"]]))
    if raw["kind"] == "logistic":
        order = raw["order"]
        if not all(isinstance(i, int) for i in order):
            raise PlanInvalid("plan.json: head.order must be integers")
        return LogisticHead(
            estimator=_str(raw["estimator"]),
            coef=tuple(_unhex(row) for row in raw["coef"]),
            intercept=_unhex(raw["intercept"]),
            proba=_literal(raw["proba"], ("ovr", "softmax")),
            order=tuple(order),
        )
    if raw["kind"] == "estimator":
        order = raw["order"]
        if not all(isinstance(i, int) for i in order):
            raise PlanInvalid("plan.json: head.order must be integers")
        return EstimatorHead(
            estimator=_str(raw["estimator"]),
            file=_str(raw["file"]),
            sha256=_str(raw["sha256"]),
            order=tuple(order),
        )
    raise PlanInvalid(f"plan.json has an unknown head {raw['kind']!r}")


# --- evaluation --------------------------------------------------------------------------------
class _Runtime:
    """A plan checked for consistency and turned into arrays once, for many predict calls."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        kinds: dict[str, str] = {}
        origin: dict[str, str] = {}  # column → the input it is computed from
        for inp in plan.inputs:
            if inp.name in kinds:
                raise PlanInvalid(f"plan: input '{inp.name}' is listed twice")
            kinds[inp.name] = inp.kind
            origin[inp.name] = inp.name
        self.encoders: list[tuple[dict[str, int], np.ndarray] | None] = []
        for step in plan.steps:
            self.encoders.append(None)
            if isinstance(step, ImputeNumbers | ImputeCategories):
                want = "number" if isinstance(step, ImputeNumbers) else "category"
                if len(step.fill) != len(step.columns):
                    raise PlanInvalid("plan: an imputation step has a fill per column")
                for col in step.columns:
                    if kinds.get(col) != want:
                        raise PlanInvalid(f"plan: imputation of '{col}' needs a {want} column")
            elif isinstance(step, Encode):
                if kinds.get(step.column) != "category":
                    raise PlanInvalid(f"plan: encoding '{step.column}' needs a category column")
                width = len(step.outputs)
                rows = [*step.table, step.unseen, step.missing]
                if len(step.table) != len(step.categories) or any(len(r) != width for r in rows):
                    raise PlanInvalid(f"plan: the table for '{step.column}' has the wrong shape")
                if len(set(step.categories)) != len(step.categories):
                    raise PlanInvalid(f"plan: '{step.column}' lists a category twice")
                del kinds[step.column]
                source = origin.pop(step.column)
                for out in step.outputs:
                    if out in kinds:
                        raise PlanInvalid(f"plan: encoder output '{out}' already exists")
                    kinds[out] = "encoded"
                    origin[out] = source
                lookup = {c: i for i, c in enumerate(step.categories)}
                table = np.array(rows, dtype=np.float64).reshape(len(rows), width)
                self.encoders[-1] = (lookup, table)
            else:
                renames = dict(step.names)
                kinds = {renames.get(k, k): v for k, v in kinds.items()}
                origin = {renames.get(k, k): v for k, v in origin.items()}
        missing = [d for d in plan.design if d not in kinds]
        text = [d for d in plan.design if kinds.get(d) == "category"]
        if missing or text or len(set(plan.design)) != len(plan.design):
            raise PlanInvalid(
                f"plan: design columns {missing or text or 'repeated'} are not numeric columns"
            )
        self.origins = tuple(origin[d] for d in plan.design)
        head = plan.head
        n = len(plan.design)
        self.estimator: Any = None  # an estimator head's, once bound
        if isinstance(head, EstimatorHead):
            k = len(plan.classes)
            if (
                head.file != ESTIMATOR_FILE
                or not re.fullmatch(r"[0-9a-f]{64}", head.sha256)
                or (plan.task == "regression" and (head.order or plan.classes))
                or (plan.task == "classification" and sorted(head.order) != list(range(k)))
                or (plan.task == "classification" and k < 2)
            ):
                raise PlanInvalid("plan: the estimator head does not fit the plan")
            self.order = np.array(head.order, dtype=np.intp)
            self.classes = np.array(plan.classes, dtype=object)
        elif isinstance(head, LinearHead):
            if plan.task != "regression" or len(head.coef) != n:
                raise PlanInvalid("plan: the linear head does not fit the design matrix")
            self.coef = np.array(head.coef, dtype=np.float64)
            self.intercept: Any = np.float64(head.intercept)
        else:
            k = len(plan.classes)
            n_rows = len(head.coef)
            if (
                plan.task != "classification"
                or any(len(r) != n for r in head.coef)
                or len(head.intercept) != n_rows
                or sorted(head.order) != list(range(k))
                or n_rows != (1 if k == 2 else k)
            ):
                raise PlanInvalid("plan: the logistic head does not fit the design matrix")
            # C-ordered like LogisticRegression.coef_, so ``coef.T`` has the same layout
            self.coef = np.array(head.coef, dtype=np.float64).reshape(n_rows, n)
            self.intercept = np.array(head.intercept, dtype=np.float64)
            self.order = np.array(head.order, dtype=np.intp)
            self.classes = np.array(plan.classes, dtype=object)

    def predict(
        self, columns: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        design = self.design(columns)
        rows = design.shape[0]
        if isinstance(self.plan.head, EstimatorHead):
            return self._estimator_predict(design, rows)
        if not np.isfinite(design).all():  # the estimator's own input check
            raise ValueError("Input X contains NaN or infinity after preprocessing")
        if isinstance(self.plan.head, LinearHead):
            return design @ self.coef + self.intercept, None, None
        proba = self._proba(design)[:, self.order]
        best = proba.argmax(axis=1)
        return self.classes[best], proba[np.arange(len(best)), best], proba

    def design(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
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
        self, design: np.ndarray, rows: int
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
        if self.plan.task == "regression":
            values = np.asarray(est.predict(frame), dtype=np.float64)
            if values.shape != (rows,):
                raise ValueError(f"the estimator returned shape {values.shape} for {rows} rows")
            return values, None, None
        proba = np.asarray(est.predict_proba(frame), dtype=np.float64)
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


# --- compiling a fitted pipeline -------------------------------------------------------------
_REGRESSORS = (
    "LinearRegression",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "Lars",
    "LassoLars",
    "OrthogonalMatchingPursuit",
    "BayesianRidge",
    "ARDRegression",
    "HuberRegressor",
)
_UNSEEN = "\x00dropscore-plan-unseen\x00"  # probe value no training category can be


@dataclass(frozen=True)
class Compiled:
    """A plan and the files it needs beside plan.json (an estimator head's pickle)."""

    plan: Plan
    files: dict[str, bytes]


def compile_pipeline(pipeline: Any, info: ModelCard | ModelShape) -> Plan:
    """The plan for a fitted PyCaret pipeline (an estimator head bound to the pipeline's own
    estimator); PlanUnsupported names the first thing that is not reproduced exactly."""
    return compile_model(pipeline, info).plan


def compile_model(pipeline: Any, info: ModelCard | ModelShape) -> Compiled:
    """``compile_pipeline`` with the files to publish beside plan.json."""
    from pycaret.internal.pipeline import Pipeline as PycaretPipeline
    from pycaret.internal.preprocess.transformers import (
        CleanColumnNames,
        TransformerWrapper,
        TransformerWrapperWithInverse,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import LabelEncoder

    shape = info if isinstance(info, ModelShape) else ModelShape.of(info)
    if type(pipeline) is not PycaretPipeline:
        raise PlanUnsupported(f"the model is a {type(pipeline).__name__}, not a PyCaret pipeline")
    if not pipeline.steps:
        raise PlanUnsupported("the pipeline has no steps")
    kinds: dict[str, str] = {}
    for inp in shape.inputs:
        kinds[inp.name] = inp.kind
    steps: list[Step] = []
    label_classes: list[Any] | None = None
    for name, step in pipeline.steps[:-1]:
        if step is None or step == "passthrough" or getattr(step, "_train_only", False):
            continue  # the pipeline skips these when predicting
        if type(step) not in (TransformerWrapper, TransformerWrapperWithInverse):
            raise PlanUnsupported(f"step '{name}' is a {type(step).__name__}")
        inner = step.transformer
        where = f"step '{name}' ({type(inner).__name__})"
        if isinstance(inner, LabelEncoder) and type(inner) is LabelEncoder:
            if type(step) is not TransformerWrapperWithInverse or shape.task != "classification":
                raise PlanUnsupported(f"{where} is not the target's label encoding")
            label_classes = list(inner.classes_)
            continue  # only ever touches the target
        if type(step) is TransformerWrapperWithInverse:
            raise PlanUnsupported(f"{where} transforms the target")
        include = step._include
        if not isinstance(include, list):
            raise PlanUnsupported(f"{where} was never fitted on named columns")
        if not include:
            continue
        absent = [c for c in include if c not in kinds]
        if absent:
            raise PlanUnsupported(f"{where} needs columns {absent} the plan does not have")
        if type(inner) is SimpleImputer:
            steps.append(_imputer(inner, include, kinds, where))
        elif type(inner) is CleanColumnNames:
            rename = _renames(inner, include, kinds, where)
            if rename.names:
                steps.append(rename)
            kinds = {dict(rename.names).get(k, k): v for k, v in kinds.items()}
        elif _encoder_kind(inner) is not None:
            for enc in _encoders(inner, include, kinds, where):
                del kinds[enc.column]
                for out in enc.outputs:
                    if out in kinds:
                        raise PlanUnsupported(f"{where}: output column '{out}' already exists")
                    kinds[out] = "encoded"
                steps.append(enc)
        else:
            raise PlanUnsupported(f"{where} is not a step a plan can reproduce")
    estimator = pipeline.steps[-1][1]
    if not _is_linear(estimator, shape.task):
        return _with_estimator_head(pipeline, shape, tuple(steps), kinds, label_classes)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise PlanUnsupported("the estimator was not fitted on named columns")
    design = tuple(str(n) for n in names)
    if sorted(design) != sorted(kinds):
        raise PlanUnsupported(
            f"the estimator's columns {list(design)} differ from the pipeline's {list(kinds)}"
        )
    text = [d for d in design if kinds[d] == "category"]
    if text:
        raise PlanUnsupported(f"columns {text} reach the estimator as text")
    head = _head(estimator, shape, label_classes, len(design))
    return Compiled(Plan(shape.task, shape.inputs, tuple(steps), design, head, shape.classes), {})


def _is_linear(est: Any, task: str) -> bool:
    """Whether ``_head`` takes the estimator (its coefficients go into the JSON)."""
    from sklearn import linear_model

    name = type(est).__name__
    if task == "regression":
        return name in _REGRESSORS and type(est) is getattr(linear_model, name)
    return type(est) is linear_model.LogisticRegression


def _with_estimator_head(
    pipeline: Any,
    shape: ModelShape,
    steps: tuple[Step, ...],
    kinds: dict[str, str],
    label_classes: list[Any] | None,
) -> Compiled:
    """The plan's preprocessing in front of the fitted estimator itself. The design columns are
    those the pipeline hands the estimator, in its order and with its names, found by running
    the pipeline's own preprocessing on probe rows."""
    import hashlib

    import pandas as pd
    from pycaret.internal.pipeline import _full_transform

    est = pipeline.steps[-1][1]
    name = type(est).__name__
    _check_estimator(est, shape.task)
    probe = pd.DataFrame(
        {
            i.name: (
                np.array([0.0, 1.0, np.nan])
                if i.kind == "number"
                else np.array([_UNSEEN, _UNSEEN, np.nan], dtype=object)
            )
            for i in shape.inputs
        }
    )
    try:
        given, _ = _full_transform(pipeline, probe, None, with_final=False)
    except Exception as exc:  # the pipeline's own failure: nothing to learn the columns from
        raise PlanUnsupported(f"the pipeline could not transform probe rows: {exc}") from exc
    columns = [str(c) for c in given.columns]
    if sorted(columns) != sorted(kinds) or len(set(columns)) != len(columns):
        raise PlanUnsupported(
            f"the pipeline hands {name} the columns {columns}, the plan builds {list(kinds)}"
        )
    text = [c for c in columns if kinds[c] == "category"]
    if text:
        raise PlanUnsupported(f"columns {text} reach the estimator as text")
    for col, dtype in zip(columns, given.dtypes, strict=True):
        # float64 or whole numbers: the same float64 values the plan builds (float32 is not)
        if not (isinstance(dtype, np.dtype) and (dtype == np.float64 or dtype.kind in "iub")):
            raise PlanUnsupported(f"the pipeline hands {name} column '{col}' as {dtype}")
    names = getattr(est, "feature_names_in_", None)
    fitted = [] if names is None else [str(n) for n in names]
    if not _same_names(fitted, columns, est):
        raise PlanUnsupported(
            f"{name} was fitted on the columns {fitted}; the pipeline gives {columns}"
        )
    order: tuple[int, ...] = ()
    if shape.task == "classification":
        order = _class_order(est, shape, label_classes)
    blob = _dump_estimator(est)
    head = EstimatorHead(_class_path(est), ESTIMATOR_FILE, hashlib.sha256(blob).hexdigest(), order)
    plan = Plan(shape.task, shape.inputs, steps, tuple(columns), head, shape.classes)
    return Compiled(plan.bind(est), {ESTIMATOR_FILE: blob})


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _check_estimator(est: Any, task: str) -> None:
    """A plain scikit-learn-API estimator of the task, loadable without PyCaret."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    name = type(est).__name__
    module = type(est).__module__
    if module.split(".")[0] in ("pycaret", "__main__"):
        raise PlanUnsupported(
            f"the estimator {name} is a class of {module}; a plan loads only estimators of "
            "their own library"
        )
    if not isinstance(est, BaseEstimator):
        raise PlanUnsupported(f"the estimator {name} is not a scikit-learn-API estimator")
    if task == "regression":
        if not (is_regressor(est) and callable(getattr(est, "predict", None))):
            raise PlanUnsupported(f"the estimator {name} is not a regressor with predict")
    elif not (
        is_classifier(est)
        and callable(getattr(est, "predict_proba", None))
        and hasattr(est, "classes_")
    ):
        raise PlanUnsupported(f"the estimator {name} is not a classifier with predict_proba")
    needs = sorted(m for m in _pickled_modules(est) if m.split(".")[0] in ("pycaret", "__main__"))
    if needs:
        raise PlanUnsupported(
            f"the estimator {name} cannot be unpickled without {needs[0]} (it holds its objects)"
        )


def _pickled_modules(obj: Any) -> set[str]:
    """Every module a pickle of ``obj`` refers to (classes, functions, reducers)."""
    import io
    import pickle
    import types

    found: set[str] = set()

    class Scan(pickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            found.add(str(getattr(type(o), "__module__", "")))
            if isinstance(o, type | types.FunctionType | types.BuiltinFunctionType):
                found.add(str(getattr(o, "__module__", "")))
            return NotImplemented

    try:
        Scan(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception as exc:
        raise PlanUnsupported(f"the estimator cannot be pickled on its own: {exc}") from exc
    return found


def _dump_estimator(est: Any) -> bytes:
    import io

    import joblib

    buf = io.BytesIO()
    joblib.dump(est, buf)
    return buf.getvalue()


def _same_names(fitted: list[str], columns: list[str], est: Any) -> bool:
    """The estimator's fitted names are the pipeline's columns, in order; LightGBM stores a
    name with its whitespace as '_' (and does not check names when predicting)."""
    if fitted == columns:
        return True
    if type(est).__module__.split(".")[0] != "lightgbm" or len(fitted) != len(columns):
        return False
    return fitted == [re.sub(r"\s", "_", c) for c in columns]


def _class_order(est: Any, shape: ModelShape, label_classes: list[Any] | None) -> tuple[int, ...]:
    """Card class i is column order[i] of the estimator's probabilities."""
    name = type(est).__name__
    fitted = list(est.classes_)
    if label_classes is not None:
        try:
            labels = [str(label_classes[int(c)]) for c in fitted]
        except (ValueError, TypeError, IndexError) as exc:
            raise PlanUnsupported(f"{name} classes {fitted} are not label codes") from exc
    else:
        labels = [str(c) for c in fitted]
    if sorted(labels) != sorted(shape.classes) or len(set(labels)) != len(fitted):
        raise PlanUnsupported(f"{name} predicts {labels}, the card lists {list(shape.classes)}")
    return tuple(labels.index(c) for c in shape.classes)


def _imputer(imp: Any, include: list[str], kinds: dict[str, str], where: str) -> Step:
    missing_values = imp.missing_values
    if not (isinstance(missing_values, float) and math.isnan(missing_values)):
        raise PlanUnsupported(f"{where}: missing_values={missing_values!r}, not NaN")
    if imp.add_indicator or imp.strategy not in ("mean", "median", "most_frequent", "constant"):
        raise PlanUnsupported(f"{where}: strategy {imp.strategy!r}/add_indicator not supported")
    if list(getattr(imp, "feature_names_in_", [])) != include:
        raise PlanUnsupported(f"{where}: fitted on other columns than it is given")
    stats = list(imp.statistics_)
    col_kinds = {kinds[c] for c in include}
    if col_kinds == {"number"} and imp._fit_dtype.kind in "fiu":
        fills = [float(s) for s in stats]
        if not all(math.isfinite(f) for f in fills):
            raise PlanUnsupported(f"{where}: a column had no value to impute from")
        return ImputeNumbers(tuple(include), tuple(fills))
    if col_kinds == {"category"} and imp._fit_dtype.kind == "O":
        if not all(type(s) is str for s in stats):
            raise PlanUnsupported(f"{where}: an imputed category is not text ({stats!r})")
        return ImputeCategories(tuple(include), tuple(stats))
    raise PlanUnsupported(
        f"{where}: columns of kinds {sorted(col_kinds)}, fitted as {imp._fit_dtype}"
    )


def _renames(step: Any, include: list[str], kinds: dict[str, str], where: str) -> Rename:
    if sorted(include) != sorted(kinds):
        raise PlanUnsupported(f"{where}: applies to some columns only")
    names = [(c, re.sub(step.match, "", str(c))) for c in kinds]
    if len({new for _, new in names}) != len(names):
        raise PlanUnsupported(f"{where}: cleaning makes two column names equal")
    return Rename(tuple((old, new) for old, new in names if old != new))


def _encoder_kind(enc: Any) -> str | None:
    from category_encoders import OneHotEncoder, OrdinalEncoder, TargetEncoder

    for cls in (OrdinalEncoder, OneHotEncoder, TargetEncoder):
        if type(enc) is cls:
            return cls.__name__
    return None


def _encoders(enc: Any, include: list[str], kinds: dict[str, str], where: str) -> list[Encode]:
    """One table per encoded column, derived from the fitted mapping with the library's rules,
    then checked against the encoder's own transform of every category, an unseen value and
    a missing one (with and without NaN in the frame, the two dtype paths it takes)."""
    import pandas as pd

    kind = _encoder_kind(enc)
    if enc.drop_invariant or not enc.return_df or getattr(enc, "invariant_cols", []):
        raise PlanUnsupported(f"{where}: drop_invariant/return_df options not supported")
    cols = list(enc.cols)
    if getattr(enc, "_dim", None) != len(include) or not set(cols) <= set(include):
        raise PlanUnsupported(f"{where}: fitted on other columns than it is given")
    text = [c for c in cols if kinds[c] != "category"]
    if text:
        raise PlanUnsupported(f"{where}: encodes non-category columns {text}")
    if kind == "OrdinalEncoder":
        maps = _ordinal_maps(enc, cols, where)
        derived = {c: _table_of(maps[c], lambda code: [code]) for c in cols}
        outputs = {c: [c] for c in cols}
    elif kind == "OneHotEncoder":
        if enc.handle_unknown not in ("value", "return_nan", "indicator"):
            raise PlanUnsupported(f"{where}: handle_unknown={enc.handle_unknown!r}")
        if enc.handle_missing not in ("value", "return_nan", "indicator", "ignore"):
            raise PlanUnsupported(f"{where}: handle_missing={enc.handle_missing!r}")
        maps = _ordinal_maps(enc.ordinal_encoder, cols, where)
        dummies = {m["col"]: m["mapping"] for m in enc.mapping}
        if sorted(dummies) != sorted(cols):
            raise PlanUnsupported(f"{where}: a column has no one-hot mapping")
        outputs = {c: [str(o) for o in dummies[c].columns] for c in cols}
        derived = {c: _table_of(maps[c], _dummy_row(dummies[c])) for c in cols}
    else:  # TargetEncoder
        if enc.hierarchy is not None:
            raise PlanUnsupported(f"{where}: hierarchical target encoding is not supported")
        if enc.handle_unknown not in ("value", "return_nan"):
            raise PlanUnsupported(f"{where}: handle_unknown={enc.handle_unknown!r}")
        if enc.handle_missing not in ("value", "return_nan"):
            raise PlanUnsupported(f"{where}: handle_missing={enc.handle_missing!r}")
        maps = _ordinal_maps(enc.ordinal_encoder, cols, where)
        outputs = {c: [c] for c in cols}
        derived = {c: _table_of(maps[c], _series_lookup(enc.mapping[c])) for c in cols}
    tables = [
        Encode(
            column=c,
            outputs=tuple(outputs[c]),
            categories=tuple(maps[c].categories),
            table=tuple(tuple(r) for r in derived[c][:-2]),
            unseen=tuple(derived[c][-2]),
            missing=tuple(derived[c][-1]),
            encoder=f"category_encoders.{kind}",
        )
        for c in cols
    ]
    # The library's own answer for the same probes must be the derived table, bit for bit.
    for with_missing in (False, True):
        probe_cols: dict[str, list[Any]] = {}
        for c in include:
            if c in maps:
                probe = [*maps[c].categories, _UNSEEN] + ([np.nan] if with_missing else [])
            else:
                probe = []
            probe_cols[c] = probe
        length = max(len(p) for p in probe_cols.values())
        frame = pd.DataFrame(
            {
                c: pd.Series(
                    (p + [p[0]] * (length - len(p))) if p else [0.0] * length, dtype=object
                )
                for c, p in probe_cols.items()
            }
        )
        got = enc.transform(frame)
        for t in tables:
            k = len(t.categories) + 1 + int(with_missing)
            want = np.array([*t.table, t.unseen] + ([t.missing] if with_missing else []))
            try:
                have = got[list(t.outputs)].to_numpy(dtype=np.float64)[:k]
            except (KeyError, TypeError, ValueError) as exc:
                raise PlanUnsupported(f"{where}: unexpected output ({exc})") from exc
            if have.shape != want.shape or not np.array_equal(have, want, equal_nan=True):
                raise PlanUnsupported(f"{where}: the library's output differs from the table")
    return tables


@dataclass
class _OrdinalMap:
    """A fitted category_encoders OrdinalEncoder's code for each value of one column."""

    categories: list[str]
    known: list[float]
    unseen: float
    missing: float


def _ordinal_maps(enc: Any, cols: list[str], where: str) -> dict[str, _OrdinalMap]:
    """OrdinalEncoder.ordinal_encoding with a mapping: ``map`` (NaN matches a NaN key), unknown
    → NaN → -1 (handle_unknown='value'), then -2 → NaN when handle_missing='return_nan'."""
    from category_encoders import OrdinalEncoder

    if type(enc) is not OrdinalEncoder:
        raise PlanUnsupported(f"{where}: inner encoder is a {type(enc).__name__}")
    if enc.handle_unknown != "value" or enc.handle_missing not in ("value", "return_nan"):
        raise PlanUnsupported(
            f"{where}: handle_unknown={enc.handle_unknown!r}, handle_missing={enc.handle_missing!r}"
        )
    if enc.drop_invariant or getattr(enc, "invariant_cols", []):
        raise PlanUnsupported(f"{where}: drop_invariant is not supported")
    out: dict[str, _OrdinalMap] = {}
    for switch in enc.mapping:
        col = switch.get("col")
        series = switch["mapping"]
        if not series.index.is_unique:
            raise PlanUnsupported(f"{where}: '{col}' maps a category twice")
        cats: list[str] = []
        codes: list[float] = []
        nan_code: float | None = None
        for key, code in series.items():
            value = float(code)
            if not (math.isfinite(value) and value == int(value)):
                raise PlanUnsupported(f"{where}: '{col}' has a non-integer code {code!r}")
            if isinstance(key, float) and math.isnan(key):
                nan_code = value
            elif type(key) is str:
                cats.append(key)
                codes.append(value)
            else:
                raise PlanUnsupported(f"{where}: '{col}' has a category that is not text: {key!r}")

        def post(code: float) -> float:
            return math.nan if enc.handle_missing == "return_nan" and code == -2 else code

        out[col] = _OrdinalMap(
            categories=cats,
            known=[post(c) for c in codes],
            unseen=post(-1.0),
            missing=post(nan_code if nan_code is not None else -1.0),
        )
    if sorted(out) != sorted(cols):
        raise PlanUnsupported(f"{where}: the mapping does not cover its columns")
    return out


def _table_of(m: _OrdinalMap, row: Any) -> list[list[float]]:
    """Rows for every category, then unseen, then missing."""
    return [[float(v) for v in row(code)] for code in [*m.known, m.unseen, m.missing]]


def _dummy_row(mod: Any) -> Any:
    """OneHotEncoder.get_dummies: ``mod.reindex(code.fillna(-2))`` — absent codes give NaN."""
    index = [float(i) for i in mod.index]
    if len(set(index)) != len(index):
        raise PlanUnsupported("one-hot mapping repeats a code")
    rows = {i: [float(v) for v in mod.iloc[k].tolist()] for k, i in enumerate(index)}
    width = mod.shape[1]

    def row(code: float) -> list[float]:
        code = -2.0 if math.isnan(code) else code
        return rows.get(code, [math.nan] * width)

    return row


def _series_lookup(series: Any) -> Any:
    """TargetEncoder.target_encode: ``X[col].map(mapping)`` — absent codes give NaN."""
    values = {float(i): float(v) for i, v in series.items()}
    if len(values) != len(series):
        raise PlanUnsupported("target encoding repeats a code")

    def row(code: float) -> list[float]:
        return [values.get(code, math.nan)]

    return row


def _head(est: Any, shape: ModelShape, label_classes: list[Any] | None, width: int) -> Head:
    from sklearn import linear_model

    name = type(est).__name__
    if shape.task == "regression":
        if name not in _REGRESSORS or type(est) is not getattr(linear_model, name):
            raise PlanUnsupported(f"the estimator {name} is not a linear regressor a plan knows")
        coef = np.asarray(est.coef_, dtype=np.float64)
        intercept = np.asarray(est.intercept_, dtype=np.float64)
        if coef.shape != (width,) or intercept.shape != ():
            raise PlanUnsupported(f"{name} has coef_ {coef.shape}, intercept_ {intercept.shape}")
        if not (np.isfinite(coef).all() and np.isfinite(intercept)):
            raise PlanUnsupported(f"{name} has non-finite coefficients")
        return LinearHead(name, tuple(coef.tolist()), float(intercept))
    if type(est) is not linear_model.LogisticRegression:
        raise PlanUnsupported(f"the estimator {name} is not a LogisticRegression")
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.asarray(est.intercept_, dtype=np.float64)
    fitted = list(est.classes_)
    k = len(fitted)
    if coef.shape != ((1 if k == 2 else k), width) or intercept.shape != (coef.shape[0],):
        raise PlanUnsupported(f"{name} has coef_ {coef.shape}, intercept_ {intercept.shape}")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise PlanUnsupported(f"{name} has non-finite coefficients")
    # sklearn 1.4.2 LogisticRegression.predict_proba
    ovr = est.multi_class in ("ovr", "warn") or (
        est.multi_class == "auto" and (k <= 2 or est.solver in ("liblinear", "newton-cholesky"))
    )
    if est.multi_class not in ("ovr", "warn", "auto", "multinomial"):
        raise PlanUnsupported(f"{name} has multi_class={est.multi_class!r}")
    order = _class_order(est, shape, label_classes)
    return LogisticHead(
        estimator=name,
        coef=tuple(tuple(r) for r in coef.tolist()),
        intercept=tuple(intercept.tolist()),
        proba="ovr" if ovr else "softmax",
        order=order,
    )


# --- verification ------------------------------------------------------------------------------
def verify(plan: Plan, pipeline: Any, frame: Any) -> dict[str, Any]:
    """Plan vs pipeline on a frame typed as ``scorer.predict.model_input`` makes it. Returns
    rows and the largest absolute/relative differences; PlanUnsupported when over TOLERANCE
    or when a predicted label differs."""
    columns = {name: frame[name].to_numpy() for name in plan.input_names}
    try:
        values, _score, proba = plan.predict(columns)
    except ValueError as exc:
        raise PlanUnsupported(f"the plan could not score the check rows: {exc}") from exc
    try:
        if plan.task == "regression":
            got, want = values, np.asarray(pipeline.predict(frame), dtype=np.float64)
        else:
            assert proba is not None
            assert isinstance(plan.head, LogisticHead | EstimatorHead)
            ref = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
            want = ref[:, list(plan.head.order)]
            got = proba
    except Exception as exc:  # the pipeline's own failure: nothing to compare against
        raise PlanUnsupported(f"the pipeline could not score the check rows: {exc}") from exc
    if got.shape != want.shape:
        raise PlanUnsupported(f"the plan gives shape {got.shape}, the pipeline {want.shape}")
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    if not np.array_equal(nan_got, nan_want):
        raise PlanUnsupported("the plan and the pipeline disagree on which predictions are NaN")
    both = ~nan_got
    a, b = got[both], want[both]
    same = a == b  # equal infinities too
    diff = np.where(same, 0.0, np.abs(a - b))
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(same, 0.0, diff / np.where(scale > 0, scale, 1.0))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    if not (max_rel <= TOLERANCE):
        raise PlanUnsupported(
            f"the plan differs from the pipeline by {max_rel:.3g} (relative) on the check rows"
        )
    if plan.task == "classification":
        labels = np.asarray(plan.classes, dtype=object)[want.argmax(axis=1)]
        if not np.array_equal(values, labels):
            raise PlanUnsupported("the plan predicts a different label on some check rows")
    return {"rows": len(frame), "max_abs_diff": max_abs, "max_rel_diff": max_rel}
