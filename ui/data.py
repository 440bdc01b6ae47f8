"""Everything the pages read, behind Streamlit's caches: models (resources), listings and
manifests (data with a TTL). Arguments are plain strings so cache keys are cheap and explicit."""

from __future__ import annotations

import dataclasses
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from scorer import catalog, layout, schema, storage, validate
from scorer.card import Feature, ModelCard
from scorer.errors import DropscoreError
from scorer.manifest import AlertEntry, Manifest
from scorer.model import LoadedModel
from scorer.promotion import Promotion
from scorer.refs import ModelRef
from scorer.registry import Registry
from ui.formats import fmt_number

LISTING_TTL = 15  # seconds: new models and promotions show up this fast
RUNS_TTL = 3  # seconds: a new run shows up this fast (a listing + only the new manifests)
PREVIEW_ROWS = 500
MB = 1024 * 1024
# a preview reads at most this much of an output (a single row may be many MB) and shows at
# most this many characters of a cell, so a run's page opens in bounded time and memory
PREVIEW_BYTES = 4 * MB
PREVIEW_CELL_CHARS = 300


# --- models --------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def loaded_model(registry: str, name: str, version: int) -> LoadedModel:
    reg = Registry(registry)
    # the model's scoring plan when it has one, as batch runs use it: the same numbers
    # (verified at publish time), loaded without importing PyCaret
    return reg.load(reg.card(name, version), engine="auto")


@st.cache_data(ttl=LISTING_TTL, show_spinner=False)
def model_names(registry: str) -> list[str]:
    return Registry(registry).models()


@st.cache_data(ttl=LISTING_TTL, show_spinner=False)
def versions(registry: str, name: str) -> list[int]:
    return Registry(registry).versions(name)


@st.cache_data(ttl=LISTING_TTL, show_spinner=False)
def aliases(registry: str, name: str) -> dict[str, int]:
    return Registry(registry).aliases(name)


@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def card(registry: str, name: str, version: int) -> ModelCard:
    return Registry(registry).card(name, version)  # versions are immutable


def resolve(registry: str, ref: ModelRef) -> ModelCard:
    if ref.version is not None:
        return card(registry, ref.name, ref.version)
    alias = ref.alias or "production"
    known = aliases(registry, ref.name)
    if alias in known:
        return card(registry, ref.name, known[alias])
    return Registry(registry).resolve(ref)  # raises ModelNotFound with what does exist


def forget_aliases() -> None:
    """After a promotion: the next read sees the new alias (and its history record) at once."""
    aliases.clear()
    history.clear()


@st.cache_data(ttl=LISTING_TTL, show_spinner=False)
def history(registry: str, name: str) -> list[Promotion]:
    return Registry(registry).history(name)


# --- runs ----------------------------------------------------------------------------------------
class _ManifestStore:
    """Manifests are create-only, so one read per (url, etag) is enough for the process."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._items: OrderedDict[tuple[str, str], Manifest | None] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def get_many(self, entries: list[catalog.RunEntry], scored: str) -> list[Manifest | None]:
        keys = [(e.path.url(scored), e.manifest_etag) for e in entries]
        with self._lock:
            missing = [(k, e) for k, e in zip(keys, entries, strict=True) if k not in self._items]
        if missing:
            fetched = catalog.read_many([e.path for _, e in missing], scored)
            with self._lock:
                for (k, _), m in zip(missing, fetched, strict=True):
                    self._items[k] = m
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        with self._lock:
            return [self._items.get(k) for k in keys]


@st.cache_resource
def _store() -> _ManifestStore:
    return _ManifestStore()


@dataclass(frozen=True, slots=True)
class Run:
    """One row of the runs list: the summary and the manifest's alerts (none for manifests
    written before alerts existed: nothing is derived for them)."""

    summary: catalog.RunSummary
    alerts: tuple[AlertEntry, ...]


@st.cache_data(ttl=RUNS_TTL, show_spinner="Listing runs…")
def runs(bucket: str, scored: str) -> list[Run]:
    """Every run, newest first (manifests fetched in parallel, each only once per process)."""
    entries = catalog.list_runs(bucket, scored)
    manifests = _store().get_many(entries, scored)
    found = [
        Run(catalog.summarise(e.path, m), tuple(m.alerts))
        for e, m in zip(entries, manifests, strict=True)
        if m is not None
    ]
    # manifests carry microsecond start times; listings only whole seconds
    return sorted(found, key=lambda r: (r.summary.started_at, r.summary.key), reverse=True)


def refresh_runs() -> None:
    """The Refresh button: the next read lists the bucket again (manifests stay cached)."""
    runs.clear()


def manifest(bucket: str, key: str, scored: str) -> Manifest | None:
    """One run's manifest by its link name, ``None`` if there is no such run (yet)."""
    try:
        return _manifest(bucket, key, scored)
    except storage.ObjectMissing:
        return None  # not cached: the run may be committed a second from now


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _manifest(bucket: str, key: str, scored: str) -> Manifest:
    return catalog.read_manifest(layout.check_run_path(bucket, key), scored)


@dataclass(frozen=True, slots=True)
class Preview:
    """The first records of a CSV as shown on a page: bounded in bytes read and in cell size."""

    frame: pd.DataFrame
    cut_cells: int  # cells shortened to PREVIEW_CELL_CHARS for display
    stopped_early: bool  # the file goes on past PREVIEW_BYTES (or past ``rows`` records)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def csv_preview(
    url: str,
    rows: int = PREVIEW_ROWS,
    max_bytes: int = PREVIEW_BYTES,
    max_cell: int = PREVIEW_CELL_CHARS,
) -> Preview:
    """The first ``rows`` records of a (possibly huge) CSV, read as text without type guessing,
    from at most ``max_bytes`` of it (a record cut by that bound is left out), each cell at
    most ``max_cell`` characters plus '…'. Our outputs hold cells up to the reader's 1 MiB
    limit plus a formula guard, so nothing here relies on the csv module's field limit."""
    with storage.open_read(url) as raw:
        data = raw.read(max_bytes + 1)
    more = len(data) > max_bytes
    text = data[:max_bytes].decode("utf-8", errors="replace")
    if more:
        text = _complete_records(text)
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, nrows=rows + 1, engine="c"
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return Preview(pd.DataFrame(), 0, more)
    more = more or len(frame) > rows
    frame = frame.head(rows)
    long = frame.apply(lambda col: col.str.len() > max_cell) if len(frame) else frame
    cut = int(long.to_numpy().sum()) if len(frame) else 0
    if cut:
        frame = frame.apply(
            lambda col: col.where(col.str.len() <= max_cell, col.str.slice(0, max_cell) + "…")
        )
    return Preview(frame, cut, more)


def _complete_records(text: str) -> str:
    """``text`` up to its last line break outside quotes: RFC 4180 doubles quotes inside a
    quoted cell, so an even number of quotes before a break means the break ends a record."""
    quotes = text.count('"')
    end = len(text)
    while (pos := text.rfind("\n", 0, end)) >= 0:
        quotes -= text.count('"', pos, end)
        if quotes % 2 == 0:
            return text[: pos + 1]
        end = pos
    return ""


def preview_note(preview: Preview, what: str, total: int) -> str:
    """The caption under a preview: how much of the file it shows, and what was cut."""
    note = f"First {len(preview.frame):,} of {total:,} {what} (download for all)"
    if preview.stopped_early and len(preview.frame) < min(total, PREVIEW_ROWS):
        note += f"; the preview stops at the first {PREVIEW_BYTES // MB} MB of the file"
    if preview.cut_cells:
        note += (
            f"; {preview.cut_cells:,} long cell(s) are cut to {PREVIEW_CELL_CHARS} characters "
            "here, the download has every value in full"
        )
    return note


def object_bytes(url: str) -> bytes:
    """Read on demand (download buttons call this only when clicked)."""
    return storage.read_bytes(url)


# --- warnings row by row -------------------------------------------------------------------------
def row_warnings(card: ModelCard, frame: pd.DataFrame, decimal: str = ".") -> pd.DataFrame:
    """Which rows of a predictions preview carry which warning: each row checked again on its
    own by the scorer's validation (the manifest only counts them)."""
    columns = ["row", "column", "warning", "value", "in training"]
    outputs = {*schema.OUTPUT_COLUMNS, *schema.probability_columns(card)}
    inputs = [c for c in frame.columns if c not in outputs]
    try:
        plan = dataclasses.replace(schema.plan_header(inputs, card), decimal=decimal)
    except DropscoreError:
        return pd.DataFrame(columns=columns)  # not laid out as the card says: nothing to show
    where = {f.name: (f, i) for f, i in zip(plan.features, plan.feature_index, strict=True)}
    numbers = frame["row_number"].tolist() if "row_number" in frame else None
    records = frame[inputs].astype(str).to_numpy().tolist()
    found = []
    for i, record in enumerate(records):
        checked = validate.check_batch([record], [i + 1], [i + 2], plan)
        for column, codes in checked.column_warnings.items():
            feat, index = where[column]
            for code in sorted(codes):
                found.append(
                    {
                        "row": int(numbers[i]) if numbers else i + 1,
                        "column": column,
                        "warning": code,
                        "value": record[index],
                        "in training": _training_values(feat),
                    }
                )
    return pd.DataFrame(found, columns=columns)


def _training_values(feat: Feature) -> str:
    if feat.kind == "number":
        low, high = feat.min, feat.max
        return f"{fmt_number(low)} to {fmt_number(high)}" if low is not None else ""
    shown = ", ".join(feat.categories[:8])
    return shown + (f" … ({len(feat.categories)} in all)" if len(feat.categories) > 8 else "")


@st.cache_data(ttl=3600, max_entries=64, show_spinner="Checking the rows…")
def preview_warnings(
    url: str, registry: str, name: str, version: int, decimal: str
) -> pd.DataFrame:
    return row_warnings(card(registry, name, version), csv_preview(url).frame, decimal)
