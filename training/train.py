"""Train a PyCaret model on any tabular CSV and publish it, with its card, to the registry.

The hold-out split is made here, before PyCaret sees the data: PyCaret compares estimators by
cross-validation on the training part only, the winner is fitted on the training part, and the
metrics in the card are measured on the hold-out rows the published model never saw.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from scorer import categories
from scorer.card import DataDialect, LabelType, ModelCard, Notes, PlanEntry, Task
from scorer.card import TrainingData as CardTrainingData  # this module's TrainingData: the rows
from scorer.refs import check_name
from scorer.registry import PLAN_FILE, Registry
from scorer.schema import proba_column_names
from training import profile
from training.columns import ColumnChoices, plan_columns
from training.data import TrainingData, read_training_csv
from training.errors import TrainingDataError, TrainingFailed
from training.verify import export_plan

log = logging.getLogger("dropscore.training")

MIN_ROWS = 30
# A class must reach every split: our hold-out, PyCaret's own test split, 3 CV folds. With fewer
# rows some fold never sees it and PyCaret fails with "y contains previously unseen labels".
MIN_CLASS_ROWS = 5
HOLDOUT = 0.2
SEED = 42
DEFAULT_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "regression": ("lr", "ridge", "lightgbm", "gbr"),
    "classification": ("lr", "lightgbm", "rf"),
}
SORT_BY = {"regression": "R2", "classification": "AUC"}

Progress = Callable[[str], None]


def detect_task(target: pd.Series) -> Task:
    """Text or few whole-number values → classification; otherwise regression."""
    if not profile.is_number(target):
        return "classification"
    values = target.to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and target.nunique() <= 10:
        return "classification"
    return "regression"


def check_trainable(data: TrainingData, target: str, task: Task) -> None:
    y = data.frame[target]
    if y.empty:
        raise TrainingDataError(f"target '{target}' is empty in every row; nothing to learn")
    if y.nunique() < 2:
        raise TrainingDataError(
            f"target '{target}' has a single value ({y.iloc[0]!r}); nothing to learn"
        )
    if len(y) < MIN_ROWS:
        raise TrainingDataError(
            f"only {len(y)} rows with a target; at least {MIN_ROWS} are needed to train and "
            "hold out a test split"
        )
    if task == "regression" and not profile.is_number(y):
        raise TrainingDataError(
            f"target '{target}' is not numeric, so it cannot be a regression target; "
            "use --task classification"
        )
    if task == "classification":
        counts = as_labels(y).value_counts()
        if counts.min() < MIN_CLASS_ROWS:
            rare = ", ".join(map(repr, counts[counts < MIN_CLASS_ROWS].index[:5]))
            raise TrainingDataError(
                f"class(es) {rare} of '{target}' have fewer than {MIN_CLASS_ROWS} rows; every "
                "class needs that many for the hold-out split and cross-validation (drop or "
                "merge rare classes)"
            )
        if len(counts) > 50:
            raise TrainingDataError(
                f"target '{target}' has {len(counts)} classes; is it a regression target? "
                "use --task regression"
            )
    if data.frame.shape[1] < 2:
        raise TrainingDataError("the file has no feature columns besides the target")


@dataclass(frozen=True, slots=True)
class Trained:
    model_bytes: bytes
    estimator: str
    metrics: dict[str, float]
    holdout_predictions: pd.Series
    classes: tuple[str, ...]
    train_rows: int
    holdout_rows: int
    holdout_features: pd.DataFrame  # what the published model never saw: checks its plan
    label_type: LabelType = "str"


def fit(
    data: TrainingData,
    target: str,
    task: Task,
    estimators: tuple[str, ...],
    progress: Progress,
) -> tuple[Trained, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    frame = data.frame
    label_type: LabelType = "str"
    if task == "classification":
        labels, label_type = typed_labels(frame[target])
        frame = frame.assign(**{target: labels})
    stratify = frame[target] if task == "classification" else None
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT, random_state=SEED, stratify=stratify
    )
    progress(f"setting up PyCaret ({len(train)} training rows, {len(holdout)} hold-out rows)")
    if task == "regression":
        from pycaret import regression as pc
    else:
        from pycaret import classification as pc
    features = [c for c in frame.columns if c != target]
    numeric = [c for c in features if profile.is_number(frame[c])]
    categorical = [c for c in features if c not in numeric]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pc.setup(
                data=train.reset_index(drop=True),
                target=target,
                numeric_features=numeric or None,
                categorical_features=categorical or None,
                session_id=SEED,
                fold=3,
                n_jobs=-1,
                verbose=False,
                html=False,
                system_log=False,
                memory=False,
            )
            progress(f"comparing estimators: {', '.join(estimators)}")
            best = pc.compare_models(
                include=list(estimators), sort=SORT_BY[task], verbose=False, errors="raise"
            )
        except (ValueError, RuntimeError) as exc:  # PyCaret wraps a failed fit in RuntimeError
            detail = " ".join(str(exc).split())
            raise TrainingFailed(f"PyCaret could not train on this data: {detail}") from exc
        if isinstance(best, list):  # pragma: no cover - only when n_select > 1
            best = best[0]
        estimator = type(best).__name__
        if task == "classification" and not hasattr(best, "predict_proba"):
            raise TrainingFailed(
                f"the best estimator, {estimator}, gives no class probabilities, which the "
                "scorer writes (prediction_score) and the card's metrics need; leave it out of "
                "--estimators (lr, lightgbm and rf give them)"
            )
        progress(f"best estimator: {estimator}; refitting on every training row")
        # compare_models fits on PyCaret's own 70% split; finalize refits on all of ``train``
        # (still never the hold-out), so the published model uses all the data it may.
        try:
            final = pc.finalize_model(best)
        except (ValueError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())
            raise TrainingFailed(f"PyCaret could not refit the best model: {detail}") from exc
        with tempfile.TemporaryDirectory() as tmp:
            pipeline, path = pc.save_model(final, os.path.join(tmp, "model"), verbose=False)
            model_bytes = Path(path).read_bytes()
    x_hold = holdout[features]
    y_hold = holdout[target]
    predictions = pd.Series(np.asarray(pipeline.predict(x_hold)), index=holdout.index)
    classes: tuple[str, ...] = ()
    if task == "classification":
        classes = tuple(str(c) for c in class_labels(pipeline))
        proba = np.asarray(pipeline.predict_proba(x_hold))
        metrics = classification_metrics(
            y_hold.astype(str), predictions.astype(str), proba, classes
        )
    else:
        metrics = regression_metrics(y_hold.to_numpy(float), predictions.to_numpy(float))
    trained = Trained(
        model_bytes=model_bytes,
        estimator=estimator,
        metrics=metrics,
        holdout_predictions=predictions,
        classes=classes,
        train_rows=len(train),
        holdout_rows=len(holdout),
        holdout_features=x_hold.reset_index(drop=True),
        label_type=label_type,
    )
    return trained, train


def typed_labels(y: pd.Series) -> tuple[pd.Series, LabelType]:
    """The target as the pipeline learns it: whole numbers stay integers (0/1, not '0'/'1' or
    0.0/1.0), as ``pd.read_csv`` reads them, so plain PyCaret's ``predict_model`` on such a
    frame knows every label; anything else is text."""
    if profile.is_number(y):
        values = y.to_numpy(dtype=float)
        if np.all(np.mod(values, 1) == 0):
            return pd.Series(values.astype(np.int64), index=y.index), "int"
    return as_labels(y), "str"


def as_labels(y: pd.Series) -> pd.Series:
    """Target values as class labels; whole numbers read as floats stay '1', not '1.0'."""
    if profile.is_number(y):
        values = y.to_numpy(dtype=float)
        if np.all(np.mod(values, 1) == 0):
            return pd.Series([str(int(v)) for v in values], index=y.index, dtype=object)
    return y.astype(str)


def class_labels(pipeline: Any) -> list[Any]:
    """Labels in predict_proba column order (PyCaret label-encodes the target in its pipeline)."""
    for name, step in getattr(pipeline, "steps", []):
        if name == "label_encoding":
            inner = getattr(step, "transformer", step)
            if hasattr(inner, "classes_"):
                return list(inner.classes_)
    return list(pipeline.classes_)


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "r2": round(float(r2_score(y, p)), 6),
        "mae": round(float(mean_absolute_error(y, p)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(y, p))), 6),
    }


def classification_metrics(
    y: pd.Series, p: pd.Series, proba: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    out = {"accuracy": round(float(accuracy_score(y, p)), 6)}
    if len(classes) == 2:
        out["auc"] = round(float(roc_auc_score((y == classes[1]).astype(int), proba[:, 1])), 6)
        out["f1"] = round(float(f1_score(y, p, pos_label=classes[1])), 6)
    else:
        try:
            out["auc"] = round(
                float(roc_auc_score(y, proba, multi_class="ovr", labels=list(classes))), 6
            )
        except ValueError:
            out["auc"] = float("nan")
        out["f1"] = round(float(f1_score(y, p, average="weighted")), 6)
    return {k: v for k, v in out.items() if np.isfinite(v)}


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist, key in (
        ("pycaret", "pycaret"),
        ("scikit-learn", "sklearn"),
        ("pandas", "pandas"),
        ("numpy", "numpy"),
        ("lightgbm", "lightgbm"),
    ):
        try:
            out[key] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def train_and_publish(
    *,
    data_url: str,
    target: str,
    name: str,
    registry: Registry,
    task: Literal["auto", "regression", "classification"] = "auto",
    estimators: tuple[str, ...] = (),
    alias: str | None = None,
    progress: Progress = lambda _msg: None,
    columns: ColumnChoices | None = None,
    notice: Progress | None = None,
    by: str = "",
) -> ModelCard:
    """The whole of ``training train``: nothing is written to the registry unless it all worked.

    ``notice`` gets the lines a user must see (columns left out, possible codes); default
    ``progress``."""
    notice = notice or progress
    check_name(name)
    if alias:
        check_name(alias, "alias")  # refused now, not after a version was already published
    progress(f"reading {data_url}")
    data = read_training_csv(data_url, target)
    if data.dialect["delimiter"] != ",":
        progress("read as {delimiter!r}-separated with {decimal!r} decimals".format(**data.dialect))
    chosen_columns = plan_columns(data.frame, target, columns or ColumnChoices())
    data = replace(data, frame=chosen_columns.frame)
    for left in chosen_columns.ignored:
        how = "--ignore" if left.reason == "--ignore" else f"{left.reason}; --keep to use it"
        notice(f"not a feature: '{left.column}' ({how})")
    chosen: Task = detect_task(data.frame[target]) if task == "auto" else task
    check_trainable(data, target, chosen)
    ests = estimators or DEFAULT_ESTIMATORS[chosen]
    # Fail before minutes of training, not after, when the registry cannot be reached.
    registry.versions(name, published_only=False)
    trained, train_frame = fit(data, target, chosen, ests, progress)
    features = tuple(
        profile.profile_feature(str(col), train_frame[col])
        for col in data.frame.columns
        if col != target
    )
    codes = [f.name for f in features if f.coded and f.name not in chosen_columns.numeric]
    if codes:
        notice(
            f"whole numbers with few values, trained as numbers: {', '.join(codes)}; if they "
            f"are codes (1 = male …), not quantities, train with --categorical {','.join(codes)}"
        )
    baseline = profile.prediction_baseline(trained.holdout_predictions, trained.classes)
    plan = export_plan(
        trained.model_bytes, chosen, features, trained.classes, trained.holdout_features, progress
    )
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()

    def make_card(version: int, model_sha: str) -> ModelCard:
        return ModelCard(
            name=name,
            version=version,
            task=chosen,
            target=target,
            created_at=created,
            features=features,
            metrics=trained.metrics,
            estimator=trained.estimator,
            training_data=CardTrainingData(
                source=data.source,
                sha256=data.sha256,
                rows=len(data.frame) + data.dropped_missing_target,
                rows_used=len(data.frame),
                rows_without_target=data.dropped_missing_target,
                dialect=DataDialect(**data.dialect),
                train_rows=trained.train_rows,
                holdout_rows=trained.holdout_rows,
                estimators_compared=tuple(ests),
            ),
            prediction_baseline=baseline,
            model_sha256=model_sha,
            libraries=library_versions(),
            classes=trained.classes,
            notes=Notes(
                metrics_on="hold-out rows the published model never saw",
                plan=plan.note,
                category_rule=categories.RULE,
            ),
            plan=PlanEntry.from_dict(plan.card_entry) if plan.card_entry else None,
            ignored=chosen_columns.ignored,
            label_type=trained.label_type,
            proba_columns=proba_column_names(
                trained.classes,
                [*(f.name for f in features), *(i.column for i in chosen_columns.ignored), target],
            ),
        )

    progress(f"publishing to {registry.url}")
    extras = {PLAN_FILE: plan.blob, **plan.files} if plan.blob is not None else None
    return registry.publish(name, trained.model_bytes, make_card, alias=alias, extras=extras, by=by)
