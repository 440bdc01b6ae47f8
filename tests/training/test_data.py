"""Reading a training CSV (``training.data``): what is refused with a clear reason, what reads
as written (awkward names, quotes, BOM, gzip, European exports), and any frame round-tripping."""

from __future__ import annotations

import gzip
import hashlib
import io
import time
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.data import read_training_csv
from training.errors import TrainingDataError
from training.sample_data import generate


# --- reading the training CSV -------------------------------------------------------------------
def _xlsx_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>" * 50)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "is not UTF-8 text"),
        ("x.csv", _xlsx_like(), "is not UTF-8 text"),
        ("x.csv", b"a;b;target\n1;2;3\n", "has a single column ('a;b;target')"),
        ("x.csv", b"a\tb\tcharges\n1\t2\t3\n", "it must be comma-separated"),
        ("x.csv", b"", "is empty"),
        ("x.csv", b"\n\n \n", "is empty"),
        ("x.csv", b"a,a,charges\n1,2,3\n", "repeats the column(s) ['a']"),
        ("x.csv", b"a,b,charges,\n1,2,3,\n", "column(s) without a name (position 4)"),
        ("x.csv", b"a, ,charges\n1,2,3\n", "column(s) without a name (position 2)"),
        ("x.csv", b"a,charges,b\n1,2,3\n4,5\n", "line 3 has 2 field(s) but the header has 3"),
        ("x.csv", b"a,charges,b\n1,2,3,4\n", "line 2 has 4 field(s) but the header has 3"),
        ("x.csv", b"a,b,charges\ninf,2,3\n", "column 'a' contains infinite values"),
        ("x.csv", b"a,b\n1,2\n", "target 'charges' is not a column of"),
        ("x.csv.gz", b"a,b,charges\n1,2,3\n", "is not a valid gzip file"),
        ("x.csv", b"a,b,charges\n1,2,3\nNA,2,4\n", "column 'a' holds numbers but also 'NA'"),
        ("x.csv", b"a,b,charges\n1,2,3\n4,5,?\n", "column 'charges' holds numbers but also '?'"),
    ],
    ids=[
        "a PNG image",
        "a spreadsheet (zip) renamed to .csv",
        "semicolon-separated",
        "tab-separated",
        "empty file",
        "only blank lines",
        "duplicate column names",
        "a trailing comma makes a column without a name",
        "a blank column name",
        "a row with too few fields (pandas would pad it with NaN)",
        "a row with too many fields",
        "infinite values",
        "no target column",
        "a .gz that is not gzip",
        "a number column marking gaps with NA (the scorer would reject those rows)",
        "a number target marking gaps with ?",
    ],
)
def test_read_training_csv_refuses(tmp_path: Path, name: str, body: bytes, message: str) -> None:
    src = tmp_path / name
    src.write_bytes(body)
    with pytest.raises(TrainingDataError) as info:
        read_training_csv(str(src), "charges")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_read_training_csv_keeps_awkward_names_quotes_bom_gzip_and_drops_missing_targets(
    tmp_path: Path,
) -> None:
    text = '\ufeff"name, with comma","quoted ""x""",income >50K\nA,1.5,>50K\n"B, b",,<=50K\nC,3,\n'
    src = tmp_path / "t.csv.gz"
    raw = text.encode()
    src.write_bytes(gzip.compress(raw))
    data = read_training_csv(str(src), "income >50K")
    assert list(data.frame.columns) == ["name, with comma", 'quoted "x"', "income >50K"]
    assert data.frame["name, with comma"].tolist() == ["A", "B, b"]
    assert data.dropped_missing_target == 1
    assert data.sha256 == hashlib.sha256(raw).hexdigest()


def test_only_an_empty_cell_is_missing_as_in_the_scorer(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("heating,charges\nNone,1\nNA,2\nnull,3\n,4\ngas,5\n")
    data = read_training_csv(str(src), "charges")
    assert data.frame["heating"].tolist()[:3] == ["None", "NA", "null"]
    assert data.frame["heating"].isna().tolist() == [False, False, False, True, False]


def test_spellings_that_differ_in_surrounding_space_become_one_and_blank_ones_are_missing(
    tmp_path: Path,
) -> None:
    src = tmp_path / "t.csv"
    src.write_text("sex,charges\n Male,1\nfemale ,2\n  ,3\nMale,4\n Male,5\nfemale,6\n")
    data = read_training_csv(str(src), "charges")
    # the most frequent spelling wins (' Male' ×2); a tie goes to the trimmed one ('female')
    sex = data.frame["sex"].tolist()
    assert [sex[i] for i in (0, 1, 3, 4, 5)] == [" Male", "female", " Male", " Male", "female"]
    assert data.frame["sex"].isna().tolist() == [False, False, True, False, False, False]


def test_a_european_export_reads_as_the_clean_file(tmp_path: Path) -> None:
    frame = generate(60, seed=8)
    clean, euro = tmp_path / "clean.csv", tmp_path / "euro.csv"
    frame.to_csv(clean, index=False)
    euro.write_bytes(
        b"\xef\xbb\xbf"
        + frame.to_csv(index=False, sep=";", decimal=",", lineterminator="\r\n").encode()
    )
    a, b = read_training_csv(str(clean), "charges"), read_training_csv(str(euro), "charges")
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert (a.dialect, b.dialect) == (
        {"delimiter": ",", "decimal": "."},
        {"delimiter": ";", "decimal": ","},
    )
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("bmi;charges\n30,5;1\n31.5;2\n")
    with pytest.raises(TrainingDataError, match="mix decimal marks"):
        read_training_csv(str(mixed), "charges")


# --- any frame written as CSV reads back as written -------------------------------------------
def test_one_example_stalled_by_a_loaded_machine_does_not_fail_a_property() -> None:
    """The property below once failed under load and passed alone: one example took longer than
    hypothesis' default 200 ms deadline (FlakyFailure). tests/conftest.py loads a profile without
    a deadline, so a stall of 0.3 s (ours below) is not a failure; a wrong answer still is."""
    calls = iter(range(1_000))

    @given(st.integers())
    def prop(n: int) -> None:
        if next(calls) == 3:
            time.sleep(0.3)
        assert isinstance(n, int)

    prop()


def _looks_special(text: str) -> bool:
    """Text pandas reads as something else: a number, a boolean, or a missing-value word."""
    t = text.strip().lower()
    try:
        float(t)
        return True
    except ValueError:
        return t in {"true", "false"} or t in {"na", "n/a", "nan", "null", "none", "-nan", "nil"}


_chars = st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")) | st.sampled_from(
    [",", '"', "'", "\n", " ", ";", "$", ">"]
)
_cells = st.text(_chars, min_size=1, max_size=8).filter(lambda t: not _looks_special(t))
_names = st.text(_chars, min_size=1, max_size=10).filter(str.strip)


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(_names, min_size=2, max_size=4, unique=True))
    rows = draw(st.integers(1, 8))
    cols = {}
    for i, name in enumerate(names):
        numeric = draw(st.booleans())
        base = st.floats(-1e12, 1e12, allow_nan=False) if numeric else _cells
        cell = base if i == 0 else st.one_of(st.none(), base)  # the target is never empty
        cols[name] = draw(st.lists(cell, min_size=rows, max_size=rows))
    return pd.DataFrame(cols)


@given(_frames())
def test_any_frame_written_as_csv_reads_back_as_written(frame: pd.DataFrame) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "f.csv"
        src.write_bytes(frame.to_csv(index=False).encode())
        data = read_training_csv(str(src), str(frame.columns[0]))
    got = data.frame
    assert list(got.columns) == list(frame.columns)
    assert len(got) == len(frame)
    for col in frame.columns:
        want, have = frame[col], got[col]
        if col != frame.columns[0] and want.map(lambda v: isinstance(v, str)).any():
            # one spelling per trimmed value (its most frequent; ties: the trimmed one, else
            # the first sorted), and whitespace only is missing
            counts = Counter(v for v in want if isinstance(v, str))

            def pick(v: str, counts: Counter[str] = counts) -> str | None:
                key = v.strip()
                group = {s: n for s, n in counts.items() if s.strip() == key}
                top = sorted(s for s, n in group.items() if n == max(group.values()))
                return (key if key in top else top[0]) if key else None

            want = want.map(lambda v: pick(v) if isinstance(v, str) else v)
        assert have.isna().tolist() == want.isna().tolist(), col
        present = want.notna()
        if present.any() and isinstance(want[present].iloc[0], float):
            # exactly: the card's min/max must be the very values a scoring file holds
            assert have[present].astype(float).tolist() == want[present].astype(float).tolist()
        else:
            assert have[present].tolist() == want[present].tolist(), col
