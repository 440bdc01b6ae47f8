"""Score a file: an upload validated and scored by the batch code, previewed, downloadable,
and optionally sent to the bucket so the batch path scores it too."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import streamlit as st

from scorer import api, layout, pinning, service, storage
from scorer.card import ModelCard
from scorer.codes import Code
from scorer.errors import BadArgument, FileRefused
from scorer.manifest import Manifest, Reason
from scorer.model import LoadedModel
from scorer.schema import OUTPUT_COLUMNS
from ui import data, state, widgets
from ui.settings import UISettings

PREVIEW_ROWS = 200
MB = 1024 * 1024
UPLOADS = "uploads/"  # under incoming/: where "send to the bucket" puts files
LIMITS = "score.limits"  # (upload file id, refusal or None): the limit check of that upload


class TooManyRows(FileRefused):
    """An upload has more rows than this app scores interactively."""

    code = Code.TOO_MANY_ROWS


@dataclass(frozen=True, slots=True)
class Scored:
    upload: str  # uploader file id + model ref: one result per pair
    name: str  # the upload's file name, for display and downloads
    suffix: str  # ".csv" or ".csv.gz"
    manifest: Manifest
    predictions: bytes | None
    rejected: bytes | None
    manifest_json: bytes


def safe_stem(file_name: str) -> tuple[str, str]:
    """(stem, suffix) of an uploaded file's name, reduced to characters safe in an S3 key."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    lower = base.lower()
    suffix = next((s for s in layout.SUFFIXES if lower.endswith(s)), "")
    if not suffix:
        raise BadArgument(f"'{base[:80]}' is not a .csv or .csv.gz file")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", base[: -len(suffix)]).strip("-._")[:80]
    return stem or "upload", suffix


def upload_key(settings: UISettings, file_name: str, now: dt.datetime) -> str:
    """A fresh key under incoming/uploads/: never overwrites anyone else's upload."""
    stem, suffix = safe_stem(file_name)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    return f"{settings.incoming}{UPLOADS}{stem}-{stamp}-{secrets.token_hex(3)}{suffix}"


def over_limits(
    name: str, size: int, content: Callable[[], bytes], settings: UISettings
) -> str | None:
    """Why an upload is refused before any work: its size, then its rows by a cheap count
    (the csv module stops one record past the limit); ``None`` when it is within both."""
    where = f"Put bigger files into the bucket's {settings.incoming} instead."
    if size > settings.max_mb * MB:
        return (
            f"{widgets.md(name)} is {size / MB:,.1f} MB; uploads here are limited to "
            f"{settings.max_mb:,} MB. {where}"
        )
    if count_records(content(), settings.max_rows + 1) > settings.max_rows:
        return (
            f"{widgets.md(name)} has more than {settings.max_rows:,} rows, the limit for "
            f"uploads here. {where}"
        )
    return None


def count_records(content: bytes, stop: int) -> int:
    """Data records of a CSV or CSV.gz (header and blank lines not counted), up to ``stop``."""
    raw: IO[bytes] = io.BytesIO(content)
    if content[:2] == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw)
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    count = -1  # the header
    try:
        for record in csv.reader(text):
            count += bool(record)
            if count >= stop:
                break
    except (OSError, EOFError, csv.Error):
        pass  # a broken file: the scorer refuses it with its reason
    return max(count, 0)


def render() -> None:
    settings = state.settings()
    st.title("Score a file")
    st.caption(
        "Upload a CSV: it is validated and scored by the same code as a batch run — the same "
        "manifest, the same rejected rows with their reasons. "
        f"Up to {settings.max_mb} MB and {settings.max_rows:,} rows; drop bigger files into the "
        "bucket."
    )
    choice = widgets.model_picker(settings, key="score")
    st.markdown(widgets.describe_card(choice.card))
    uploaded = st.file_uploader(
        "CSV file (.csv or .csv.gz, comma-separated, with a header row)",
        type=["csv", "gz"],
        max_upload_size=settings.max_mb,
        key="score.upload",
    )
    if uploaded is None:
        with st.expander("Columns the model needs"):
            st.write(", ".join(f"`{n}`" for n in choice.card.feature_names))
        return
    checked = st.session_state.get(LIMITS)  # once per upload, not on every rerun
    if checked is None or checked[0] != uploaded.file_id:
        refusal = over_limits(uploaded.name, uploaded.size, uploaded.getvalue, settings)
        st.session_state[LIMITS] = checked = (uploaded.file_id, refusal)
    if checked[1] is not None:
        st.error(checked[1], icon=":material/block:")
        return
    _, suffix = safe_stem(uploaded.name)
    upload_id = f"{uploaded.file_id}:{choice.card.ref}"
    result: Scored | None = st.session_state.get(state.SCORE_RESULT)
    if result is None or result.upload != upload_id:
        if st.button(f"Score with {choice.card.ref}", type="primary", icon=":material/bolt:"):
            model = data.loaded_model(settings.registry, choice.card.name, choice.card.version)
            result = _score(upload_id, uploaded.name, suffix, uploaded.getvalue(), model, settings)
            st.session_state[state.SCORE_RESULT] = result
            st.session_state.pop(state.SENT_UPLOAD, None)
        else:
            return
    _show(result)
    _send(settings, uploaded.name, uploaded.getvalue(), upload_id, choice.card)


def _score(
    upload_id: str,
    name: str,
    suffix: str,
    content: bytes,
    model: LoadedModel,
    settings: UISettings,
) -> Scored:
    bar = st.progress(0.0, text="Reading the file…")
    total = max(len(content), 1)

    def progress(bytes_read: int, rows: int) -> None:
        if rows > settings.max_rows:
            raise TooManyRows(
                f"the file has more than {settings.max_rows:,} rows, the limit for uploads "
                f"here; put it into the bucket's {settings.incoming} to score it as a batch"
            )
        bar.progress(min(bytes_read / total, 1.0), text=f"Scored {rows:,} rows…")

    # the Python API's file path: a batch run into a temporary folder, the same manifest
    result = api.score_file(content, model, name=name, progress=progress, batch_rows=8192)
    manifest = widgets.without_server_paths(result.manifest)  # it is downloadable
    scored = Scored(
        upload=upload_id,
        name=name,
        suffix=suffix,
        manifest=manifest,
        predictions=result.predictions,
        rejected=result.rejected,
        manifest_json=manifest.to_json().encode(),
    )
    bar.empty()
    return scored


def _show(result: Scored) -> None:
    m = result.manifest
    major = any(a.level == "major" for a in m.alerts)
    if m.status == "ok" and major:  # scored, but not like the data the model learned from
        st.warning(
            f"All {m.rows_in:,} rows scored, with alerts: this file does not look like the "
            "training data — see below.",
            icon=":material/notifications:",
        )
    elif m.status == "ok":
        st.success(f"All {m.rows_in:,} rows scored.", icon=":material/check_circle:")
    elif m.status == "partial":
        st.warning(
            f"{m.rows_scored:,} of {m.rows_in:,} rows scored; {m.rows_rejected:,} rejected — "
            "see each row's reason below.",
            icon=":material/warning:",
        )
    else:
        reason = m.reason or Reason("FAILED", "")
        st.error(
            f"Not scored ({reason.code}): {widgets.md(reason.message)}",
            icon=":material/error:",
        )
    if m.alerts:
        st.markdown(widgets.alerts_markdown(m.alerts))
    cols = st.columns(4)
    cols[0].metric("Rows in", f"{m.rows_in:,}")
    cols[1].metric("Scored", f"{m.rows_scored:,}")
    cols[2].metric("Rejected", f"{m.rows_rejected:,}")
    cols[3].metric("Time", f"{m.duration_s:.2f} s")
    stem = Path(safe_stem(result.name)[0]).name
    downloads = st.columns(3)
    if result.predictions is not None:
        downloads[0].download_button(
            "Predictions CSV", result.predictions, f"{stem}-predictions.csv", "text/csv",
            icon=":material/download:", key="score.dl.predictions",
        )  # fmt: skip
    if result.rejected is not None:
        downloads[1].download_button(
            "Rejected rows CSV", result.rejected, f"{stem}-rejected.csv", "text/csv",
            icon=":material/download:", key="score.dl.rejected",
        )  # fmt: skip
    downloads[2].download_button(
        "Manifest JSON", result.manifest_json, f"{stem}-manifest.json", "application/json",
        icon=":material/download:", key="score.dl.manifest",
    )  # fmt: skip
    tabs = st.tabs(["Preview", f"Rejected rows ({m.rows_rejected:,})", "Warnings", "Manifest"])
    with tabs[0]:
        if result.predictions is None:
            st.info("No predictions: no row could be scored.")
        else:
            frame = _csv(result.predictions, PREVIEW_ROWS)
            st.caption(f"First {min(len(frame), PREVIEW_ROWS):,} of {m.rows_scored:,} rows")
            preview_table(frame)
    with tabs[1]:
        if result.rejected is None:
            st.info("No rows were rejected.")
        else:
            if m.rejected_by_code:
                st.dataframe(
                    pd.DataFrame(
                        {
                            "reason": list(m.rejected_by_code),
                            "rows": list(m.rejected_by_code.values()),
                        }
                    ),
                    hide_index=True,
                    width="content",
                )
            st.dataframe(_csv(result.rejected, 1000), hide_index=True)
    with tabs[2]:
        show_warnings(m)
    with tabs[3]:
        st.json(m.to_json(), expanded=False)


ROWS_CONFIG = {"rows": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT)}


def show_warnings(m: Manifest) -> None:
    if m.alerts:
        st.dataframe(
            pd.DataFrame(
                {
                    "alert": [a.code for a in m.alerts],
                    "level": [a.level for a in m.alerts],
                    "what": [a.message for a in m.alerts],
                }
            ),
            hide_index=True,
        )
    if not m.warnings_by_code:
        st.info("No warnings: every value was inside what the model saw in training.")
        return
    st.dataframe(
        pd.DataFrame(
            {"warning": list(m.warnings_by_code), "rows": list(m.warnings_by_code.values())}
        ),
        hide_index=True,
        width="content",
        column_config=ROWS_CONFIG,
    )
    if m.warnings_by_column:
        rows = [
            {"column": col, "warning": code, "rows": n}
            for col, codes in m.warnings_by_column.items()
            for code, n in codes.items()
        ]
        st.dataframe(
            pd.DataFrame(rows), hide_index=True, width="content", column_config=ROWS_CONFIG
        )
    if m.extra_columns:
        st.caption("Extra columns passed through untouched: " + ", ".join(m.extra_columns))


def preview_table(frame: pd.DataFrame) -> None:
    """Predictions first, as numbers; the input columns after them, exactly as given."""
    outputs = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    columns = list(frame.columns)
    # predictions.csv ends with prediction_score and then the per-class probability columns
    # (input columns come first and may not use these names), so no card is needed here
    probas = columns[columns.index("prediction_score") + 1 :] if "prediction_score" in frame else []
    outputs += probas
    config = {}
    for column in ("prediction", "prediction_score", *probas):
        numbers = pd.to_numeric(frame.get(column), errors="coerce") if column in frame else None
        if numbers is not None and numbers.notna().all():
            frame[column] = numbers
            fmt = widgets.number_format(numbers) if column == "prediction" else "percent"
            config[column] = st.column_config.NumberColumn(format=fmt)
    order = outputs + [c for c in frame.columns if c not in outputs]
    st.dataframe(frame, hide_index=True, column_order=order, column_config=config)


def _csv(content: bytes, rows: int) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, nrows=rows)


def _send(settings: UISettings, name: str, content: bytes, upload_id: str, card: ModelCard) -> None:
    """Upload under incoming/ with the previewed version in its metadata, so the batch path
    scores it with that version (scorer.pinning) and the link names the run that will exist."""
    st.divider()
    st.subheader("Send to the bucket", anchor=False)
    st.caption(
        f"Puts the file under s3://{settings.bucket}/{settings.incoming}{UPLOADS}; the batch "
        f"path scores it with {widgets.md(card.ref)} — the version previewed above, whatever "
        "production is by then — and keeps the result in Runs."
    )
    sent = st.session_state.get(state.SENT_UPLOAD)
    if sent is None or sent[0] != upload_id:
        if not st.button("Send to the bucket", icon=":material/cloud_upload:"):
            return
        key = upload_key(settings, name, dt.datetime.now(dt.UTC))
        url = f"s3://{settings.bucket}/{key}"
        storage.write_bytes(
            url, content, create_only=True, metadata=pinning.metadata_for(card.name, card.version)
        )
        info = storage.head(url)
        obj = layout.ObjectVersion.of(settings.bucket, key, info.version_id, info.etag)
        run_key = service.run_path(obj, card.name, card.version, _scorer_settings(settings))
        sent = (upload_id, key, run_key)
        st.session_state[state.SENT_UPLOAD] = sent
    _, key, run_key = sent
    st.success(
        f"Sent to s3://{settings.bucket}/{key}, to be scored with {widgets.md(card.ref)}. Its run "
        "appears in Runs within seconds once the batch scorer has picked it up.",
        icon=":material/cloud_done:",
    )
    st.page_link(
        state.page("runs"), label="Open its run", icon=":material/open_in_new:",
        query_params={"run": run_key},
    )  # fmt: skip


def _scorer_settings(settings: UISettings) -> service.Settings:
    return service.Settings(
        registry=settings.registry, incoming=settings.incoming, scored=settings.scored
    )
