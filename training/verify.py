"""The scoring plan a training run publishes: compiled from the pipeline as published, then
verified against that pipeline on the hold-out rows and edge rows before it is written."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scorer.card import Feature, Task
from scorer.errors import PlanUnsupported
from scorer.evaluator import Evaluator
from scorer.plan import TOLERANCE, EstimatorHead, LogisticHead, ModelShape, Plan
from scorer.plan import Input as PlanInput
from training.compile import compile_model

log = logging.getLogger("dropscore.training")

PLAN_EDGE_ROWS = 25  # hold-out rows each edge case (unseen, missing, far out) is applied to


@dataclass(frozen=True, slots=True)
class PlanExport:
    """A verified scoring plan for the published pipeline, or why there is none."""

    blob: bytes | None
    card_entry: dict[str, Any] | None
    note: str
    files: dict[str, bytes] = field(default_factory=dict)  # published beside plan.json


def export_plan(
    model_bytes: bytes,
    task: Task,
    features: tuple[Feature, ...],
    classes: tuple[str, ...],
    holdout: pd.DataFrame,
    progress: Callable[[str], None],
) -> PlanExport:
    """Compile the pipeline as published (unpickled from its bytes) into a scoring plan and
    verify it on the hold-out rows plus edge rows. Never raises: without a plan the scorer
    simply uses the pipeline."""
    import joblib

    try:
        pipeline = joblib.load(io.BytesIO(model_bytes))
        shape = ModelShape(task, tuple(PlanInput(f.name, f.kind) for f in features), classes)
        compiled = compile_model(pipeline, shape)
        blob = compiled.plan.to_json()
        plan = Plan.from_json(blob)
        head = plan.head
        estimator = None
        if isinstance(head, EstimatorHead):  # checked as the scorer will load it: from its bytes
            estimator = joblib.load(io.BytesIO(compiled.files[head.file]))
        checked = verify(Evaluator(plan, estimator), pipeline, plan_check_frame(features, holdout))
    except PlanUnsupported as exc:
        progress(f"no scoring plan (the pipeline will score): {exc.reason}")
        return PlanExport(None, None, f"not exported: {exc.reason}")
    except Exception as exc:  # a plan is an optimisation: it must never fail a training run
        log.warning("scoring plan export failed", exc_info=True)
        progress(f"no scoring plan (the pipeline will score): {type(exc).__name__}: {exc}")
        return PlanExport(None, None, f"not exported: {type(exc).__name__}: {exc}")
    progress(
        f"scoring plan exported: matches the pipeline on {checked['rows']} check rows "
        f"(max relative difference {checked['max_rel_diff']:.3g})"
    )
    entry: dict[str, Any] = {
        "format": plan.format,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "verified": checked,
    }
    note = f"exported, verified on {checked['rows']} hold-out and edge rows"
    if isinstance(head, EstimatorHead):
        entry["estimator"] = {"class": head.estimator, "file": head.file, "sha256": head.sha256}
        short = head.estimator.rsplit(".", 1)[-1]
        note = note.replace("exported", f"exported (numpy preprocessing + {short})", 1)
        progress(f"scoring plan: numpy preprocessing + {short} from {head.file}")
    return PlanExport(blob, entry, note, dict(compiled.files))


def plan_check_frame(features: tuple[Feature, ...], holdout: pd.DataFrame) -> pd.DataFrame:
    """The hold-out rows, then copies of some of them with each category unseen or missing and
    each number missing or far outside its training range (one column at a time, then all)."""
    from scorer.predict import typed_input

    base = holdout.head(PLAN_EDGE_ROWS).reset_index(drop=True)
    blocks = [holdout.reset_index(drop=True)]
    cats = [f for f in features if f.kind == "category"]
    nums = [f for f in features if f.kind == "number"]
    for f in cats:
        unseen = "unseen category"
        while unseen in f.categories:
            unseen += "*"
        blocks += [base.assign(**{f.name: unseen}), base.assign(**{f.name: np.nan})]
    for f in nums:
        lo, hi = f.min if f.min is not None else 0.0, f.max if f.max is not None else 0.0
        far = max(abs(lo), abs(hi)) + 1000 * (hi - lo + 1)
        blocks += [base.assign(**{f.name: v}) for v in (np.nan, far, -far, 1e15, -1e15)]
    if cats:
        blocks.append(base.assign(**{f.name: np.nan for f in cats}))
    if nums:
        blocks.append(base.assign(**{f.name: np.nan for f in nums}))
    frame = pd.concat([b.astype(object) for b in blocks], ignore_index=True)
    return typed_input(features, frame)


def verify(evaluator: Evaluator, pipeline: Any, frame: Any) -> dict[str, Any]:
    """Plan vs pipeline on a frame typed as ``scorer.predict.model_input`` makes it. Returns
    rows and the largest absolute/relative differences; PlanUnsupported when over TOLERANCE
    or when a predicted label differs."""
    plan = evaluator.plan
    columns = {name: frame[name].to_numpy() for name in plan.input_names}
    try:
        values, _score, proba = evaluator.predict(columns)
    except ValueError as exc:
        raise PlanUnsupported(f"the plan could not score the check rows: {exc}") from exc
    try:
        if plan.task == "regression":
            got, want = values, np.asarray(pipeline.predict(frame), dtype=np.float64)
        else:
            assert proba is not None
            assert isinstance(plan.head, LogisticHead | EstimatorHead)
            ref = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
            want = ref[:, list(plan.head.order)]
            got = proba
    except Exception as exc:  # the pipeline's own failure: nothing to compare against
        raise PlanUnsupported(f"the pipeline could not score the check rows: {exc}") from exc
    if got.shape != want.shape:
        raise PlanUnsupported(f"the plan gives shape {got.shape}, the pipeline {want.shape}")
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    if not np.array_equal(nan_got, nan_want):
        raise PlanUnsupported("the plan and the pipeline disagree on which predictions are NaN")
    both = ~nan_got
    a, b = got[both], want[both]
    same = a == b  # equal infinities too
    diff = np.where(same, 0.0, np.abs(a - b))
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(same, 0.0, diff / np.where(scale > 0, scale, 1.0))
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    if not (max_rel <= TOLERANCE):
        raise PlanUnsupported(
            f"the plan differs from the pipeline by {max_rel:.3g} (relative) on the check rows"
        )
    if plan.task == "classification":
        labels = np.asarray(plan.classes, dtype=object)[want.argmax(axis=1)]
        if not np.array_equal(values, labels):
            raise PlanUnsupported("the plan predicts a different label on some check rows")
    return {"rows": len(frame), "max_abs_diff": max_abs, "max_rel_diff": max_rel}
