"""Predictions from a loaded model on a validated frame (used by batch runs and the UI alike)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scorer.card import Feature
from scorer.registry import LoadedModel


@dataclass(frozen=True, slots=True)
class Predictions:
    values: np.ndarray  # float (regression) or label strings (classification)
    score: np.ndarray | None  # probability of the predicted class (classification)
    proba: np.ndarray | None  # every class's probability, columns in card.classes order


def model_input(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in the card's feature order with the dtypes the pipeline was trained on."""
    return typed_input(model.card.features, frame)


def typed_input(features: Sequence[Feature], frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as the model sees it: numbers float64 (NaN = missing), categories object."""
    out = {}
    for feat in features:
        col = frame[feat.name] if feat.name in frame else pd.Series([np.nan] * len(frame))
        if feat.kind == "number":
            out[feat.name] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        else:
            out[feat.name] = col.astype(object).where(col.notna(), np.nan).to_numpy()
    return pd.DataFrame(out, index=frame.index)


_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(pipeline: Any) -> threading.Lock:
    """PyCaret's pipeline is not thread-safe (its transformers keep per-call state: two threads
    predicting at once fail with 'cannot reindex on an axis with duplicate labels'), so calls
    on one pipeline are serialised. Loaded pipelines live for the process, so ids are stable."""
    with _locks_guard:
        return _locks.setdefault(id(pipeline), threading.Lock())


def predict(model: LoadedModel, frame: pd.DataFrame, *, typed: bool = False) -> Predictions:
    """Predictions from the model's scoring plan when it was loaded with one, else from its
    pipeline; both give the same numbers (the plan is verified against the pipeline).

    ``typed``: the frame comes from validation (numbers float64 with NaN, categories str or
    NaN), so it is used as it is when it has every feature in the card's order.
    """
    pipeline: Any = model.pipeline
    if typed and list(frame.columns) == model.card.feature_names:
        x = frame
    else:
        x = model_input(model, frame)
    if len(x) == 0:
        empty = np.array([], dtype=object if model.card.task == "classification" else float)
        return Predictions(empty, np.array([], dtype=float) if model.card.classes else None, None)
    if model.evaluator is not None:  # pure numpy and read-only: no lock needed
        values, score, proba = model.evaluator.predict({c: x[c].to_numpy() for c in x.columns})
        return Predictions(values, score, proba)
    if model.card.task == "regression":
        with _lock_for(pipeline):
            values = pipeline.predict(x)
        return Predictions(np.asarray(values, dtype=float), None, None)
    with _lock_for(pipeline):
        proba = np.asarray(pipeline.predict_proba(x), dtype=float)
    classes = np.asarray(model.card.classes, dtype=object)
    best = proba.argmax(axis=1)
    return Predictions(classes[best], proba[np.arange(len(best)), best], proba)
