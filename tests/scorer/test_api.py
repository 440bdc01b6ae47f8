"""The Python API: a DataFrame scored with exactly the batch's validation and reasons, and the
UI's single prediction going through it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scorer
from scorer import api, runs
from scorer.errors import FileRefused
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel


def sample(rows: int, seed: int = 7) -> pd.DataFrame:
    from training.sample_data import generate

    return generate(rows, seed=seed).drop(columns=["charges"])


def messy(rows: int = 60) -> pd.DataFrame:
    frame = sample(rows).astype({"bmi": object, "age": "float64"})
    frame.loc[3, "bmi"] = "31,4"  # decimal comma, as a European spreadsheet gives it
    frame.loc[5, "age"] = np.nan  # a required value missing
    frame.loc[8, "bmi"] = "20,000.0"
    frame.loc[9, "region"] = "atlantis"  # unseen: scored, with a warning
    frame.loc[11, "bmi"] = float("inf")
    frame["note"] = "extra"  # passed through
    return frame.set_index(pd.Index([f"id{i}" for i in range(rows)]))


def test_the_api_is_reexported_and_loads_by_reference(trained_registry: str) -> None:
    model = scorer.load_model("claims@1", registry=trained_registry)
    assert model.card.ref == "claims@1"
    assert scorer.score_frame is api.score_frame


def test_a_frame_is_scored_exactly_as_the_same_table_in_a_file(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    frame = messy()
    scored = scorer.score_frame(frame, claims_model)
    # the same table saved by pandas and dropped as a file
    src = tmp_path / "same.csv"
    frame.to_csv(src, index=False)
    run = runs.score(ObjectVersion("", str(src)), str(tmp_path / "out"), claims_model, "x-v1-0")
    file_rejected = list(csv.DictReader(io.StringIO((tmp_path / "out/rejected.csv").read_text())))
    file_predictions = pd.read_csv(tmp_path / "out/predictions.csv")
    assert [(r["row_number"], r["code"], r["message"]) for r in file_rejected] == [
        (str(r.row_number), r.code, r.message) for r in scored.rejected.itertuples()
    ]
    codes = ["WRONG_TYPE", "MISSING_VALUE", "WRONG_TYPE", "NON_FINITE"]
    assert list(scored.rejected["code"]) == codes
    assert list(scored.rejected.index) == ["id3", "id5", "id8", "id11"]
    assert "use '.' as the decimal separator" in scored.rejected.loc["id3", "message"]
    assert "remove the thousands separators" in scored.rejected.loc["id8", "message"]
    np.testing.assert_array_equal(
        scored.predictions["prediction"].to_numpy(), file_predictions["prediction"].to_numpy()
    )
    assert list(scored.predictions["row_number"]) == list(file_predictions["row_number"])
    assert scored.predictions.loc["id9", "region"] == "atlantis"
    assert scored.predictions.loc["id0", "note"] == "extra"
    m, f = scored.manifest, run.manifest
    assert (m.status, m.rows_in, m.rows_scored, m.rows_rejected) == (
        f.status, f.rows_in, f.rows_scored, f.rows_rejected,
    )  # fmt: skip
    assert m.warnings_by_code == f.warnings_by_code == {"EXTRA_COLUMNS": 1, "UNSEEN_CATEGORY": 1}
    assert m.rejected_by_code == f.rejected_by_code
    assert m.alerts == f.alerts


def test_a_missing_column_is_refused_not_filled(claims_model: LoadedModel) -> None:
    with pytest.raises(FileRefused) as refused:
        scorer.score_frame(sample(5).drop(columns=["smoker"]), claims_model)
    assert refused.value.code == "MISSING_COLUMNS"
    assert "'smoker'" in refused.value.message


def test_an_empty_frame_is_refused_like_a_header_only_file(claims_model: LoadedModel) -> None:
    with pytest.raises(FileRefused) as refused:
        scorer.score_frame(sample(5).iloc[:0], claims_model)
    assert refused.value.code == "HEADER_ONLY"


def test_every_row_rejected_comes_back_failed_with_the_rows(claims_model: LoadedModel) -> None:
    frame = sample(3).astype({"age": object})
    frame["age"] = "old"
    scored = scorer.score_frame(frame, claims_model)
    assert scored.status == "failed"
    assert scored.manifest.reason is not None
    assert scored.manifest.reason.code == "ALL_ROWS_REJECTED"
    assert len(scored.predictions) == 0
    assert list(scored.rejected["code"]) == ["WRONG_TYPE"] * 3


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (float("nan"), ""),
        (pd.NA, ""),
        (pd.NaT, ""),
        (0.1 + 0.2, "0.30000000000000004"),
        (np.float32(1.5), "1.5"),
        (1e-300, "1e-300"),
        (np.int64(12), "12"),
        (7, "7"),
        (True, "True"),
        ("31,4", "31,4"),
        (" male ", " male "),
        (dt.date(2024, 5, 1), "2024-05-01"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_cells_become_the_text_a_csv_holds(value: object, text: str) -> None:
    assert api.cell(value) == text


def test_floats_keep_full_precision_and_nullable_ints_stay_whole() -> None:
    frame = pd.DataFrame(
        {"x": [0.1 + 0.2, np.nan], "n": pd.array([3, None], dtype="Int64"), "s": ["a", None]}
    )
    assert api.frame_to_csv(frame) == b"x,n,s\n0.30000000000000004,3,a\n,,\n"


def test_the_predict_page_refuses_what_the_batch_refuses(claims_model: LoadedModel) -> None:
    from ui.views.predict import answer

    row = {f.name: f.typical for f in claims_model.card.features}
    good = answer(claims_model, row)
    assert good.rejected == ()
    expected = scorer.score_frame(pd.DataFrame([row]), claims_model)
    assert good.value == pytest.approx(float(expected.predictions["prediction"].iloc[0]))
    bad = answer(claims_model, {**row, "bmi": "31,4"})
    assert bad.value is None
    assert bad.rejected == ("WRONG_TYPE: 'bmi' is '31,4', not a number; use '.' as the decimal "
                            "separator",)  # fmt: skip
    with pytest.raises(FileRefused, match="column\\(s\\) 'region' missing"):
        answer(claims_model, {k: v for k, v in row.items() if k != "region"})
