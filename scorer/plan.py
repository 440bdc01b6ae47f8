"""Scoring plans: a PyCaret pipeline's fitted preprocessing as JSON — the file format.

Unpickling a PyCaret pipeline imports PyCaret (seconds) and its pandas transformers are slow; a
plan holds the same numbers (imputation fills, encoder tables, coefficients) and
``scorer.evaluator.Evaluator`` repeats the floating-point operations scikit-learn performs, in
the same order and memory layout, so its predictions match the pipeline's (bit for bit in
practice). ``training.compile`` makes a plan from a fitted pipeline, refusing with
``PlanUnsupported`` anything it cannot reproduce exactly, and ``training.verify`` checks it
against its pipeline before it is published.

The head is either linear (its coefficients in the JSON, format 1) or, for any other estimator
(trees, boosting …), the fitted estimator object itself (format 2): pickled on its own as
``estimator.pkl``, loaded with its own library only (never PyCaret) and called with the design
matrix as the DataFrame the pipeline hands it.

A ``Plan`` is a plain value, checked for consistency when it is made (``PlanInvalid``); this
module needs only the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scorer.card import ModelCard
from scorer.errors import PlanInvalid

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


@dataclass(frozen=True, slots=True)
class Plan:
    task: Literal["regression", "classification"]
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    design: tuple[str, ...]  # the estimator's columns, in the order it was fitted on
    head: Head
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _origins(self)  # refuses an inconsistent plan before anything scores with it

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def format(self) -> int:
        return FORMAT_ESTIMATOR if isinstance(self.head, EstimatorHead) else FORMAT

    @property
    def origins(self) -> tuple[str, ...]:
        """For each ``design`` column, the input column it is computed from."""
        return _origins(self)

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


def class_path(obj: Any) -> str:
    """The name an ``EstimatorHead`` gives the class of its estimator."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# --- consistency -------------------------------------------------------------------------------
def _origins(plan: Plan) -> tuple[str, ...]:
    """Check that the steps, design and head fit together (PlanInvalid names what does not);
    returns, for each design column, the input it is computed from."""
    kinds: dict[str, str] = {}
    origin: dict[str, str] = {}  # column → the input it is computed from
    for inp in plan.inputs:
        if inp.name in kinds:
            raise PlanInvalid(f"plan: input '{inp.name}' is listed twice")
        kinds[inp.name] = inp.kind
        origin[inp.name] = inp.name
    for step in plan.steps:
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
    head = plan.head
    n = len(plan.design)
    k = len(plan.classes)
    if isinstance(head, EstimatorHead):
        if (
            head.file != ESTIMATOR_FILE
            or not re.fullmatch(r"[0-9a-f]{64}", head.sha256)
            or (plan.task == "regression" and (head.order or plan.classes))
            or (plan.task == "classification" and sorted(head.order) != list(range(k)))
            or (plan.task == "classification" and k < 2)
        ):
            raise PlanInvalid("plan: the estimator head does not fit the plan")
    elif isinstance(head, LinearHead):
        if plan.task != "regression" or len(head.coef) != n:
            raise PlanInvalid("plan: the linear head does not fit the design matrix")
    else:
        n_rows = len(head.coef)
        if (
            plan.task != "classification"
            or any(len(r) != n for r in head.coef)
            or len(head.intercept) != n_rows
            or sorted(head.order) != list(range(k))
            or n_rows != (1 if k == 2 else k)
        ):
            raise PlanInvalid("plan: the logistic head does not fit the design matrix")
    return tuple(origin[d] for d in plan.design)
