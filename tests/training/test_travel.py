"""Published models travel (issue 11.5): plain PyCaret loads each one and ``predict_model`` with
default arguments on the frame ``pd.read_csv`` gives (target included, in its own dtype) agrees
with dropscore's labels; the card keeps the labels' type and what training left out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scorer.registry import Registry
from tests.conftest import make_classification_frame, make_purchase_frame, make_three_class_frame
from tests.scorer.test_engines import score
from training.sample_data import generate


def plain_pycaret(registry: str, name: str, frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """What a user does with the published model.pkl and nothing of dropscore."""
    card = Registry(registry).resolve(name)
    path = Path(registry) / name / str(card.version) / "model"
    if task == "classification":
        from pycaret.classification import load_model, predict_model
    else:
        from pycaret.regression import load_model, predict_model
    return predict_model(load_model(str(path), verbose=False), data=frame)


CASES = [
    ("integer 0/1 target, a row id", "labelled_registry", "purchase", "Purchase",
     lambda: make_purchase_frame(300, seed=41)),
    ("three text classes", "labelled_registry", "three", "kind",
     lambda: make_three_class_frame(300, seed=42)),
    ("text labels '<=50K'/'>50K', missing categories", "trained_registry", "income",
     "income >50K", lambda: make_classification_frame(300, seed=43)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("registry_fixture", "name", "target", "make"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plain_pycaret_predict_model_agrees_with_dropscore(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    registry_fixture: str,
    name: str,
    target: str,
    make: object,
) -> None:
    registry = request.getfixturevalue(registry_fixture)
    src = tmp_path / "labelled.csv"
    make().to_csv(src, index=False)  # type: ignore[operator]
    frame = pd.read_csv(src)  # as a user reads it: 0/1 as int64
    theirs = plain_pycaret(registry, name, frame, "classification")
    ours = score(src, registry, name, tmp_path / "o")
    out = pd.read_csv(io.BytesIO(ours["files"]["predictions.csv"]))  # type: ignore[index]
    assert out["prediction"].dtype == frame[target].dtype
    assert out["prediction"].tolist() == theirs["prediction_label"].tolist()
    card = Registry(registry).resolve(name)
    assert card.label_type == ("int" if frame[target].dtype.kind == "i" else "str")


def test_a_regression_model_loads_and_predicts_in_plain_pycaret(
    tmp_path: Path, trained_registry: str
) -> None:
    src = tmp_path / "claims.csv"
    generate(200, seed=44).to_csv(src, index=False)
    theirs = plain_pycaret(trained_registry, "claims", pd.read_csv(src), "regression")
    ours = score(src, trained_registry, "claims", tmp_path / "o")
    out = pd.read_csv(io.BytesIO(ours["files"]["predictions.csv"]))  # type: ignore[index]
    # predict_model rounds its features to float32 before predicting: equal to ~1e-6, not bits
    assert np.allclose(out["prediction"], theirs["prediction_label"], rtol=1e-5)


def test_the_card_keeps_label_type_ignored_columns_codes_and_probability_columns(
    labelled_registry: str,
) -> None:
    card = Registry(labelled_registry).resolve("purchase")
    raw = json.loads(
        (Path(labelled_registry) / "purchase" / str(card.version) / "card.json").read_text()
    )
    assert raw["classes"] == ["0", "1"]
    assert raw["label_type"] == "int"
    assert raw["proba_columns"] == ["proba_0", "proba_1"]
    assert raw["ignored"] == [
        {"column": "Id", "reason": "unique per row and sequential (1…600): looks like a row id"}
    ]
    feats = {f["name"]: f for f in raw["features"]}
    assert "Id" not in feats
    assert feats["StoreID"]["coded"] is True
    assert feats["StoreID"]["bins"] == [1.0, 1.5, 2.5, 3.5, 5.5, 7.0]  # one bin per store
    assert feats["LoyalCH"]["coded"] is False


def test_an_old_card_without_the_new_fields_still_loads(trained_registry: str) -> None:
    from scorer.card import ModelCard
    from scorer.schema import probability_columns

    card = Registry(trained_registry).resolve("income")
    raw = json.loads(card.to_json())
    for key in ("ignored", "label_type", "proba_columns"):
        raw.pop(key)
    for feat in raw["features"]:
        feat.pop("coded")
    old = ModelCard.from_json(json.dumps(raw))
    assert (old.ignored, old.label_type, old.proba_columns) == ((), "str", ())
    assert probability_columns(old) == probability_columns(card) == ("proba___50K", "proba__50K")


def test_column_options_through_the_cli_and_env_and_what_the_console_says(tmp_path: Path) -> None:
    """--categorical (codes scored as text '1', an unknown code an unseen category), --ignore
    from DROPSCORE_IGNORE, and the console lines that make each choice visible."""
    from tests.training.test_train import cli

    frame = make_purchase_frame(400, seed=45)
    src = tmp_path / "train.csv"
    frame.to_csv(src, index=False)
    reg = str(tmp_path / "models")
    base = ["--data", str(src), "--target", "Purchase", "--registry", reg, "--estimators", "lr"]
    done = cli(
        "train", *base, "--name", "coded", "--categorical", "StoreID",
        env={"DROPSCORE_IGNORE": "SpecialMM"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not a feature: 'Id' (unique per row and sequential (1…400): looks like a row id; " \
        "--keep to use it)" in done.stderr  # fmt: skip
    assert "not a feature: 'SpecialMM' (--ignore)" in done.stderr
    assert "--categorical" not in done.stderr  # StoreID is a category now: nothing to suggest
    card = Registry(reg).resolve("coded@1")
    assert card.feature_names == ["StoreID", "PriceCH", "PriceMM", "LoyalCH"]
    store = card.feature("StoreID")
    assert (store.kind, store.categories) == ("category", ("1", "2", "3", "4", "7"))

    rows = make_purchase_frame(50, seed=46).drop(columns=["Purchase"])
    rows.loc[:4, "StoreID"] = 5  # a store training never saw
    scoring = tmp_path / "in.csv"
    rows.to_csv(scoring, index=False)
    out = score(scoring, reg, "coded@1", tmp_path / "o")
    manifest = out["manifest"]
    assert manifest["warnings_by_column"] == {"StoreID": {"UNSEEN_CATEGORY": 5}}  # type: ignore[index]

    hinted = cli("train", *base, "--name", "hinted")
    assert hinted.returncode == 0, hinted.stderr
    assert (
        "whole numbers with few values, trained as numbers: StoreID; if they are codes"
        in hinted.stderr
    )
    assert "train with --categorical StoreID" in hinted.stderr

    unknown = cli("train", *base, "--name", "bad", "--keep", "Idd")
    assert unknown.returncode == 2  # a usage error: nothing ran
    assert "error [BAD_ARGUMENT]: --keep names 'Idd', not a column" in unknown.stderr
    assert not (tmp_path / "models" / "bad").exists()
