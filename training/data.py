"""Read and check a training CSV (local or s3://): refuse what would train silently wrong.

The file is read as the scorer reads files: the dialect by ``scorer.dialect``'s rule, only an
empty cell missing, category spellings as ``scorer.categories`` matches them.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from scorer import categories, dialect, storage
from scorer.errors import FileRefused, InputNotFound, ObjectMissing
from training import profile
from training.errors import TrainingDataError


@dataclass(frozen=True, slots=True)
class TrainingData:
    frame: pd.DataFrame
    sha256: str
    source: str
    dropped_missing_target: int
    dialect: dict[str, str] = field(default_factory=lambda: {"delimiter": ",", "decimal": "."})


def read_training_csv(src: str, target: str) -> TrainingData:
    """Read and check a training CSV (local or s3://); refuses what would train silently wrong."""
    try:
        raw = storage.read_bytes(src)
    except ObjectMissing as exc:
        raise InputNotFound(f"training data '{src}' does not exist; check the path") from exc
    if src.endswith(".gz"):
        import gzip

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise TrainingDataError(f"'{src}' is not a valid gzip file") from exc
    sha = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(
            f"'{src}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from exc
    if not text.strip():
        raise TrainingDataError(f"'{src}' is empty; it needs a header row and data rows")
    sep, decimal = _dialect(text, target, src)
    header = next(csv.reader(io.StringIO(text), delimiter=sep))
    if len(header) < 2:
        raise TrainingDataError(
            f"'{src}' has a single column ('{header[0][:40]}'); it must be comma-separated "
            "with a header row naming the target and at least one feature"
        )
    blank = [str(i + 1) for i, h in enumerate(header) if not h.strip()]
    if blank:
        raise TrainingDataError(
            f"'{src}' has column(s) without a name (position {', '.join(blank)}); name or remove "
            "them (a trailing comma on every line makes one)"
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise TrainingDataError(f"'{src}' repeats the column(s) {dupes}; rename them")
    if target not in header:
        raise TrainingDataError(
            f"target '{target}' is not a column of '{src}'; columns are: {', '.join(header)}"
        )
    _check_field_counts(text, src, len(header), sep)
    try:
        # Only an empty cell is missing, as in the scorer: pandas' default would also read
        # 'NA', 'None', 'null' … as missing, so a category 'None' would train as a gap.
        # round_trip: pandas' fast float parser is off by an ulp now and then, which moves the
        # card's min/max away from the values a scoring file holds.
        frame = pd.read_csv(
            io.StringIO(text),
            dtype_backend="numpy_nullable",
            keep_default_na=False,
            na_values=[""],
            float_precision="round_trip",
            sep=sep,
            decimal=decimal,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # pandas' messages end in newlines; keep one line
        raise TrainingDataError(f"'{src}' is not a readable CSV: {detail}") from exc
    frame = _trim_categories(_plain_dtypes(frame), target)
    _check_missing_markers(frame)
    for col in frame.columns:
        if profile.is_number(frame[col]):
            vals = frame[col].to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(vals).any():
                raise TrainingDataError(f"column '{col}' contains infinite values; remove them")
    missing = int(frame[target].isna().sum())
    frame = frame[frame[target].notna()].reset_index(drop=True)
    return TrainingData(frame, sha, src, missing, {"delimiter": sep, "decimal": decimal})


def _dialect(text: str, target: str, src: str) -> tuple[str, str]:
    """(delimiter, decimal mark) by the scorer's rules (scorer/dialect.py), the target the one
    column the header must name: ';' when only the ';' split of the header names it; then ','
    decimals only when no number cell of the whole file is written with a '.' (both: refused)."""
    line = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    if dialect.delimiter_of(line, [target]) == ",":
        return ",", "."
    cells = pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False)
    columns = {str(c): pa.array(cells[c].to_numpy(dtype=object), pa.string()) for c in cells}
    try:
        return ";", dialect.decimal_mark(columns)
    except FileRefused as exc:
        raise TrainingDataError(f"'{src}': {exc.message}") from exc


_MISSING_WORDS = frozenset({"na", "n/a", "nan", "null", "none", "#n/a", "-nan", "nil", "?", "-"})


def _check_missing_markers(frame: pd.DataFrame) -> None:
    """Refuse a number column that marks gaps with a word: trained as text, scored as a number."""
    for col in frame.columns:
        s = frame[col]
        if profile.is_number(s):
            continue
        text = s.dropna().astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce").notna()
        words = set(text[~numeric].str.lower())
        if numeric.any() and words and words <= _MISSING_WORDS:
            shown = ", ".join(repr(w) for w in sorted(set(text[~numeric]))[:3])
            raise TrainingDataError(
                f"column '{col}' holds numbers but also {shown} in {int((~numeric).sum())} "
                "row(s); leave a missing number empty (the scorer reads only an empty cell as "
                "missing)"
            )


def _check_field_counts(text: str, src: str, width: int, sep: str = ",") -> None:
    """Refuse records with too few or too many fields (pandas silently pads short ones with NaN)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    for record in reader:
        if record and len(record) != width:
            raise TrainingDataError(
                f"'{src}' line {reader.line_num} has {len(record)} field(s) but the header has "
                f"{width}; fix that row (quote values that contain commas)"
            )


def _trim_categories(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Feature text as the scorer matches it (scorer/categories.py): spellings that differ only
    in surrounding whitespace become one (the most frequent: ' Male' stays ' Male' in a table
    written with ', ' separators, so plain PyCaret on that table agrees with the published
    model), and a value that is only whitespace is missing."""
    for col in frame.columns:
        if col == target or profile.is_number(frame[col]):
            continue
        texts = frame[col].map(lambda v: v if isinstance(v, str) else None)
        spelling = categories.one_spelling(texts.value_counts().to_dict())
        frame[col] = [spelling.get(v, np.nan) if isinstance(v, str) else v for v in frame[col]]
    return frame


def _plain_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable dtypes → float64 / object, the types the scorer feeds the pipeline."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(object).map(lambda v: np.nan if pd.isna(v) else str(bool(v)))
        elif pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
        else:
            out[col] = s.astype(object).where(s.notna(), np.nan)
    return pd.DataFrame(out)
