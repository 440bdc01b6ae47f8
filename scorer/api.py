"""The Python API: score a DataFrame with a model from the registry, with exactly the batch's
validation, reasons, warnings and alerts.

    import pandas as pd
    import scorer

    model = scorer.load_model("claims", registry="s3://dropscore/models")  # or NAME@2, NAME:staging
    scored = scorer.score_frame(pd.read_parquet("claims.parquet"), model)
    scored.predictions  # the scored rows: their input columns + row_number, prediction (, score)
    scored.rejected  # row_number, line, column, code, message, raw — why a row was not scored
    scored.manifest  # status, counts, warnings_by_code, alerts … as in a batch's manifest.json

A frame is scored as the CSV file it would be: each cell becomes the text a CSV holds (missing →
empty, floats at full precision, whole numbers without '.0', text as it is), and that text goes
through the batch's own reader, header check, validation, prediction and output formatting. So a
missing column is refused with MISSING_COLUMNS and '31,4' in a number column is rejected as
WRONG_TYPE, exactly as in a dropped file; ``row_number`` is the row's position in the frame (1 =
first), and both result frames keep the frame's index.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scorer import layout, output, runs, service, storage
from scorer.batches import Totals, score_batch
from scorer.drift import Distributions
from scorer.manifest import InputEntry, Manifest
from scorer.model import LoadedModel
from scorer.reader import CsvStream
from scorer.registry import Registry
from scorer.schema import plan_header
from scorer.tally import account, collect, refuse_empty

__all__ = ["LoadedModel", "Scored", "ScoredFile", "load_model", "score_file", "score_frame"]


def load_model(ref: str, registry: str, engine: str = "auto") -> LoadedModel:
    """A model from a registry (a directory or ``s3://…/models``): ``NAME`` (its production
    alias), ``NAME@VERSION`` or ``NAME:ALIAS``. model.pkl is loaded only after its sha256
    matches the card. ``engine``: ``auto`` | ``plan`` | ``pipeline``, as ``--engine``."""
    return service.load_model(Registry(registry), ref, engine)


@dataclass(frozen=True, slots=True)
class Scored:
    """A scored frame: what predictions.csv, rejected.csv and manifest.json would hold."""

    predictions: pd.DataFrame  # scored rows: the frame's columns + row_number + prediction (…)
    rejected: pd.DataFrame  # row_number, line, column, code, message, raw
    manifest: Manifest  # status, rows_in/scored/rejected, *_by_code, alerts, distributions

    @property
    def status(self) -> str:
        return self.manifest.status


@dataclass(frozen=True, slots=True)
class ScoredFile:
    """A scored CSV file's outputs as bytes, exactly as a batch run writes them."""

    manifest: Manifest
    predictions: bytes | None  # None when nothing was scored
    rejected: bytes | None  # None when no row was rejected


def score_frame(
    frame: pd.DataFrame, model: LoadedModel, *, max_rejected_rate: float | None = None
) -> Scored:
    """Score a DataFrame as the batch scores a file (see the module docstring).

    FileRefused (with the batch's code, e.g. MISSING_COLUMNS, DUPLICATE_HEADER,
    RESERVED_COLUMN, HEADER_ONLY for an empty frame): the frame cannot be scored at all.
    A frame whose every row is rejected (ALL_ROWS_REJECTED) or more than
    ``max_rejected_rate`` of them (TOO_MANY_REJECTED) comes back with status ``failed``, its
    reason in ``manifest.reason`` and the rows in ``rejected``.
    """
    manifest, predictions, rejected = score_csv(frame_to_csv(frame), model, max_rejected_rate)
    return Scored(
        predictions=_predictions_frame(frame, predictions, model),
        rejected=_rejected_frame(frame, rejected),
        manifest=manifest,
    )


def score_csv(
    data: bytes, model: LoadedModel, max_rejected_rate: float | None = None
) -> tuple[Manifest, bytes, bytes]:
    """CSV bytes scored in memory by the batch's code: (manifest, predictions.csv,
    rejected.csv). FileRefused: the file cannot be scored at all."""
    card = model.card
    stream = CsvStream(io.BytesIO(data), len(data), batch_size=runs.BATCH_ROWS)
    plan = plan_header(stream.header, card)
    columns = output.prediction_columns(plan.header, card)
    predictions = [output.header_line(columns)]
    rejected = [output.header_line(list(output.REJECTED_HEADER))]
    totals = Totals()
    dist = Distributions(card)
    results = (score_batch(batch, model, plan) for batch in stream.batches())
    collect(results, predictions.append, rejected.append, totals, dist)
    counts = account(card, plan, stream.rows_read, totals, dist, max_rejected_rate)
    refuse_empty(counts)
    manifest = Manifest(
        run_id="",
        input=InputEntry(
            bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), keys=("bytes", "sha256")
        ),
        model=runs.model_entry(model),
        **counts.as_fields(),
    )
    return manifest, b"".join(predictions), b"".join(rejected)


def score_file(
    content: bytes,
    model: LoadedModel,
    *,
    name: str = "upload.csv",
    progress: runs.Progress | None = None,
    batch_rows: int = runs.BATCH_ROWS,
    max_rejected_rate: float | None = None,
) -> ScoredFile:
    """A whole CSV (or CSV.gz) file scored by a batch run into a temporary folder: the same
    manifest (a refused file included: status ``failed`` with its reason), the same bytes."""
    suffix = ".csv.gz" if name.lower().endswith(".gz") else ".csv"
    with tempfile.TemporaryDirectory(prefix="dropscore-api-") as tmp:
        src = Path(tmp) / f"input{suffix}"  # never the caller's file name
        src.write_bytes(content)
        out = str(Path(tmp) / "out")
        card = model.card
        run_id = str(layout.RunId.of(card.name, card.version, service.local_version(str(src))))
        result = runs.score(
            layout.ObjectVersion("", str(src)),
            out,
            model,
            run_id,
            info=storage.head(str(src)),
            progress=progress,
            batch_rows=batch_rows,
            max_rejected_rate=max_rejected_rate,
        )
        # the temporary path means nothing to the caller
        manifest = replace(result.manifest, input=replace(result.manifest.input, url=name))

        def read(file: str, key: str) -> bytes | None:
            path = Path(out) / file
            return path.read_bytes() if key in manifest.outputs and path.exists() else None

        return ScoredFile(
            manifest, read(layout.PREDICTIONS, "predictions"), read(layout.REJECTED, "rejected")
        )


# --- a frame as CSV text -------------------------------------------------------------------------
def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as the CSV file a person would save: one text cell per value (see ``cell``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    cells = [_column_cells(frame.iloc[:, j]) for j in range(frame.shape[1])]
    writer.writerows(zip(*cells, strict=True) if cells else ([] for _ in range(len(frame))))
    return buf.getvalue().encode("utf-8")


def _column_cells(column: pd.Series) -> Iterable[str]:
    if pd.api.types.is_float_dtype(column.dtype):  # the common case, without a call per cell
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return ["" if math.isnan(v) else repr(v) for v in values.tolist()]
    return [cell(v) for v in column.tolist()]


def cell(value: Any) -> str:
    """One value as CSV text: missing (None, NaN, NaT, pd.NA) → empty; a float → the shortest
    text that reads back as the same float (``repr``: no precision lost; ``inf`` stays 'inf',
    which the batch rejects as NON_FINITE); an integer → digits without '.0'; text as it is."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    if isinstance(value, Decimal):
        return "" if value.is_nan() else str(value)
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    return str(value)


# --- outputs back as frames ----------------------------------------------------------------------
def _read(data: bytes) -> pd.DataFrame:
    """An output file as text cells (the csv module: cheaper than pandas for a few rows)."""
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8")))
    return pd.DataFrame(rows, columns=header, dtype=object)


def _predictions_frame(frame: pd.DataFrame, data: bytes, model: LoadedModel) -> pd.DataFrame:
    """The scored rows as the frame gave them (not the spreadsheet-safe text of the file), then
    the output columns the batch adds, as numbers (class labels keep the target's type)."""
    scored = _read(data)
    added = scored.iloc[:, frame.shape[1] :]
    positions = added["row_number"].astype(np.int64).to_numpy() - 1
    out = frame.iloc[positions].copy()
    for name in added.columns:
        col = added[name]
        if name == "prediction" and model.card.task == "classification":
            # labels keep the target's type: a 0/1 target gives 0/1, not '0'/'1'
            out[name] = col.astype(
                np.int64 if model.card.label_type == "int" else object
            ).to_numpy()
        elif name == "row_number":
            out[name] = col.astype(np.int64).to_numpy()
        else:
            out[name] = pd.to_numeric(col).to_numpy()
    return out


def _rejected_frame(frame: pd.DataFrame, data: bytes) -> pd.DataFrame:
    rejected = _read(data)
    for name in ("row_number", "line"):
        rejected[name] = rejected[name].astype(np.int64)
    rejected.index = frame.index[rejected["row_number"].to_numpy() - 1]
    return rejected
