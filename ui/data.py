"""Everything the pages read, behind Streamlit's caches: models (resources), listings and
manifests (data with a TTL). Arguments are plain strings so cache keys are cheap and explicit."""

from __future__ import annotations

import codecs
import csv
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import IO

import pandas as pd
import streamlit as st

from scorer import catalog, storage
from scorer.card import ModelCard
from scorer.manifest import Manifest
from scorer.refs import ModelRef
from scorer.registry import LoadedModel, Registry

LISTING_TTL = 15  # seconds: new runs and promotions show up this fast
PREVIEW_ROWS = 500


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
    """After a promotion: the next read sees the new alias at once."""
    aliases.clear()


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


@st.cache_data(ttl=LISTING_TTL, show_spinner="Listing runs…")
def runs(bucket: str, scored: str) -> list[catalog.RunSummary]:
    """Every run, newest first (manifests fetched in parallel, each only once per process)."""
    entries = catalog.list_runs(bucket, scored)
    manifests = _store().get_many(entries, scored)
    found = [
        catalog.summarise(e.path, m)
        for e, m in zip(entries, manifests, strict=True)
        if m is not None
    ]
    # manifests carry microsecond start times; listings only whole seconds
    return sorted(found, key=lambda s: (s.started_at, s.key), reverse=True)


def manifest(bucket: str, key: str, scored: str) -> Manifest | None:
    """One run's manifest by its link name, ``None`` if there is no such run (yet)."""
    try:
        return _manifest(bucket, key, scored)
    except storage.ObjectMissing:
        return None  # not cached: the run may be committed a second from now


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _manifest(bucket: str, key: str, scored: str) -> Manifest:
    return catalog.read_manifest(catalog.check_run_path(bucket, key), scored)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def csv_preview(url: str, rows: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The first ``rows`` records of a (possibly huge) CSV, read as text without type guessing."""
    with storage.open_read(url) as raw:
        reader = csv.reader(_lines(raw))
        header = next(reader, [])
        records = []
        for record in reader:
            records.append(record[: len(header)] + [""] * (len(header) - len(record)))
            if len(records) >= rows:
                break
    return pd.DataFrame(records, columns=header, dtype=str)


def _lines(raw: IO[bytes], chunk: int = 1 << 16) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while data := raw.read(chunk):
        pending += decoder.decode(data)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def object_bytes(url: str) -> bytes:
    """Read on demand (download buttons call this only when clicked)."""
    return storage.read_bytes(url)
