"""The dialect rule on its own (pure): which delimiter a header means, which decimal mark the
first rows mean, and numbers written with a decimal comma reading back exactly."""

from __future__ import annotations

import dataclasses
import io

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scorer import dialect
from scorer.errors import FileRefused
from scorer.reader import CsvStream
from scorer.schema import plan_header
from scorer.validate import check_batch
from tests.scorer.test_validate import CARD


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        ("num;cat", ";"),
        ('"num";"cat";"extra, with comma"', ";"),
        ("num,cat", ","),
        ("num,cat;x", ","),  # the ',' split names the columns
        ("a;b;c", ","),  # the ';' split does not: WRONG_DELIMITER as before
        ("num;ca", ","),
        ('num;"cat', ","),
    ],
)
def test_only_a_header_naming_the_model_columns_on_semicolons_is_semicolon(
    line: str, delimiter: str
) -> None:
    assert dialect.delimiter_rule(CARD)(line) == delimiter


@pytest.mark.parametrize(
    ("cells", "mark"),
    [
        ({"a": ["30,5", "1", ""], "b": ["2"]}, ","),
        ({"a": ["30.5", "1"], "b": ["x,y"]}, "."),
        ({"a": ["30", "1"], "b": ["1e5"]}, "."),  # whole numbers only
        ({"a": [" 30,5 "], "b": ["-,5"]}, ","),
    ],
)
def test_the_decimal_mark_comes_from_the_cells(cells: dict[str, list[str]], mark: str) -> None:
    arrays = {k: pa.array(v, pa.string()) for k, v in cells.items()}
    assert dialect.decimal_mark(arrays) == mark


def test_both_marks_are_refused_naming_an_example_of_each() -> None:
    with pytest.raises(FileRefused) as info:
        dialect.decimal_mark({"a": pa.array(["30,5"]), "b": pa.array(["1", "2.25"])})
    assert info.value.code == "MIXED_DECIMAL_MARKS"
    assert "'a' has '30,5'" in info.value.message
    assert "'b' has '2.25'" in info.value.message


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_a_number_with_a_decimal_comma_reads_back_exactly(x: float) -> None:
    plan = dataclasses.replace(plan_header(["num", "cat"], CARD), delimiter=";", decimal=",")
    checked = check_batch([[repr(x).replace(".", ","), "a"]], [1], [2], plan)
    assert checked.rejections == []
    assert checked.frame["num"].iloc[0] == x


def test_a_semicolon_file_plan_records_its_dialect() -> None:
    data = b'"num";"cat"\r\n"1,5";"a"\r\n"2";"b"\r\n'
    stream = CsvStream(io.BytesIO(data), delimiter=dialect.delimiter_rule(CARD))
    plan = dialect.plan_file(stream, CARD)
    assert plan.dialect == {"delimiter": ";", "decimal": ","}
    assert plan.dialect_warnings == {"SEMICOLON_DIALECT": 1, "DECIMAL_COMMA": 1}
    [batch] = list(stream.batches())  # the first batch, looked at for the mark, is still read
    assert batch.records == [["1,5", "a"], ["2", "b"]]
    comma = CsvStream(io.BytesIO(b"num,cat\n1.5,a\n"), delimiter=dialect.delimiter_rule(CARD))
    assert dialect.plan_file(comma, CARD).dialect_warnings == {}
