"""Messy variants of one clean scoring file — stray spaces and other case in categories, every
field quoted, European exports (';' and decimal comma), a BOM, CRLF line ends and their
combinations — score to exactly the clean file's predictions, with the variant named in the
manifest; and what cannot be read unambiguously is refused or rejected, never guessed."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from scorer import runs, storage
from scorer.layout import ObjectVersion
from scorer.manifest import Manifest
from scorer.model import LoadedModel
from tests.conftest import make_classification_frame

Variant = Callable[[pd.DataFrame], bytes]


def claims_frame() -> pd.DataFrame:
    from training.sample_data import generate

    return generate(240, seed=31).drop(columns=["charges"])


def income_frame() -> pd.DataFrame:
    frame = make_classification_frame(240, seed=32).drop(columns=["income >50K"])
    frame["work class"] = frame["work class"].str.strip()  # the clean file: seen spellings
    return frame


def score(tmp_path: Path, model: LoadedModel, data: bytes, **kw: int) -> tuple[Manifest, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    out = tmp_path / "out"
    card = model.card
    result = runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        f"{card.name}-v{card.version}-0000000000000000",
        info=storage.head(str(src)),
        **kw,  # type: ignore[arg-type]
    )
    predictions = {}
    path = out / "predictions.csv"
    if path.exists():
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            predictions[row["row_number"]] = (row["prediction"], row.get("prediction_score"))
    return result.manifest, predictions


def clean(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def messy_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Every category cell respelled, in turn: ' Male', 'MALE', 'male ', inner space doubled."""
    out = frame.copy()
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        spell = [
            lambda v: f" {v}",
            str.upper,
            lambda v: f"{v} \t",
            lambda v: v.replace(" ", "  ") if " " in v else v.swapcase(),
        ]
        out[col] = [
            v if not isinstance(v, str) else spell[i % len(spell)](v)
            for i, v in enumerate(frame[col])
        ]
    return out


def respelled(frame: pd.DataFrame) -> int:
    """Category cells of ``messy_categories`` that differ by more than surrounding space."""
    messy = messy_categories(frame)
    return sum(
        int(isinstance(a, str) and a != b.strip())
        for col in frame.columns
        if frame[col].dtype == object
        for a, b in zip(frame[col], messy[col], strict=True)
    )


def european(frame: pd.DataFrame, **kw: object) -> bytes:
    return frame.to_csv(index=False, sep=";", decimal=",", **kw).encode()  # type: ignore[call-overload]


VARIANTS: dict[str, tuple[Variant, dict[str, str], bool]] = {
    # name: (make the file, its dialect, categories respelled)
    "stray spaces and other case in categories": (
        lambda f: clean(messy_categories(f)),
        {"delimiter": ",", "decimal": "."},
        True,
    ),
    "every field quoted": (
        lambda f: f.to_csv(index=False, quoting=csv.QUOTE_ALL).encode(),
        {"delimiter": ",", "decimal": "."},
        False,
    ),
    "European: ';' and decimal comma (pandas)": (
        european,
        {"delimiter": ";", "decimal": ","},
        False,
    ),
    "European, every field quoted": (
        lambda f: european(f, quoting=csv.QUOTE_ALL),
        {"delimiter": ";", "decimal": ","},
        False,
    ),
    "UTF-8 BOM": (lambda f: b"\xef\xbb\xbf" + clean(f), {"delimiter": ",", "decimal": "."}, False),
    "CRLF line ends": (
        lambda f: f.to_csv(index=False, lineterminator="\r\n").encode(),
        {"delimiter": ",", "decimal": "."},
        False,
    ),
    "saved by Excel (European): BOM, CRLF, ';', decimal comma, messy categories": (
        lambda f: b"\xef\xbb\xbf" + european(messy_categories(f), lineterminator="\r\n"),
        {"delimiter": ";", "decimal": ","},
        True,
    ),
}
FRAMES = {"claims": claims_frame, "income": income_frame}


@pytest.fixture(scope="module")
def baselines(
    tmp_path_factory: pytest.TempPathFactory, claims_model: LoadedModel, income_model: LoadedModel
) -> dict[str, tuple[LoadedModel, pd.DataFrame, Manifest, dict]]:
    out = {}
    for name, model in (("claims", claims_model), ("income", income_model)):
        frame = FRAMES[name]()
        manifest, preds = score(tmp_path_factory.mktemp(f"clean-{name}"), model, clean(frame))
        assert manifest.status == "ok", manifest.reason
        assert manifest.input.dialect == {"delimiter": ",", "decimal": "."}
        assert "CATEGORY_NORMALISED" not in manifest.warnings_by_code
        assert len(preds) == len(frame)
        out[name] = (model, frame, manifest, preds)
    return out


@pytest.mark.parametrize("model_name", ["claims", "income"])
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_a_messy_variant_predicts_exactly_as_the_clean_file(
    tmp_path: Path, baselines: dict, model_name: str, variant: str
) -> None:
    model, frame, clean_manifest, clean_preds = baselines[model_name]
    make, dialect, respell = VARIANTS[variant]
    manifest, preds = score(tmp_path, model, make(frame))
    assert manifest.status == clean_manifest.status == "ok", manifest.reason
    assert manifest.rows_in == clean_manifest.rows_in == len(frame)
    assert manifest.rows_scored == len(frame)
    assert preds == clean_preds  # the prediction (and score) of every row, by row number
    assert manifest.input.dialect == dialect
    expected = dict(clean_manifest.warnings_by_code)
    if respell:
        expected["CATEGORY_NORMALISED"] = respelled(frame)
    if dialect["delimiter"] == ";":
        expected.update(SEMICOLON_DIALECT=1, DECIMAL_COMMA=1)
    assert manifest.warnings_by_code == expected
    assert manifest.distributions == clean_manifest.distributions  # drift sees seen categories


def test_a_european_file_scored_by_forked_workers_in_small_batches_is_the_same(
    tmp_path: Path, baselines: dict
) -> None:
    model, frame, _, clean_preds = baselines["claims"]
    data = b"\xef\xbb\xbf" + european(messy_categories(frame), lineterminator="\r\n")
    manifest, preds = score(tmp_path, model, data, workers=2, batch_rows=50)
    assert manifest.workers == 2
    assert preds == clean_preds
    assert manifest.input.dialect == {"delimiter": ";", "decimal": ","}


# --- what is not guessed --------------------------------------------------------------------
HEADER = "age;sex;bmi;children;smoker;region\n"


def rows(*bmis: str) -> str:
    return "".join(f"40;male;{b};2;no;southeast\n" for b in bmis)


def test_both_decimal_marks_in_the_first_rows_refuse_the_file(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    manifest, _ = score(tmp_path, claims_model, (HEADER + rows("30,5", "31.5")).encode())
    assert manifest.status == "failed"
    assert manifest.reason is not None
    assert manifest.reason.code == "MIXED_DECIMAL_MARKS"
    assert "'30,5'" in manifest.reason.message
    assert "'31.5'" in manifest.reason.message


@pytest.mark.parametrize(
    ("first", "later", "decimal", "hint"),
    [
        ("30,5", "31.5", ",", "write '31,5'"),
        ("30,5", "1.234,5", ",", "without thousands separators"),
        ("30.5", "31,5", ".", "use '.' as the decimal separator"),
        ("30", "31,5", ".", "use '.' as the decimal separator"),  # whole numbers: '.'
    ],
    ids=[
        "a point decimal after comma decimals",
        "a thousands separator",
        "a comma decimal after point decimals",
        "a comma decimal after whole numbers only",
    ],
)
def test_a_later_cell_in_the_other_form_is_rejected_with_a_hint(
    tmp_path: Path, claims_model: LoadedModel, first: str, later: str, decimal: str, hint: str
) -> None:
    data = (HEADER + rows(*[first] * 200) + rows(later)).encode()  # the first batch: ~50 rows
    manifest, preds = score(tmp_path, claims_model, data, batch_rows=50)
    assert manifest.input.dialect == {"delimiter": ";", "decimal": decimal}
    assert manifest.status == "partial"
    assert manifest.rejected_by_code == {"WRONG_TYPE": 1}
    assert len(preds) == 200
    rejected = list(csv.DictReader(io.StringIO((tmp_path / "out" / "rejected.csv").read_text())))
    assert [(r["row_number"], r["column"], r["code"]) for r in rejected] == [
        ("201", "bmi", "WRONG_TYPE")
    ]
    assert hint in rejected[0]["message"]


def test_a_decimal_comma_in_a_comma_file_is_still_rejected(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    data = (
        b'age,sex,bmi,children,smoker,region\n40,male,"30,5",2,no,southeast\n40,male,30,2,no,se\n'
    )
    manifest, _ = score(tmp_path, claims_model, data)
    assert manifest.input.dialect == {"delimiter": ",", "decimal": "."}
    assert manifest.rejected_by_code == {"WRONG_TYPE": 1}
    assert "SEMICOLON_DIALECT" not in manifest.warnings_by_code
    [rejected] = list(csv.DictReader(io.StringIO((tmp_path / "out" / "rejected.csv").read_text())))
    assert "use '.' as the decimal separator" in rejected["message"]
