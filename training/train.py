"""Train a PyCaret model on any tabular CSV and publish it, with its card, to the registry.

The hold-out split is made here, before PyCaret sees the data: PyCaret compares estimators by
cross-validation on the training part only, the winner is fitted on the training part, and the
metrics in the card are measured on the hold-out rows the published model never saw.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import os
import platform
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from scorer import categories, dialect, storage
from scorer.card import DataDialect, Feature, LabelType, ModelCard, Notes, PlanEntry, Task
from scorer.card import TrainingData as CardTrainingData  # this module's TrainingData: the rows
from scorer.errors import FileRefused, InputNotFound, ObjectMissing
from scorer.refs import check_name
from scorer.registry import PLAN_FILE, Registry
from scorer.schema import proba_column_names
from training import profile
from training.columns import ColumnChoices, plan_columns
from training.errors import TrainingDataError, TrainingFailed

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
    """(delimiter, decimal mark) by the scorer's rule (scorer/dialect.py): ';' when only the
    ';' split of the header names the target; then ',' decimals only when no number cell of the
    file is written with a '.' (both: refused)."""
    line = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    if target in next(csv.reader([line]), []) or target not in next(
        csv.reader([line], delimiter=";"), []
    ):
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
    progress: Progress,
) -> PlanExport:
    """Compile the pipeline as published (unpickled from its bytes) into a scoring plan and
    verify it on the hold-out rows plus edge rows. Never raises: without a plan the scorer
    simply uses the pipeline."""
    import joblib

    from scorer.errors import PlanUnsupported
    from scorer.plan import EstimatorHead, ModelShape, Plan, compile_model, verify
    from scorer.plan import Input as PlanInput

    try:
        pipeline = joblib.load(io.BytesIO(model_bytes))
        shape = ModelShape(task, tuple(PlanInput(f.name, f.kind) for f in features), classes)
        compiled = compile_model(pipeline, shape)
        blob = compiled.plan.to_json()
        plan = Plan.from_json(blob)
        head = plan.head
        if isinstance(head, EstimatorHead):  # checked as the scorer will load it: from its bytes
            plan.bind(joblib.load(io.BytesIO(compiled.files[head.file])))
        checked = verify(plan, pipeline, plan_check_frame(features, holdout))
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
