"""Exact explanations: base value + contributions = the prediction, for linear plans and
LightGBM models trained for real; other models fall back to the labelled approximation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from scorer import explain
from scorer.model import LoadedModel
from scorer.predict import predict
from scorer.registry import Registry
from tests.conftest import make_classification_frame
from training.sample_data import TARGET, generate


def load(registry: str, name: str, engine: str = "plan") -> LoadedModel:
    reg = Registry(registry)
    return reg.load(reg.resolve(name), engine=engine)


def rows_for(model: LoadedModel) -> list[dict[str, Any]]:
    if model.card.task == "regression":
        frame = generate(6, seed=21).drop(columns=[TARGET])
    else:
        frame = make_classification_frame(6, seed=22).drop(columns=["income >50K"])
    records = frame.to_dict("records")
    rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records]
    # a missing value where the card allows one is explained too
    nullable = next((f.name for f in model.card.features if f.nullable), None)
    if nullable is not None:
        rows.append({**rows[0], nullable: None})
    return rows


def check_adds_up(model: LoadedModel, row: dict[str, Any], why: explain.Explanation) -> None:
    assert why.base is not None
    total = why.base + sum(c.effect for c in why.contributions)
    assert total == pytest.approx(why.prediction, rel=1e-6, abs=1e-9)
    assert {c.feature for c in why.contributions} == set(model.card.feature_names)
    preds = predict(model, pd.DataFrame([explain.canonical_row(model.card, row)]))
    if model.card.task == "regression":  # the explained number is the number the user sees
        assert why.prediction == pytest.approx(float(preds.values[0]), rel=1e-9)
    else:
        assert preds.score is not None
        p = float(preds.score[0])
        assert why.target == f"log-odds of P({preds.values[0]})"
        assert why.prediction == pytest.approx(np.log(p / (1 - p)), rel=1e-9)


@pytest.mark.parametrize(
    ("fixture", "name", "method"),
    [
        ("trained_registry", "claims", explain.EXACT_LINEAR),
        ("trained_registry", "income", explain.EXACT_LINEAR),
        ("nonlinear_registry", "boost", explain.EXACT_LIGHTGBM),
        ("nonlinear_registry", "boosted-income", explain.EXACT_LIGHTGBM),
    ],
    ids=[
        "linear regression",
        "logistic regression (log-odds)",
        "LightGBM regressor (SHAP)",
        "LightGBM classifier (SHAP, log-odds)",
    ],
)
def test_exact_contributions_add_up_to_the_prediction(
    request: pytest.FixtureRequest, fixture: str, name: str, method: str
) -> None:
    model = load(request.getfixturevalue(fixture), name)
    for row in rows_for(model):
        why = explain.exact(model, row)
        assert why is not None
        assert why.method == method
        check_adds_up(model, row, why)


def test_a_linear_contribution_moves_only_with_its_own_feature(trained_registry: str) -> None:
    model = load(trained_registry, "claims")
    row = rows_for(model)[0]
    feat = next(f for f in model.card.features if f.kind == "number")
    before = explain.exact(model, row)
    after = explain.exact(model, {**row, feat.name: float(row[feat.name]) + 5})
    assert before is not None
    assert after is not None
    effects = {c.feature: c.effect for c in before.contributions}
    moved = {c.feature: c.effect for c in after.contributions}
    assert moved[feat.name] != pytest.approx(effects[feat.name])
    for other in set(effects) - {feat.name}:
        assert moved[other] == pytest.approx(effects[other], rel=1e-9, abs=1e-9)
    assert after.base == before.base  # the base is the model's, not the row's


def test_models_without_an_exact_decomposition_fall_back(
    trained_registry: str, nonlinear_registry: str
) -> None:
    gbr = load(nonlinear_registry, "gbr")  # scikit-learn gradient boosting: no contributions
    assert explain.exact(gbr, rows_for(gbr)[0]) is None
    pipeline = load(trained_registry, "claims", engine="pipeline")  # no plan to read
    assert explain.exact(pipeline, rows_for(pipeline)[0]) is None
