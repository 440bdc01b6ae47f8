"""The runs under ``scored/``: find them, read their manifests, summarise them for browsing.

``scored/<rel>/<run-id>/manifest.json`` exists only for committed runs, so a listing of
manifests *is* the list of runs. Every name taken from a listing or a URL passes
``layout.check_run_path`` before it becomes part of a storage path.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from scorer import storage
from scorer.errors import BadArgument, DropscoreError
from scorer.layout import MANIFEST, SCORED, RunPath, check_run_path
from scorer.manifest import Manifest


@dataclass(frozen=True, slots=True)
class RunEntry:
    """A run as a listing shows it: where, and when its manifest was written."""

    path: RunPath
    manifest_etag: str
    committed_at: float  # epoch seconds of manifest.json


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the runs table shows for one run (from its manifest)."""

    key: str
    run_id: str
    rel: str
    status: str
    input: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    model: str
    model_version: int | None
    started_at: str
    duration_s: float
    reason: str
    cost_usd: float | None = None  # estimated Fargate cost; None: local, unknown or no price


def month_cost(summaries: Iterable[RunSummary], month: str) -> tuple[float, int, int]:
    """Estimated cost of the runs started in ``month`` (``YYYY-MM``, UTC): (USD, priced runs,
    runs without a figure)."""
    in_month = [s for s in summaries if s.started_at.startswith(month)]
    priced = [s.cost_usd for s in in_month if s.cost_usd is not None]
    return round(sum(priced), 6), len(priced), len(in_month) - len(priced)


def list_runs(bucket: str, scored: str = SCORED) -> list[RunEntry]:
    """Every committed run in the bucket, newest manifest first."""
    prefix = f"s3://{bucket}/{scored}"
    found = []
    for obj in storage.list_objects(prefix):
        rel_key = obj.url[len(prefix) :]
        if not rel_key.endswith("/" + MANIFEST):
            continue
        try:
            path = check_run_path(bucket, rel_key[: -len(MANIFEST) - 1])
        except BadArgument:
            continue  # not laid out by dropscore; never turned into a path
        found.append(RunEntry(path, obj.etag, obj.last_modified))
    found.sort(key=lambda e: (e.committed_at, e.path.key), reverse=True)
    return found


def read_manifest(path: RunPath, scored: str = SCORED) -> Manifest:
    return Manifest.from_json(storage.read_bytes(path.url(scored, MANIFEST)))


def summarise(path: RunPath, manifest: Manifest) -> RunSummary:
    model, inp, version = manifest.model, manifest.input, manifest.model.version
    reason = manifest.reason.message if manifest.status == "failed" and manifest.reason else ""
    return RunSummary(
        key=path.key,
        run_id=path.run_id,
        rel=path.rel,
        status=manifest.status,
        input=inp.key or inp.url or path.rel,
        rows_in=int(manifest.rows_in),
        rows_scored=int(manifest.rows_scored),
        rows_rejected=int(manifest.rows_rejected),
        model=model.name,
        model_version=int(version) if isinstance(version, int | str) and str(version) else None,
        started_at=manifest.started_at,
        duration_s=float(manifest.duration_s),
        reason=reason,
        cost_usd=_usd(manifest.cost.usd),
    )


def _usd(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_many(
    paths: Iterable[RunPath], scored: str = SCORED, workers: int = 16
) -> list[Manifest | None]:
    """Manifests of many runs, fetched in parallel; ``None`` where one cannot be read."""

    def one(path: RunPath) -> Manifest | None:
        try:
            return read_manifest(path, scored)
        except (ValueError, TypeError, DropscoreError):
            return None

    items = list(paths)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(one, items))


def output_url(path: RunPath, manifest: Manifest, name: str, scored: str = SCORED) -> str | None:
    """URL of one of a run's outputs (``predictions`` or ``rejected``) if the run wrote it."""
    if name not in manifest.outputs:
        return None
    return path.url(scored, f"{name}.csv")
