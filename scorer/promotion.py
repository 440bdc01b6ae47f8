"""Promotion: what changes when an alias moves (candidate vs current) and the record it leaves.

Pure values and functions over model cards: the Models page and ``training promote`` show the
same comparison and warnings, and the registry stores the same record in
``<name>/history/`` (create-only, one object per promotion, never rewritten).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from scorer.card import ModelCard
from scorer.errors import BadArgument

# The metric a promotion is judged by, per task; higher is better for both.
MAIN_METRIC = {"regression": "r2", "classification": "auc"}
NOTE_LIMIT = 2000  # characters; a note says why, it is not a report


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate vs current, as rows for a side-by-side table, and what the viewer must see."""

    rows: tuple[tuple[str, str, str], ...]  # (what, current, candidate)
    warnings: tuple[str, ...]  # candidate worse, metrics not comparable, task/target changed
    added: tuple[str, ...] = ()  # features the candidate needs that the current does not
    removed: tuple[str, ...] = ()  # features the current needs that the candidate does not


@dataclass(frozen=True, slots=True)
class Promotion:
    """One alias move, as stored in the registry's history."""

    model: str
    alias: str
    from_version: int | None  # None: the alias did not exist before
    to_version: int
    by: str
    at: str  # ISO 8601 UTC
    note: str
    warnings: tuple[str, ...] = ()
    card_sha256: str = ""
    model_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer writer added

    @property
    def file_name(self) -> str:
        """``<UTC timestamp>-<alias>-<from>-<to>.json``: names sort in time order."""
        stamp = re.sub(r"[^0-9T.]", "", self.at.split("+")[0]).replace(".", "-") + "Z"
        start = f"v{self.from_version}" if self.from_version is not None else "none"
        return f"{stamp}-{self.alias}-{start}-v{self.to_version}.json"

    @property
    def moved(self) -> str:
        start = f"v{self.from_version}" if self.from_version is not None else "nothing"
        return f"{start} → v{self.to_version}"

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "by": self.by,
            "at": self.at,
            "note": self.note,
            "warnings": list(self.warnings),
            "card_sha256": self.card_sha256,
            "model_sha256": self.model_sha256,
        }
        return json.dumps({**self.extra, **body}, indent=1) + "\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> Promotion:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("a promotion record is a JSON object")
        known = {
            "model", "alias", "from_version", "to_version", "by", "at", "note", "warnings",
            "card_sha256", "model_sha256",
        }  # fmt: skip
        start = raw.get("from_version")
        return cls(
            model=str(raw["model"]),
            alias=str(raw["alias"]),
            from_version=None if start is None else int(start),
            to_version=int(raw["to_version"]),
            by=str(raw.get("by", "")),
            at=str(raw["at"]),
            note=str(raw.get("note", "")),
            warnings=tuple(str(w) for w in raw.get("warnings") or ()),
            card_sha256=str(raw.get("card_sha256", "")),
            model_sha256=str(raw.get("model_sha256", "")),
            extra={k: v for k, v in raw.items() if k not in known},
        )


NO_NOTE = "(no note given)"  # a command-line promotion without --note (the UI requires one)


def check_note(note: str | None) -> str:
    """A promotion's note: required, one to NOTE_LIMIT characters once trimmed."""
    text = (note or "").strip()
    if not text:
        raise BadArgument(
            "a promotion needs a note saying why (e.g. 'retrained on October data; r2 0.84'); "
            "pass --note TEXT or set DROPSCORE_NOTE"
        )
    if len(text) > NOTE_LIMIT:
        raise BadArgument(f"the note has {len(text)} characters; keep it under {NOTE_LIMIT}")
    return text


def compare(current: ModelCard | None, candidate: ModelCard) -> Comparison:
    """Side by side, and the warnings a person promoting ``candidate`` must see."""
    if current is None:
        rows = [(what, "—", value) for what, value in _facts(candidate)]
        return Comparison(tuple(rows), ())
    metrics = list(dict.fromkeys([*current.metrics, *candidate.metrics]))
    rows = [
        (what, a, b) for (what, a), (_, b) in zip(_facts(current), _facts(candidate), strict=True)
    ]
    rows += [
        (m, _metric(current.metrics.get(m)), _metric(candidate.metrics.get(m))) for m in metrics
    ]
    old = set(current.feature_names)
    new = set(candidate.feature_names)
    added = tuple(f for f in candidate.feature_names if f not in old)
    removed = tuple(f for f in current.feature_names if f not in new)
    rows.append(("features added", "", ", ".join(added) or "none"))
    rows.append(("features removed", "", ", ".join(removed) or "none"))
    return Comparison(tuple(rows), tuple(_warnings(current, candidate)), added, removed)


def _warnings(current: ModelCard, candidate: ModelCard) -> list[str]:
    out = []
    a, b = f"v{current.version}", f"v{candidate.version}"
    if current.task != candidate.task or current.target != candidate.target:
        out.append(
            f"{b} predicts {candidate.target!r} ({candidate.task}); {a} predicts "
            f"{current.target!r} ({current.task}): the scored files' predictions change meaning."
        )
        return out  # metrics of different targets say nothing about each other
    metric = MAIN_METRIC[candidate.task]
    old, new = current.metrics.get(metric), candidate.metrics.get(metric)
    if not _finite(old) or not _finite(new):
        which = a if not _finite(old) else b
        out.append(f"{metric} is missing for {which}: cannot tell which is better.")
    elif float(new) < float(old):  # type: ignore[arg-type]
        out.append(
            f"{b} is worse than {a} on {metric}: {_metric(new)} vs {_metric(old)} "
            f"({float(new) - float(old):+.4g})."  # type: ignore[arg-type]
        )
    sha_old = current.training_data.sha256
    sha_new = candidate.training_data.sha256
    if sha_old != sha_new:
        out.append(
            f"The metrics are not directly comparable: {a} and {b} were trained and measured on "
            "different data (training data sha256 differs), so their hold-out rows differ."
        )
    return out


def _facts(card: ModelCard) -> list[tuple[str, str]]:
    data = card.training_data
    sha = data.sha256 or ""
    return [
        ("version", f"v{card.version}"),
        ("created (UTC)", card.created_at[:19].replace("T", " ")),
        ("task", f"{card.task} → {card.target}"),
        ("estimator", card.estimator),
        ("training rows", _count(data.rows)),
        ("training data sha256", f"{sha[:12]}…" if sha else "—"),
        ("training data source", data.source or "—"),
    ]


def _count(value: object) -> str:
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "—"


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _metric(value: object) -> str:
    return f"{float(value):.4g}" if _finite(value) else "—"  # type: ignore[arg-type]
