"""The malformed-file corpus and row-level validation, end to end through ``runs.score`` on
local files: what a user sees is the manifest, the output files and the rejected rows."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zlib
from pathlib import Path

import pytest

from scorer import runs, storage
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel

GOOD = "age,sex,bmi,children,smoker,region\n"
ROW = "40,male,30.5,2,no,southeast\n"


def run(tmp_path: Path, model: LoadedModel, data: bytes, name: str = "in.csv") -> runs.RunResult:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out"
    return runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        "claims-v1-0000000000000000",
        info=storage.head(str(src)),
    )


def rejected(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "out" / "rejected.csv"
    return list(csv.DictReader(io.StringIO(path.read_text()))) if path.exists() else []


REFUSED = [
    ("empty", b"", "EMPTY"),
    ("only-blank-lines", b"\n\n\n", "EMPTY"),
    ("header-only", GOOD.encode(), "HEADER_ONLY"),
    (
        "semicolons-without-every-model-column",
        b"age;sex;bmi;children;smoker\n40;male;30,5;2;no\n",
        "WRONG_DELIMITER",
    ),
    (
        "tabs",
        b"age\tsex\tbmi\tchildren\tsmoker\tregion\n40\tmale\t30\t2\tno\tse\n",
        "WRONG_DELIMITER",
    ),
    (
        "not-utf8",
        "age,sex,bmi,children,smoker,region\n40,männlich,30,2,no,se\n".encode("latin-1"),
        "NOT_UTF8",
    ),
    ("utf16", (GOOD + ROW).encode("utf-16"), "NOT_UTF8"),
    ("zip-named-csv", b"PK\x03\x04" + b"\x00" * 40, "NOT_CSV"),
    ("missing-column", b"age,sex,bmi,children,region\n40,male,30,2,se\n", "MISSING_COLUMNS"),
    (
        "duplicate-header",
        b"age,age,sex,bmi,children,smoker,region\n1,1,m,1,1,no,se\n",
        "DUPLICATE_HEADER",
    ),
    ("blank-header", b"age,,sex,bmi,children,smoker,region\n1,1,m,1,1,no,se\n", "BLANK_HEADER"),
    (
        "reserved-column",
        b"age,sex,bmi,children,smoker,region,prediction\n1,m,1,1,no,se,3\n",
        "RESERVED_COLUMN",
    ),
    ("nul-bytes", (GOOD + "40,ma\x00le,30,2,no,se\n").encode(), "BINARY_CONTENT"),
    ("corrupt-gzip", b"\x1f\x8b\x08\x00" + b"garbage" * 10, "GZIP_CORRUPT"),
    (
        "truncated-gzip",
        gzip.compress(
            (
                GOOD + "".join(f"{i % 60 + 18},male,{i / 7:.3f},2,no,se\n" for i in range(3000))
            ).encode()
        )[:3000],
        "GZIP_CORRUPT",
    ),
    ("unclosed-quote", (GOOD + '40,"male,30,2,no,se\n' + ROW).encode(), "MALFORMED_CSV"),
    ("all-rows-bad", (GOOD + "x,male,30,2,no,se\n" * 3).encode(), "ALL_ROWS_REJECTED"),
]


@pytest.mark.parametrize(
    ("data", "code"), [(d, c) for _, d, c in REFUSED], ids=[i for i, _, _ in REFUSED]
)
def test_a_refused_file_ends_failed_with_a_reason(
    tmp_path: Path, claims_model: LoadedModel, data: bytes, code: str
) -> None:
    result = run(tmp_path, claims_model, data)
    m = result.manifest
    assert (m.status, m.reason and m.reason.code) == ("failed", code)
    assert len(m.reason.message) > 20  # says what to fix
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["status"] == "failed"
    assert not (tmp_path / "out" / "predictions.csv").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".part")]


def test_decompression_bomb_is_refused(
    tmp_path: Path, claims_model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer import gunzip

    monkeypatch.setattr(gunzip, "BOMB_FLOOR", 1024 * 1024)
    body = (GOOD + ROW).encode() + b" " * (20 * 1024 * 1024)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = z.compress(body) + z.flush()
    assert len(bomb) * 200 < len(body)
    m = run(tmp_path, claims_model, bomb, "bomb.csv.gz").manifest
    assert m.reason is not None
    assert m.reason.code == "DECOMPRESSION_BOMB"


ROW_CASES = [
    ("too-few-fields", "40,male,30\n", "TOO_FEW_FIELDS", ""),
    ("too-many-fields", "40,male,30,2,no,se,extra\n", "TOO_MANY_FIELDS", ""),
    ("text-in-number", "forty,male,30,2,no,se\n", "WRONG_TYPE", "age"),
    ("decimal-comma", '40,male,"30,5",2,no,se\n', "WRONG_TYPE", "bmi"),
    ("underscore-number", "4_0,male,30,2,no,se\n", "WRONG_TYPE", "age"),
    ("inf", "40,male,inf,2,no,se\n", "NON_FINITE", "bmi"),
    ("nan", "40,male,NaN,2,no,se\n", "NON_FINITE", "bmi"),
    ("overflow", "40,male,1e309,2,no,se\n", "NON_FINITE", "bmi"),
    ("missing-value", "40,,30,2,no,se\n", "MISSING_VALUE", "sex"),
]


@pytest.mark.parametrize(
    ("line", "code", "column"),
    [(ln, c, col) for _, ln, c, col in ROW_CASES],
    ids=[i for i, *_ in ROW_CASES],
)
def test_a_bad_row_is_rejected_with_its_line_and_reason(
    tmp_path: Path, claims_model: LoadedModel, line: str, code: str, column: str
) -> None:
    data = (GOOD + ROW + line + ROW).encode()
    m = run(tmp_path, claims_model, data).manifest
    assert (m.status, m.rows_in, m.rows_scored, m.rows_rejected) == ("partial", 3, 2, 1)
    assert m.rejected_by_code == {code: 1}
    [rej] = rejected(tmp_path)
    assert (rej["row_number"], rej["line"], rej["code"], rej["column"]) == ("2", "3", code, column)
    assert rej["raw"]
    preds = list(csv.DictReader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert [p["row_number"] for p in preds] == ["1", "3"]


def test_warnings_are_counted_but_rows_scored(tmp_path: Path, claims_model: LoadedModel) -> None:
    data = (
        GOOD.rstrip("\n")
        + ",note\n"
        + "150,male,30,2,no,northeast,x\n"
        + "40,robot,30,2,no,northeast,y\n"
    ).encode()
    m = run(tmp_path, claims_model, data).manifest
    assert (m.status, m.rows_scored) == ("ok", 2)
    assert m.warnings_by_code == {"EXTRA_COLUMNS": 1, "OUT_OF_RANGE": 1, "UNSEEN_CATEGORY": 1}
    assert m.warnings_by_column == {"age": {"OUT_OF_RANGE": 1}, "sex": {"UNSEEN_CATEGORY": 1}}
    assert m.extra_columns == ["note"]


def test_quoted_newlines_bom_crlf_and_blank_lines(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    data = (
        "\ufeff"
        + GOOD.replace("\n", "\r\n")
        + '40,male,30,2,no,"south\r\neast"\r\n\r\n'
        + ROW.replace("\n", "\r\n")
    ).encode()
    m = run(tmp_path, claims_model, data).manifest
    assert (m.rows_in, m.rows_scored) == (2, 2)
    text = (tmp_path / "out" / "predictions.csv").read_bytes().decode()
    preds = list(csv.DictReader(io.StringIO(text, newline="")))
    assert preds[0]["region"] == "south\r\neast"
    assert [p["row_number"] for p in preds] == ["1", "2"]


def test_formula_cells_are_made_safe(tmp_path: Path, claims_model: LoadedModel) -> None:
    data = (
        GOOD.rstrip("\n")
        + ",comment\n"
        + '40,male,30,2,no,se,=HYPERLINK("x")\n'
        + "-5,male,30,2,no,se,@cmd\n"
    ).encode()
    run(tmp_path, claims_model, data)
    preds = list(csv.DictReader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert preds[0]["comment"].startswith("'=")
    assert preds[1]["comment"] == "'@cmd"
    assert preds[1]["age"] == "-5"  # numbers stay numbers


def test_gzip_input_scores_like_plain(
    tmp_path: Path, claims_model: LoadedModel, sample_csv: Path
) -> None:
    plain = run(tmp_path / "a", claims_model, sample_csv.read_bytes())
    gz = run(tmp_path / "b", claims_model, gzip.compress(sample_csv.read_bytes()), "x.csv.gz")
    assert gz.manifest.input.compressed is True
    assert (tmp_path / "a/out/predictions.csv").read_bytes() == (
        tmp_path / "b/out/predictions.csv"
    ).read_bytes()
    assert plain.manifest.rows_scored == gz.manifest.rows_scored == 300


def test_same_input_same_model_is_byte_identical(
    tmp_path: Path, claims_model: LoadedModel, sample_csv: Path
) -> None:
    run(tmp_path / "a", claims_model, sample_csv.read_bytes())
    run(tmp_path / "b", claims_model, sample_csv.read_bytes())
    assert (tmp_path / "a/out/predictions.csv").read_bytes() == (
        tmp_path / "b/out/predictions.csv"
    ).read_bytes()


def test_predictions_match_pycaret_predict_model(
    tmp_path: Path, claims_model: LoadedModel, sample_csv: Path
) -> None:
    import pandas as pd
    from pycaret.regression import predict_model

    run(tmp_path, claims_model, sample_csv.read_bytes())
    ours = pd.read_csv(tmp_path / "out" / "predictions.csv")
    theirs = predict_model(claims_model.pipeline, data=pd.read_csv(sample_csv), verbose=False)
    # predict_model goes through float32 somewhere; ours is the pipeline's float64 output
    assert ours["prediction"].to_numpy() == pytest.approx(
        theirs["prediction_label"].to_numpy(), rel=1e-6
    )


def test_classification_outputs_label_and_score(tmp_path: Path, income_model: LoadedModel) -> None:
    from tests.conftest import make_classification_frame

    frame = make_classification_frame(50, seed=8).drop(columns=["income >50K"])
    m = run(tmp_path, income_model, frame.to_csv(index=False).encode()).manifest
    assert m.status == "ok"
    preds = list(csv.DictReader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert {p["prediction"] for p in preds} <= {">50K", "<=50K"}
    assert all(0.5 <= float(p["prediction_score"]) <= 1.0 for p in preds)


def test_an_existing_manifest_means_nothing_is_done(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    first = run(tmp_path, claims_model, (GOOD + ROW).encode())
    before = (tmp_path / "out" / "manifest.json").read_bytes()
    second = run(tmp_path, claims_model, (GOOD + ROW + ROW).encode())
    assert (first.already_done, second.already_done) == (False, True)
    assert (tmp_path / "out" / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("engine", ["plan", "pipeline"])
def test_a_row_the_model_refuses_is_rejected_and_the_rest_scored(
    tmp_path: Path, nonlinear_registry: str, claims_model: LoadedModel, engine: str
) -> None:
    """A tree model computes in float32 and raises on 1e39 (a finite float64): that row is
    rejected with the model's reason, every other row is scored; a linear model scores it."""
    from scorer.registry import Registry

    reg = Registry(nonlinear_registry)
    gbr = reg.load(reg.resolve("gbr"), engine=engine)
    data = (GOOD + ROW * 3 + "40,male,1e39,2,no,southeast\n" + ROW * 2).encode()
    result = run(tmp_path / "tree", gbr, data)
    m = result.manifest
    assert (m.status, m.rows_in, m.rows_scored, m.rows_rejected) == ("partial", 6, 5, 1)
    assert m.rejected_by_code == {"MODEL_REFUSED": 1}
    [bad] = rejected(tmp_path / "tree")
    assert (bad["row_number"], bad["line"], bad["column"]) == ("4", "5", "bmi")
    assert "beyond the ±3.4e38" in bad["message"]
    scored = list(csv.DictReader(io.StringIO((tmp_path / "tree/out/predictions.csv").read_text())))
    assert [r["row_number"] for r in scored] == ["1", "2", "3", "5", "6"]
    linear = run(tmp_path / "linear", claims_model, data).manifest
    assert (linear.status, linear.rows_scored) == ("ok", 6)


def test_a_model_that_refuses_its_own_typical_row_fails_the_run(
    tmp_path: Path, nonlinear_registry: str
) -> None:
    """Refusals the data cannot explain mean a broken model: no manifest, the input pending."""
    import dataclasses

    from scorer.errors import ModelFailed
    from scorer.registry import Registry

    reg = Registry(nonlinear_registry)
    gbr = reg.load(reg.resolve("gbr"), engine="pipeline")
    broken_card = dataclasses.replace(
        gbr.card,
        features=tuple(
            dataclasses.replace(f, typical=1e39) if f.name == "bmi" else f
            for f in gbr.card.features
        ),
    )
    broken = dataclasses.replace(gbr, card=broken_card)
    data = (GOOD + ROW + "40,male,1e39,2,no,southeast\n").encode()
    with pytest.raises(ModelFailed, match="cannot score even its own typical row"):
        run(tmp_path, broken, data)
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("quoted", [False, True], ids=["arrow reader", "csv reader"])
@pytest.mark.parametrize("engine", ["plan", "pipeline"])
def test_a_prediction_that_is_not_a_finite_number_is_rejected(
    tmp_path: Path, trained_registry: str, engine: str, quoted: bool
) -> None:
    """1e308 is a finite number the card accepts, but a linear model multiplies it past float64:
    an inf prediction is no score, so that row is rejected with its own code and the rest
    scored; the counts and the prediction distribution hold only the scored rows."""
    from scorer.registry import Registry

    reg = Registry(trained_registry)
    model = reg.load(reg.resolve("claims"), engine=engine)
    data = GOOD + ROW + "40,male,1e308,2,no,southeast\n" + ROW + "40,male,-1e308,2,no,southeast\n"
    if quoted:  # a quoted cell sends the file through the csv-module reader (record batches)
        data = data.replace("southeast", '"southeast"')
    result = run(tmp_path, model, (data + ROW).encode())
    m = result.manifest
    assert (m.status, m.rows_in, m.rows_scored, m.rows_rejected) == ("partial", 5, 3, 2)
    assert m.rejected_by_code == {"NON_FINITE_PREDICTION": 2}
    bad = rejected(tmp_path)
    assert [(r["row_number"], r["line"], r["code"]) for r in bad] == [
        ("2", "3", "NON_FINITE_PREDICTION"),
        ("4", "5", "NON_FINITE_PREDICTION"),
    ]
    assert bad[0]["message"].startswith("the prediction is inf: this row's values push the model")
    assert bad[1]["message"].startswith("the prediction is -inf: ")
    assert "'bmi' is 1e+308, far outside" in bad[0]["message"]
    scored = list(csv.DictReader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert [r["row_number"] for r in scored] == ["1", "3", "5"]
    assert all(math.isfinite(float(r["prediction"])) for r in scored)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sum(manifest["distributions"]["prediction"]["counts"]) == 3


def test_a_class_probability_that_is_not_finite_marks_the_row() -> None:
    """Classification has no numeric prediction: a NaN or inf among the probabilities (or the
    score) is what makes a row unscorable."""
    import numpy as np

    from scorer.batches import non_finite
    from scorer.predict import Predictions

    proba = np.array([[0.2, 0.8], [np.nan, np.nan], [0.5, np.inf], [1.0, 0.0]])
    preds = Predictions(np.array(["a", "b", "b", "a"], dtype=object), proba.max(axis=1), proba)
    assert non_finite(preds).tolist() == [False, True, True, False]
    values = np.array([1.0, np.inf, -np.inf, np.nan, -2.5])
    assert non_finite(Predictions(values, None, None)).tolist() == [
        False, True, True, True, False,
    ]  # fmt: skip
