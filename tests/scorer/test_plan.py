"""Scoring plans and their evaluator: the conftest models' published plans against their real
PyCaret pipelines on any frame (numbers huge, negative or missing; categories known, unseen or
missing), refusals of unknown or inconsistent plans, a plan as a plain value, one evaluator
serving many threads, and scoring without importing PyCaret (or training). Compiling and
verifying are tested in tests/training/test_compile.py."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer.card import Feature, PlanEstimator
from scorer.errors import PlanInvalid
from scorer.evaluator import Evaluator
from scorer.model import LoadedModel
from scorer.plan import Encode, EstimatorHead, LinearHead, LogisticHead, Plan
from scorer.predict import Predictions, model_input, predict
from scorer.registry import Registry
from training.verify import verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def claims_plan(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("claims"), engine="plan")


@pytest.fixture(scope="session")
def income_plan(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("income"), engine="plan")


def cell(feat: Feature) -> st.SearchStrategy[Any]:
    """One input value as a scorer hands it on: numbers of any size or missing; categories
    known, unseen (any text, the empty string too) or missing."""
    if feat.kind == "number":
        return st.one_of(
            st.floats(allow_nan=True, allow_infinity=False),
            st.floats(min_value=-1e3, max_value=1e3),
            st.sampled_from([feat.min, feat.max, 0.0, -0.0, np.nan]),
        )
    return st.one_of(st.sampled_from(feat.categories), st.text(max_size=6), st.just(np.nan))


@st.composite
def frames(draw: st.DrawFn, features: tuple[Feature, ...]) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    return pd.DataFrame({f.name: draw(st.lists(cell(f), min_size=n, max_size=n)) for f in features})


def assert_same(plan: Predictions, pipe: Predictions) -> None:
    """Same predictions: values (or labels) identical, probabilities within 1e-9 relative."""
    if pipe.proba is None:
        assert plan.values.dtype == np.float64
        assert np.array_equal(plan.values, pipe.values, equal_nan=True)
        return
    assert plan.values.tolist() == pipe.values.tolist()
    assert plan.proba is not None
    assert plan.score is not None
    assert pipe.score is not None
    assert np.allclose(plan.proba, pipe.proba, rtol=1e-9, atol=0)
    assert np.allclose(plan.score, pipe.score, rtol=1e-9, atol=0)


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data())
def test_the_claims_plan_predicts_what_the_pipeline_predicts(
    claims_model: LoadedModel, claims_plan: LoadedModel, data: st.DataObject
) -> None:
    frame = data.draw(frames(claims_model.card.features))
    assert_same(predict(claims_plan, frame), predict(claims_model, frame))


@SETTINGS
@given(data=st.data())
def test_the_income_plan_predicts_what_the_pipeline_predicts(
    income_model: LoadedModel, income_plan: LoadedModel, data: st.DataObject
) -> None:
    frame = data.draw(frames(income_model.card.features))
    assert_same(predict(income_plan, frame), predict(income_model, frame))


def random_frame(
    features: tuple[Feature, ...], seed: int, rows: int = 5000, far_out: float | None = None
) -> pd.DataFrame:
    """Numbers a little beyond the training range, known/unseen/blank categories, 5 % missing
    (and 1 % ``far_out`` numbers when given)."""
    rng = np.random.default_rng(seed)
    cols = {}
    for f in features:
        if f.kind == "number":
            assert f.min is not None
            assert f.max is not None
            values = rng.uniform(f.min - 10, f.max + 10, rows)
            values[rng.random(rows) < 0.05] = np.nan
            if far_out is not None:
                values[rng.random(rows) < 0.01] = far_out
        else:
            values = rng.choice([*f.categories, "unseen", ""], rows).astype(object)
            values[rng.random(rows) < 0.05] = np.nan
        cols[f.name] = values
    return pd.DataFrame(cols)


@pytest.mark.parametrize("name", ["claims", "income"])
def test_a_plan_is_bit_identical_on_thousands_of_rows(
    trained_registry: str, name: str, request: pytest.FixtureRequest
) -> None:
    model: LoadedModel = request.getfixturevalue(f"{name}_model")
    plan: LoadedModel = request.getfixturevalue(f"{name}_plan")
    frame = random_frame(model.card.features, seed=3)
    got, want = predict(plan, frame), predict(model, frame)
    assert np.array_equal(got.values, want.values)
    if want.proba is not None:
        assert np.array_equal(got.proba, want.proba)
    assert plan.evaluator is not None
    checked = verify(plan.evaluator, model.pipeline, model_input(model, frame))
    assert checked == {"rows": 5000, "max_abs_diff": 0.0, "max_rel_diff": 0.0}


def test_the_card_records_what_was_verified(claims_plan: LoadedModel) -> None:
    info = claims_plan.card.plan
    assert info is not None
    assert info.format == 1
    assert info.verified is not None
    assert info.verified.rows > (claims_plan.card.training_data.holdout_rows or 0)
    assert info.verified.max_rel_diff <= 1e-9
    assert (claims_plan.card.notes.plan or "").startswith("exported")
    assert claims_plan.pipeline is None


def test_the_plans_hold_the_steps_pycaret_fitted(
    claims_plan: LoadedModel, income_plan: LoadedModel
) -> None:
    claims = claims_plan.plan
    income = income_plan.plan
    assert claims is not None
    assert income is not None
    kinds = [type(s).__name__ for s in claims.steps]
    assert kinds == ["ImputeNumbers", "ImputeCategories", "Encode", "Encode", "Encode"]
    encoders = {s.column: s.encoder for s in claims.steps if isinstance(s, Encode)}
    assert encoders == {
        "sex": "category_encoders.OrdinalEncoder",
        "smoker": "category_encoders.OrdinalEncoder",
        "region": "category_encoders.OneHotEncoder",
    }
    assert isinstance(claims.head, LinearHead)
    assert claims.head.estimator == "LinearRegression"
    assert isinstance(income.head, LogisticHead)
    assert income.head.proba == "ovr"
    assert income.classes == ("<=50K", ">50K")


def test_a_plan_of_an_unknown_format_is_refused_clearly(claims_plan: LoadedModel) -> None:
    assert claims_plan.plan is not None
    raw = json.loads(claims_plan.plan.to_json())
    raw["format"] = 3
    with pytest.raises(PlanInvalid, match="format 3 but this scorer reads formats 1 and 2"):
        Plan.from_json(json.dumps(raw))
    with pytest.raises(PlanInvalid, match="not JSON"):
        Plan.from_json(b"\x00not json")
    del raw["format"]
    with pytest.raises(PlanInvalid, match="no 'format'"):
        Plan.from_json(json.dumps(raw))


def test_an_inconsistent_plan_is_refused_before_it_scores(claims_plan: LoadedModel) -> None:
    assert claims_plan.plan is not None
    raw = json.loads(claims_plan.plan.to_json())
    raw["head"]["coef"] = raw["head"]["coef"][:-1]
    with pytest.raises(PlanInvalid, match="does not fit the design matrix"):
        Plan.from_json(json.dumps(raw))
    raw = json.loads(claims_plan.plan.to_json())
    encode = next(s for s in raw["steps"] if s["op"] == "encode")
    encode["table"] = encode["table"][:-1]
    with pytest.raises(PlanInvalid, match="wrong shape"):
        Plan.from_json(json.dumps(raw))


def test_a_plan_refuses_inputs_the_pipeline_would_refuse(claims_plan: LoadedModel) -> None:
    plan = claims_plan.evaluator
    assert plan is not None
    good = {
        f.name: np.array([1.0]) if f.kind == "number" else np.array(["x"], dtype=object)
        for f in claims_plan.card.features
    }
    with pytest.raises(ValueError, match="infinity"):
        plan.predict({**good, "age": np.array([np.inf])})
    with pytest.raises(ValueError, match="must be text or NaN"):
        plan.predict({**good, "region": np.array([3], dtype=object)})
    with pytest.raises(ValueError, match="missing"):
        plan.predict({k: v for k, v in good.items() if k != "age"})


def test_scoring_with_a_plan_never_imports_pycaret(trained_registry: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from scorer.predict import predict
        from scorer.registry import Registry
        reg = Registry({trained_registry!r})
        for name, engine in (("claims", "plan"), ("income", "auto")):
            model = reg.load(reg.resolve(name), engine=engine)
            assert model.pipeline is None and model.plan is not None
            frame = pd.DataFrame({{f.name: [f.typical] * 3 for f in model.card.features}})
            print(name, len(predict(model, frame).values))
        print("pycaret imported:", "pycaret" in sys.modules)
        print("training imported:", any(m.split(".")[0] == "training" for m in sys.modules))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "claims 3", "income 3", "pycaret imported: False", "training imported: False",
    ]  # fmt: skip


def test_a_plan_is_a_plain_value(claims_plan: LoadedModel, income_plan: LoadedModel) -> None:
    """Nothing but its fields (compared by their JSON: a table may hold NaN, never equal to
    itself), so a plan is interchangeable with its copies whoever evaluates them."""
    for loaded in (claims_plan, income_plan):
        plan = loaded.plan
        assert plan is not None
        again = Plan.from_json(plan.to_json())
        assert not hasattr(again, "__dict__")  # no runtime tucked inside
        assert again.__slots__ == tuple(f.name for f in dataclasses.fields(Plan))
        assert pickle.loads(pickle.dumps(again)).to_json() == again.to_json() == plan.to_json()


def test_one_evaluator_serves_many_threads_at_once(
    claims_plan: LoadedModel, income_plan: LoadedModel
) -> None:
    """Eight threads predicting different frames with the model's one evaluator get what each
    frame gets alone; nothing an evaluator computes with can be written to."""
    for loaded in (claims_plan, income_plan):
        evaluator = loaded.evaluator
        assert evaluator is not None
        frames = [random_frame(loaded.card.features, seed=s, rows=2000) for s in range(8)]
        alone = [predict(loaded, f) for f in frames]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(predict, [loaded] * 24, frames * 3))
        for got, want in zip(together, alone * 3, strict=True):
            assert np.array_equal(got.values, want.values)
            if want.proba is not None:
                assert np.array_equal(got.proba, want.proba)
        arrays = [evaluator.coef, evaluator.classes, evaluator.order]
        arrays += [enc[1] for enc in evaluator.encoders if enc is not None]
        assert not any(a.flags.writeable for a in arrays)
    with pytest.raises(PlanInvalid, match="only an estimator head takes an estimator"):
        Evaluator(claims_plan.plan, estimator=object())  # type: ignore[arg-type]


# --- plans whose head is the fitted estimator (trees, boosting) ---------------------------------
NONLINEAR = ["boost", "gbr", "boosted-income"]


@pytest.fixture(scope="session")
def nonlinear(nonlinear_registry: str) -> dict[str, tuple[LoadedModel, LoadedModel]]:
    """name → (pipeline, plan) for the conftest's non-linear models."""
    reg = Registry(nonlinear_registry)
    out = {}
    for name in NONLINEAR:
        card = reg.resolve(name)
        out[name] = (reg.load(card, engine="pipeline"), reg.load(card, engine="plan"))
    return out


@pytest.mark.parametrize("name", NONLINEAR)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_an_estimator_plan_predicts_what_the_pipeline_predicts(
    nonlinear: dict[str, tuple[LoadedModel, LoadedModel]], name: str, data: st.DataObject
) -> None:
    model, plan = nonlinear[name]
    frame = data.draw(frames(model.card.features))
    try:
        want = predict(model, frame)
    except ValueError as exc:  # e.g. a number beyond float32, which sklearn's trees refuse
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            predict(plan, frame)
        return
    got = predict(plan, frame)
    assert np.array_equal(got.values, want.values)
    if want.proba is not None:
        assert np.array_equal(got.proba, want.proba)  # bit for bit, not within 1e-9


@pytest.mark.parametrize("name", NONLINEAR)
def test_an_estimator_plan_is_bit_identical_on_thousands_of_rows(
    nonlinear: dict[str, tuple[LoadedModel, LoadedModel]], name: str
) -> None:
    model, plan = nonlinear[name]
    # 1e30: far out, still a float32 for the trees
    frame = random_frame(model.card.features, seed=8, far_out=1e30)
    got, want = predict(plan, frame), predict(model, frame)
    assert got.values.tolist() == want.values.tolist()
    if want.proba is not None:
        assert np.array_equal(got.proba, want.proba)


def test_an_estimator_plan_names_its_estimator_and_keeps_numpy_preprocessing(
    nonlinear: dict[str, tuple[LoadedModel, LoadedModel]],
) -> None:
    expected = {
        "boost": "lightgbm.sklearn.LGBMRegressor",
        "gbr": "sklearn.ensemble._gb.GradientBoostingRegressor",
        "boosted-income": "lightgbm.sklearn.LGBMClassifier",
    }
    for name, (model, loaded) in nonlinear.items():
        plan, card = loaded.plan, loaded.card
        assert plan is not None
        assert loaded.pipeline is None
        assert isinstance(plan.head, EstimatorHead)
        assert plan.head.estimator == expected[name]
        assert card.plan is not None
        assert card.plan.format == 2
        want = PlanEstimator(expected[name], "estimator.pkl", plan.head.sha256)
        assert card.plan.estimator == want
        assert card.plan.verified is not None
        assert card.plan.verified.max_rel_diff == 0.0
        short = expected[name].rsplit(".", 1)[-1]
        assert (card.notes.plan or "").startswith(f"exported (numpy preprocessing + {short}), ver")
        assert {type(s).__name__ for s in plan.steps} >= {"ImputeNumbers", "Encode"}
        # the design matrix's columns are the estimator's, in its order
        fitted = [str(c) for c in model.pipeline.steps[-1][1].feature_names_in_]
        assert [c.replace(" ", "_") for c in plan.design] == fitted
        assert Plan.from_json(plan.to_json()).to_json() == plan.to_json()


def test_an_unbound_estimator_plan_refuses_to_score(
    nonlinear: dict[str, tuple[LoadedModel, LoadedModel]],
) -> None:
    model, loaded = nonlinear["boost"]
    assert loaded.plan is not None
    # the loaded model's own plan value: evaluating it elsewhere leaves the model's alone
    bare = Evaluator(loaded.plan)
    frame = model_input(model, pd.DataFrame({f.name: [f.typical] for f in model.card.features}))
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    with pytest.raises(PlanInvalid, match=r"estimator \(estimator\.pkl\) was not loaded"):
        bare.predict(columns)
    assert loaded.evaluator is not None
    assert len(loaded.evaluator.predict(columns)[0]) == 1
    gbr = nonlinear["gbr"][0].pipeline.steps[-1][1]
    with pytest.raises(
        PlanInvalid, match=r"holds a sklearn\.ensemble\._gb\.GradientBoostingRegressor"
    ):
        Evaluator(loaded.plan, gbr)
    raw = json.loads(loaded.plan.to_json())
    raw["format"] = 1  # an old scorer's format cannot carry an estimator head
    with pytest.raises(PlanInvalid, match="its head is format 2"):
        Plan.from_json(json.dumps(raw))


def test_scoring_with_an_estimator_plan_never_imports_pycaret(nonlinear_registry: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import pandas as pd
        from scorer.predict import predict
        from scorer.registry import Registry
        reg = Registry({nonlinear_registry!r})
        for name in {NONLINEAR!r}:
            model = reg.load(reg.resolve(name), engine="auto")
            assert model.pipeline is None and model.plan is not None
            frame = pd.DataFrame({{f.name: [f.typical] * 3 for f in model.card.features}})
            print(name, len(predict(model, frame).values))
        print("pycaret imported:", "pycaret" in sys.modules, "lightgbm:", "lightgbm" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "boost 3", "gbr 3", "boosted-income 3", "pycaret imported: False lightgbm: True",
    ]  # fmt: skip
