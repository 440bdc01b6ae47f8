"""Classifier outputs through ``python -m scorer score``: a probability column per class (named
from the labels, byte-identical from both engines, reserved against input columns), integer
labels as the target had them, and a row id training left out passing through untouched."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scorer.registry import Registry
from scorer.schema import proba_column_names
from tests.conftest import make_purchase_frame, make_three_class_frame
from tests.scorer.test_engines import score
from tests.scorer.test_s3_runs import cli


def _read(files: object) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(files["predictions.csv"]))  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "frame", "columns", "classes"),
    [
        ("purchase", make_purchase_frame(300, seed=31).drop(columns=["Purchase"]),
         ["proba_0", "proba_1"], [0, 1]),
        ("three", make_three_class_frame(300, seed=32).drop(columns=["kind"]),
         ["proba_A_b", "proba_A_b_2", "proba_c"], ["A b", "A/b", "c"]),
    ],
    ids=["binary 0/1", "three classes named 'A b', 'A/b', 'c'"],
)  # fmt: skip
def test_every_class_gets_a_probability_column_the_same_from_both_engines(
    tmp_path: Path,
    labelled_registry: str,
    model: str,
    frame: pd.DataFrame,
    columns: list[str],
    classes: list[object],
) -> None:
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    plan = score(src, labelled_registry, model, tmp_path / "plan", "--engine", "plan")
    pipeline = score(src, labelled_registry, model, tmp_path / "pipe", "--engine", "pipeline")
    assert (plan["engine"], pipeline["engine"]) == ("plan", "pipeline")
    assert plan["files"] == pipeline["files"]  # byte-identical, probabilities included
    out = _read(plan["files"])
    header = [*frame.columns, "row_number", "prediction", "prediction_score", *columns]
    assert list(out.columns) == header
    proba = out[columns].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba.max(axis=1), out["prediction_score"].to_numpy())
    best = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    assert out["prediction"].tolist() == best.tolist()  # 0/1 read back as integers, as trained
    card = Registry(labelled_registry).resolve(model)
    assert list(card.proba_columns) == columns


@pytest.mark.parametrize(
    ("classes", "taken", "names"),
    [
        (("0", "1"), [], ("proba_0", "proba_1")),
        (("yes", "no"), ["proba_yes"], ("proba_yes_2", "proba_no")),
        (("<=50K", ">50K"), [], ("proba___50K", "proba__50K")),
        (("a b", "a_b", "a.b-c", "é"), [], ("proba_a_b", "proba_a_b_2", "proba_a.b-c", "proba__")),
        (("", "="), [], ("proba_", "proba__")),
    ],
)
def test_probability_column_names_are_safe_unique_and_clash_with_nothing(
    classes: tuple[str, ...], taken: list[str], names: tuple[str, ...]
) -> None:
    assert proba_column_names(classes, taken) == names


def test_an_input_column_named_like_a_probability_column_is_refused(
    tmp_path: Path, labelled_registry: str
) -> None:
    src = tmp_path / "in.csv"
    make_purchase_frame(20, seed=33).drop(columns=["Purchase"]).assign(proba_1=0.5).to_csv(
        src, index=False
    )
    done = cli(
        "score", str(src), "--registry", labelled_registry, "--model", "purchase",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "[RESERVED_COLUMN]" in done.stderr
    assert "'proba_1'" in done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["status"], manifest["reason"]["code"]) == ("failed", "RESERVED_COLUMN")


def test_a_later_batch_with_new_row_ids_gets_the_same_predictions(
    tmp_path: Path, labelled_registry: str
) -> None:
    """Issue 11.3: an 'Id' column learnt as a feature flipped a later batch (ids 10001+) to one
    class under status ok. Training leaves it out; scoring passes it through untouched and does
    not count it as an unexpected extra column."""
    card = Registry(labelled_registry).resolve("purchase")
    assert "Id" not in card.feature_names
    assert [i.column for i in card.ignored] == ["Id"]
    rows = make_purchase_frame(400, seed=34).drop(columns=["Purchase"])
    first, later = tmp_path / "first.csv", tmp_path / "later.csv"
    rows.to_csv(first, index=False)
    rows.assign(Id=rows["Id"] + 10_000).to_csv(later, index=False)
    a = score(first, labelled_registry, "purchase", tmp_path / "a")
    b = score(later, labelled_registry, "purchase", tmp_path / "b")
    pa, pb = _read(a["files"]), _read(b["files"])
    assert pb["Id"].tolist() == list(range(10_001, 10_401))  # passed through untouched
    outputs = ["prediction", "prediction_score", "proba_0", "proba_1"]
    assert pa[outputs].equals(pb[outputs])
    assert pa["prediction"].nunique() == 2
    manifest = b["manifest"]
    assert manifest["status"] == "ok"  # type: ignore[index]
    assert "EXTRA_COLUMNS" not in manifest["warnings_by_code"]  # type: ignore[index]
    assert manifest.get("extra_columns", []) == []  # type: ignore[attr-defined]


def test_the_same_table_trained_with_keep_id_gives_a_later_batch_other_predictions(
    tmp_path: Path,
) -> None:
    """Why the id must go: kept as a feature (--keep Id, as before issue 11), ids 10001+ change
    the predictions of the very same rows."""
    src = tmp_path / "train.csv"
    make_purchase_frame(600).to_csv(src, index=False)
    reg = str(tmp_path / "models")
    done = subprocess_train(
        "--data", str(src), "--target", "Purchase", "--name", "kept", "--registry", reg,
        "--estimators", "lr", "--keep", "Id",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not a feature" not in done.stderr
    rows = make_purchase_frame(400, seed=34).drop(columns=["Purchase"])
    first, later = tmp_path / "first.csv", tmp_path / "later.csv"
    rows.to_csv(first, index=False)
    rows.assign(Id=rows["Id"] + 10_000).to_csv(later, index=False)
    a = _read(score(first, reg, "kept@1", tmp_path / "a")["files"])
    b = _read(score(later, reg, "kept@1", tmp_path / "b")["files"])
    assert (a["prediction"] != b["prediction"]).mean() > 0.2


def subprocess_train(*args: str):  # type: ignore[no-untyped-def]
    from tests.training.test_train import cli as training_cli

    return training_cli("train", *args)
