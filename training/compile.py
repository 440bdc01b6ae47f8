"""Compile a fitted PyCaret pipeline into a scoring plan (``scorer.plan``).

Reads the fitted steps through PyCaret's and scikit-learn's own attributes (imports inside the
functions: scoring never needs them) and refuses with ``PlanUnsupported`` anything a plan cannot
reproduce exactly; ``training.encoders`` turns the imputers and category encoders into steps.
A linear estimator's coefficients go into the JSON; any other estimator is the plan's head
itself, pickled on its own beside plan.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from scorer.card import ModelCard
from scorer.errors import PlanUnsupported
from scorer.plan import (
    ESTIMATOR_FILE,
    EstimatorHead,
    Head,
    LinearHead,
    LogisticHead,
    ModelShape,
    Plan,
    Step,
    class_path,
)
from training.encoders import UNSEEN, encoder_kind, encoders, imputer, renames

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
            steps.append(imputer(inner, include, kinds, where))
        elif type(inner) is CleanColumnNames:
            rename = renames(inner, include, kinds, where)
            if rename.names:
                steps.append(rename)
            kinds = {dict(rename.names).get(k, k): v for k, v in kinds.items()}
        elif encoder_kind(inner) is not None:
            for enc in encoders(inner, include, kinds, where):
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
                else np.array([UNSEEN, UNSEEN, np.nan], dtype=object)
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
    head = EstimatorHead(class_path(est), ESTIMATOR_FILE, hashlib.sha256(blob).hexdigest(), order)
    plan = Plan(shape.task, shape.inputs, steps, tuple(columns), head, shape.classes)
    return Compiled(plan, {ESTIMATOR_FILE: blob})


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
