"""The safety net: score every input under incoming/ that has no terminal manifest yet.

Default: an input counts as done once any model version committed a manifest for that exact
input version. ``--rescore-stale``: only a manifest from the current production version counts
(or, for an input that asks for its model in its metadata, from that model: scorer.pinning).
Then it re-sends the run events of committed runs that owe them and have no ``events.json``
(a crash between commit and emit, an unreachable bus: see ``scorer.notify``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from scorer import cluster, fargate, layout, notify, pinning, runs, service, storage
from scorer.errors import DropscoreError, ObjectMissing
from scorer.layout import ObjectVersion, RunId
from scorer.model import LoadedModel
from scorer.registry import Registry

log = logging.getLogger("dropscore.sweep")


@dataclass(frozen=True, slots=True)
class Pending:
    ref: ObjectVersion
    reason: str  # "no manifest" | "stale"


def list_inputs(bucket: str, incoming: str = layout.INCOMING) -> list[ObjectVersion]:
    """The latest version of every object under incoming/ (CSVs and, to be refused with a
    terminal manifest, any other file; folder markers are not files)."""
    out = [
        ObjectVersion.listed(bucket, v)
        for key, v, is_marker in storage.list_versions(bucket, incoming)
        if not is_marker and v.get("IsLatest") and layout.classify(key, incoming) != layout.IGNORED
    ]
    return sorted(out, key=lambda r: r.key)


def committed_runs(bucket: str, scored: str = layout.SCORED) -> set[tuple[str, str]]:
    """(result folder, run id) of every committed manifest under scored/."""
    done = set()
    for obj in storage.list_objects(f"s3://{bucket}/{scored}"):
        found = layout.run_file(storage.split_s3(obj.url)[1], scored)
        if found is not None and found.name == layout.MANIFEST:
            done.add((found.rel, found.run_id))
    return done


def find_pending(
    inputs: list[ObjectVersion],
    done: set[tuple[str, str]],
    model_name: str,
    model_version: int,
    *,
    rescore_stale: bool,
    incoming: str = layout.INCOMING,
    scored: str = layout.SCORED,
    requested: Mapping[str, tuple[str, int]] | None = None,
) -> list[Pending]:
    """Pure decision: which inputs still need a run. ``requested``: key → the model an input
    asks for in its metadata (``scorer.pinning``), which counts instead of the configured one."""
    by_rel: dict[str, set[str]] = {}
    for rel, run in done:
        by_rel.setdefault(rel, set()).add(run)
    pending = []
    for ref in inputs:
        rel = layout.result_folder(ref.key, incoming, scored)
        runs_there = [r for r in map(RunId.parse, by_rel.get(rel, set())) if r is not None]
        name, version = (requested or {}).get(ref.key, (model_name, model_version))
        current = RunId.of(name, version, ref)
        if current in runs_there:
            continue
        any_model = any(r.same_input(current) for r in runs_there)
        if any_model and not rescore_stale:
            continue
        pending.append(Pending(ref, "stale" if any_model else "no manifest"))
    return pending


def _requested(
    inputs: list[ObjectVersion], model: LoadedModel, registry: Registry
) -> dict[str, tuple[str, int]]:
    """key → the model each input's metadata asks for (the configured one when none)."""
    versions = cache(registry.versions)
    out = {}
    for ref in inputs:
        try:
            info = storage.head(ref.url, ref.version_id)
        except ObjectMissing:
            continue  # gone: score_object ends it as SOURCE_GONE
        choice = pinning.choose(info.metadata, (model.card.name, model.card.version), versions)
        out[ref.key] = (choice.name, choice.version)
    return out


def sweep(
    bucket: str,
    settings: service.Settings,
    *,
    rescore_stale: bool = False,
    concurrency: int = 2,
    workers: fargate.FargateConfig | None = None,
) -> int:
    """``workers``: the stack's Fargate worker configuration, when the sweep runs in the stack:
    workers a killed coordinator left running are stopped first (``fargate.stop_orphans``)."""
    if workers is not None:
        try:
            stopped = fargate.stop_orphans(workers)
        except Exception as exc:  # botocore's errors: the workers' death timeout still ends them
            print(f"warning: orphaned Dask workers not checked: {exc}", file=sys.stderr)
        else:
            if stopped:
                print(f"sweep: stopped {len(stopped)} orphaned Dask worker(s)", file=sys.stderr)
    registry = settings.registry_for(bucket)
    model = service.load_model(registry, settings.model, settings.engine)
    inputs = list_inputs(bucket, settings.incoming)
    done = committed_runs(bucket, settings.scored)

    def decide(requested: Mapping[str, tuple[str, int]] | None = None) -> list[Pending]:
        return find_pending(
            inputs, done, model.card.name, model.card.version, rescore_stale=rescore_stale,
            incoming=settings.incoming, scored=settings.scored, requested=requested,
        )  # fmt: skip

    pending = decide()
    if any(p.reason == "stale" for p in pending):
        # a stale input may have asked for its model: then its run is not stale (one HEAD each)
        pending = decide(_requested([p.ref for p in pending], model, registry))
    log.info(
        "sweep",
        extra={"inputs": len(inputs), "pending": len(pending), "model": model.card.ref},
    )
    failures = 0

    def run(p: Pending) -> bool:
        try:
            with cluster.run_scope():  # --cluster fargate: the workers live as long as the run
                result = service.score_object(p.ref, settings, model=model)
            if result is not None:
                print(f"{p.ref}: {runs.summary_line(result)}", file=sys.stderr)
            return True
        except DropscoreError as exc:
            log.warning(
                "run failed; stays pending",
                extra={"object": str(p.ref), "code": exc.code, "error": exc.message},
            )
            return False

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        failures = sum(1 for ok in pool.map(run, pending) if not ok)
    print(
        f"sweep: {len(inputs)} inputs, {len(pending)} needed a run, "
        f"{len(pending) - failures} committed, {failures} still pending",
        file=sys.stderr,
    )
    sent, unsent = notify.resend_missing(
        bucket, settings.event_bus, settings.ui_url, settings.scored
    )
    if sent or unsent:
        print(f"sweep: re-sent the events of {sent} run(s), {unsent} still unsent", file=sys.stderr)
    return 1 if failures else 0
