"""Compiling a fitted PyCaret pipeline into a scoring plan (``training.compile``) and checking
it against the pipeline before it is published (``training.verify``): deterministic, exact JSON;
refusals of what a plan cannot reproduce; the check rows and what a training run exports."""

from __future__ import annotations

import copy
import dataclasses
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scorer.errors import PlanUnsupported
from scorer.evaluator import Evaluator
from scorer.model import LoadedModel
from scorer.plan import EstimatorHead, LinearHead, Plan
from scorer.predict import model_input
from scorer.registry import Registry
from training.compile import compile_pipeline
from training.sample_data import generate
from training.verify import PLAN_EDGE_ROWS, export_plan, plan_check_frame, verify


@pytest.fixture(scope="session")
def claims_model(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("claims"))


@pytest.fixture(scope="session")
def income_model(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("income"))


@pytest.mark.parametrize("name", ["claims", "income"])
def test_json_round_trips_exactly_and_compiling_is_deterministic(
    name: str, request: pytest.FixtureRequest
) -> None:
    model: LoadedModel = request.getfixturevalue(f"{name}_model")
    plan = compile_pipeline(model.pipeline, model.card)
    blob = plan.to_json()
    assert compile_pipeline(model.pipeline, model.card).to_json() == blob
    again = Plan.from_json(blob)
    assert again.to_json() == blob
    assert again.head == plan.head
    coef = np.asarray(model.pipeline.steps[-1][1].coef_, dtype=float).reshape(-1)
    head_coef = np.asarray(again.head.coef, dtype=float).reshape(-1)
    assert head_coef.tobytes() == coef.tobytes()  # every bit of every coefficient


def test_verify_catches_a_plan_that_is_off_by_a_millionth(claims_model: LoadedModel) -> None:
    plan = compile_pipeline(claims_model.pipeline, claims_model.card)
    assert isinstance(plan.head, LinearHead)
    nudged = dataclasses.replace(plan.head, intercept=plan.head.intercept * (1 + 1e-6))
    off = dataclasses.replace(plan, head=nudged)
    frame = model_input(claims_model, pd.DataFrame({"age": [30.0, 60.0]}))
    with pytest.raises(PlanUnsupported, match="differs from the pipeline"):
        verify(Evaluator(off), claims_model.pipeline, frame)
    assert verify(Evaluator(plan), claims_model.pipeline, frame)["max_rel_diff"] == 0.0


def _step(pipeline: Any, name: str) -> Any:
    return dict(pipeline.steps)[name].transformer


def _unseen_raises(p: Any) -> None:
    _step(p, "onehot_encoding").handle_unknown = "error"


def _indicator(p: Any) -> None:
    _step(p, "numerical_imputer").add_indicator = True


def _scaler(p: Any) -> None:
    from pycaret.internal.preprocess.transformers import TransformerWrapper
    from sklearn.preprocessing import StandardScaler

    p.steps.insert(-1, ("normalize", TransformerWrapper(StandardScaler(), include=["age"])))


def _tree(p: Any) -> None:
    from sklearn.tree import DecisionTreeRegressor

    est = p.steps[-1][1]
    x = pd.DataFrame(np.zeros((2, len(est.feature_names_in_))), columns=est.feature_names_in_)
    tree = DecisionTreeRegressor().fit(x, [0.0, 1.0])
    p.steps[-1] = ("actual_estimator", tree)


def _pycaret_estimator(p: Any) -> None:
    from pycaret.internal.tunable import TunableMLPRegressor

    _tree(p)
    p.steps[-1] = ("actual_estimator", TunableMLPRegressor())


def _holds_pycaret(p: Any) -> None:
    from pycaret.internal.preprocess.transformers import CleanColumnNames

    _tree(p)
    p.steps[-1][1].cleaner_ = CleanColumnNames()  # unpickling the tree would import PyCaret


def _not_a_regressor(p: Any) -> None:
    from sklearn.preprocessing import StandardScaler

    names = p.steps[-1][1].feature_names_in_
    x = pd.DataFrame(np.zeros((2, len(names))), columns=names)
    p.steps[-1] = ("actual_estimator", StandardScaler().fit(x))


def _other_columns(p: Any) -> None:
    from sklearn.tree import DecisionTreeRegressor

    names = list(p.steps[-1][1].feature_names_in_)[::-1]
    x = pd.DataFrame(np.zeros((2, len(names))), columns=names)
    p.steps[-1] = ("actual_estimator", DecisionTreeRegressor().fit(x, [0.0, 1.0]))


def _target_transform(p: Any) -> None:
    from pycaret.internal.preprocess.transformers import TransformerWrapperWithInverse
    from sklearn.preprocessing import LabelEncoder

    p.steps.insert(0, ("target_transformation", TransformerWrapperWithInverse(LabelEncoder())))


REFUSED = [
    ("one-hot raising on unseen values", _unseen_raises, "handle_unknown='error'"),
    ("imputer adding indicator columns", _indicator, "add_indicator"),
    ("a scaler step", _scaler, "StandardScaler"),
    ("an estimator of PyCaret's own", _pycaret_estimator, "is a class of pycaret"),
    ("an estimator whose pickle needs PyCaret", _holds_pycaret, "without pycaret"),
    ("an estimator that is not a regressor", _not_a_regressor, "not a regressor with predict"),
    ("an estimator fitted on other columns", _other_columns, "was fitted on the columns"),
    ("a transformed regression target", _target_transform, "label encoding"),
]


@pytest.mark.parametrize(
    ("change", "match"), [(c, m) for _, c, m in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_compile_refuses_what_it_cannot_reproduce(
    claims_model: LoadedModel, change: Any, match: str
) -> None:
    pipeline = copy.deepcopy(claims_model.pipeline)
    change(pipeline)
    with pytest.raises(PlanUnsupported, match=match) as info:
        compile_pipeline(pipeline, claims_model.card)
    assert info.value.code == "PLAN_UNSUPPORTED"


def test_compile_refuses_classes_the_card_does_not_list(income_model: LoadedModel) -> None:
    card = dataclasses.replace(income_model.card, classes=("no", "yes"))
    with pytest.raises(PlanUnsupported, match="the card lists"):
        compile_pipeline(income_model.pipeline, card)


def test_a_tree_swapped_into_a_linear_pipeline_gets_an_estimator_plan(
    claims_model: LoadedModel,
) -> None:
    pipeline = copy.deepcopy(claims_model.pipeline)
    _tree(pipeline)
    plan = compile_pipeline(pipeline, claims_model.card)
    assert isinstance(plan.head, EstimatorHead)
    assert plan.head.estimator == "sklearn.tree._classes.DecisionTreeRegressor"
    frame = model_input(claims_model, pd.DataFrame({"age": [30.0, 60.0, np.nan]}))
    assert verify(Evaluator(plan, pipeline.steps[-1][1]), pipeline, frame)["max_rel_diff"] == 0.0


def test_a_classifier_without_probabilities_is_refused(income_model: LoadedModel) -> None:
    from sklearn.linear_model import RidgeClassifier

    pipeline = copy.deepcopy(income_model.pipeline)
    names = pipeline.steps[-1][1].feature_names_in_
    x = pd.DataFrame(np.zeros((2, len(names))), columns=names)
    pipeline.steps[-1] = ("actual_estimator", RidgeClassifier().fit(x, [0, 1]))
    with pytest.raises(PlanUnsupported, match="RidgeClassifier is not a classifier with predict_"):
        compile_pipeline(pipeline, income_model.card)


def test_a_model_whose_estimator_needs_pycaret_gets_no_plan_and_says_why(
    trained_registry: str,
) -> None:
    """An estimator whose pickle would import PyCaret is refused: no plan, the reason noted."""
    import joblib
    from pycaret.internal.preprocess.transformers import CleanColumnNames
    from sklearn.tree import DecisionTreeRegressor

    reg = Registry(trained_registry)
    card = reg.resolve("claims")
    pipeline = reg.load(card).pipeline
    pipeline = joblib.load(io.BytesIO(_dumped(pipeline)))  # a private copy
    names = pipeline.steps[-1][1].feature_names_in_
    tree = DecisionTreeRegressor().fit(
        pd.DataFrame(np.zeros((2, len(names))), columns=names), [0, 1]
    )
    tree.cleaner_ = CleanColumnNames()
    pipeline.steps[-1] = ("actual_estimator", tree)
    said: list[str] = []
    holdout = generate(20, seed=3).drop(columns=["charges"])
    export = export_plan(_dumped(pipeline), "regression", card.features, (), holdout, said.append)
    reason = (
        "the estimator DecisionTreeRegressor cannot be unpickled without "
        "pycaret.internal.preprocess.transformers (it holds its objects)"
    )
    assert (export.blob, export.card_entry, export.files) == (None, None, {})
    assert export.note == f"not exported: {reason}"
    assert said == [f"no scoring plan (the pipeline will score): {reason}"]


def _dumped(obj: object) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def test_the_plan_check_rows_hold_unseen_missing_and_far_values() -> None:
    from scorer.card import Feature

    features = (
        Feature("n", "number", min=0.0, max=10.0),
        Feature("c", "category", categories=("a", "unseen category")),
    )
    holdout = pd.DataFrame({"n": np.arange(30.0), "c": ["a"] * 30})
    rows = plan_check_frame(features, holdout)
    assert len(rows) == 30 + PLAN_EDGE_ROWS * (2 + 5 + 2)
    assert rows["n"].dtype == np.float64
    assert rows["c"].dtype == object
    assert rows["n"].isna().any()
    assert rows["n"].abs().max() >= 1e15
    assert rows["n"].min() < -10000
    assert "unseen category*" in set(rows["c"])  # never a training category
    assert rows["c"].isna().any()
