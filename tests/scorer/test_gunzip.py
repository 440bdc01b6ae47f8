"""The one gzip decompressor (scorer/gunzip.py) and the per-file budget (scorer/budget.py):
members, padding, garbage, truncation, bombs, bounded output; and what a run makes of them."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer import gunzip, runs, storage
from scorer.budget import Budget, Limits
from scorer.counting import count_records
from scorer.errors import FileRefused
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel

CSV = b"age,sex,bmi,children,smoker,region\n" + b"40,female,29.67,1,no,northwest\n" * 50


def decompress(data: bytes, n: int = gunzip.READ_SIZE, **kw: int) -> bytes:
    g = gunzip.Gunzip(io.BytesIO(data).read, **kw)
    out = []
    while piece := g.read(n):
        assert len(piece) <= n  # output comes in bounded pieces, whatever the input
        out.append(piece)
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=12),
    n=st.integers(1, 5000),
    level=st.integers(0, 9),
)
def test_any_concatenation_of_members_reads_back_exactly(
    parts: list[bytes], n: int, level: int
) -> None:
    data = b"".join(gzip.compress(p, compresslevel=level, mtime=0) for p in parts)
    assert decompress(data, n) == b"".join(parts) == gzip.decompress(data)


def test_members_across_read_and_slice_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gunzip, "READ_SIZE", 7)
    monkeypatch.setattr(gunzip, "SLICE", 3)
    parts = [CSV[:100], b"", CSV[100:], CSV]
    data = b"".join(gzip.compress(p, mtime=0) for p in parts)
    assert decompress(data, 11) == b"".join(parts)


@pytest.mark.parametrize("zeros", [1, 512, 10_000], ids=["1 zero", "512 zeros", "10,000 zeros"])
def test_trailing_zero_padding_is_ignored_like_gzip_does(zeros: int) -> None:
    data = gzip.compress(CSV) + gzip.compress(CSV) + b"\x00" * zeros
    g = gunzip.Gunzip(io.BytesIO(data).read)
    assert g.read(1 << 30) == CSV + CSV
    assert g.read() == b""
    assert g.trailing_zeros == zeros


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(CSV) + b"garbage",
        gzip.compress(CSV) + b"\x00" * 100 + b"x",
        gzip.compress(CSV) + b"\x00" * 10 + gzip.compress(CSV),
        gzip.compress(CSV)[:-3],
        gzip.compress(CSV) + gzip.compress(CSV)[:5],
        b"\x1f\x8b\x08\x00" + b"garbage" * 10,
        b"\x1f\x8b",
    ],
    ids=[
        "garbage after a member",
        "zeros then garbage",
        "a member after zero padding",
        "the last member truncated",
        "a second member's header cut off",
        "corrupt deflate data",
        "nothing but the magic",
    ],
)
def test_anything_else_after_or_inside_the_data_is_refused_as_corrupt(data: bytes) -> None:
    with pytest.raises(FileRefused) as err:
        decompress(data)
    assert err.value.code == "GZIP_CORRUPT"
    assert err.value.exit_code == 2


def test_a_bomb_is_refused_with_at_most_one_piece_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gunzip, "BOMB_FLOOR", 1 << 20)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = z.compress(CSV + b"0" * (64 << 20)) + z.flush()
    g = gunzip.Gunzip(io.BytesIO(data).read)

    def drain() -> None:
        while g.read(1 << 16):
            pass

    with pytest.raises(FileRefused) as err:
        drain()
    assert err.value.code == "DECOMPRESSION_BOMB"
    assert g.bytes_out <= (1 << 20) + (1 << 16)  # refused at the floor, one piece past it


def test_the_absolute_cap_refuses_any_ratio() -> None:
    data = gzip.compress(CSV * 100)
    assert decompress(data, max_out=len(CSV) * 100) == CSV * 100
    with pytest.raises(FileRefused) as err:
        decompress(data, max_out=len(CSV) * 100 - 1)
    assert err.value.code == "DECOMPRESSION_BOMB"


def test_the_checker_counts_padded_and_many_member_files_like_the_scorer() -> None:
    rows = CSV.count(b"\n") - 1
    many = gzip.compress(CSV[:36]) + b"".join(gzip.compress(CSV[36:]) for _ in range(2000))
    assert count_records(io.BytesIO(many)) == rows * 2000
    assert count_records(io.BytesIO(gzip.compress(CSV) + b"\x00" * 4096)) == rows
    with pytest.raises(FileRefused):
        count_records(io.BytesIO(gzip.compress(CSV) + b"trailing garbage"))


def _score(tmp_path: Path, model: LoadedModel, name: str, data: bytes) -> runs.RunResult:
    src = tmp_path / name
    src.write_bytes(data)
    return runs.score(
        ObjectVersion("", str(src)),
        str(tmp_path / f"out-{name}"),
        model,
        "claims-v1-0000000000000000",
        info=storage.head(str(src)),
    )


def test_a_zero_padded_gzip_scores_like_the_unpadded_file_with_a_warning(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    plain = gzip.compress(CSV)
    a = _score(tmp_path, claims_model, "a.csv.gz", plain).manifest
    b = _score(tmp_path, claims_model, "b.csv.gz", plain + b"\x00" * 1000).manifest
    assert (b.status, b.rows_in, b.rows_scored) == ("ok", 50, 50) == (a.status, a.rows_in, 50)
    assert b.outputs["predictions"].sha256 == a.outputs["predictions"].sha256
    assert b.warnings_by_code.get("GZIP_TRAILING_ZEROS") == 1000
    assert "GZIP_TRAILING_ZEROS" not in a.warnings_by_code
    assert b.input.bytes == len(plain) + 1000


# --- the budget ---------------------------------------------------------------------------------
def test_the_budget_refuses_past_its_cpu_time_and_size() -> None:
    now = [10.0]
    budget = Budget(Limits(max_input_mb=1, max_cpu_seconds=2), cpu=lambda: now[0])
    budget.check(1 << 20)
    now[0] = 12.0
    budget.check()  # exactly the budget is still within it
    with pytest.raises(FileRefused) as err:
        budget.check((1 << 20) + 1)
    assert err.value.code == "TOO_LARGE"
    now[0] = 12.5
    with pytest.raises(FileRefused) as err:
        budget.check()
    assert err.value.code == "BUDGET_EXCEEDED"
    assert err.value.exit_code == 2
    with pytest.raises(FileRefused, match="larger than 1 MB"):
        budget.check_size(2 << 20)
    budget.check_size(None)  # an unknown size is checked while reading


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "lots", ""])
def test_limits_must_be_positive_numbers(text: str) -> None:
    from scorer.errors import BadArgument

    with pytest.raises(BadArgument):
        Limits.parse(text, "1", "1")
