"""Predictions from a loaded model on a validated frame (used by batch runs and the UI alike),
and the rows a model refuses, found by halving a batch it refused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scorer.card import Feature
from scorer.errors import ModelFailed
from scorer.model import LoadedModel


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


def predict(
    model: LoadedModel, frame: pd.DataFrame, *, typed: bool = False, threads: int | None = None
) -> Predictions:
    """Predictions from the model's engine: its scoring plan or its pipeline; both give the
    same numbers (the plan is verified against the pipeline).

    ``typed``: the frame comes from validation (numbers float64 with NaN, categories str or
    NaN), so it is used as it is when it has every feature in the card's order. ``threads``:
    the threads the model's library may use (``Engine.predict``); never changes the numbers.
    """
    if typed and list(frame.columns) == model.card.feature_names:
        x = frame
    else:
        x = model_input(model, frame)
    if len(x) == 0:
        empty = np.array([], dtype=object if model.card.task == "classification" else float)
        return Predictions(empty, np.array([], dtype=float) if model.card.classes else None, None)
    values, score, proba = model.engine.predict(x, model.card, threads=threads)
    return Predictions(values, score, proba)


def refused_rows(
    model: LoadedModel, frame: pd.DataFrame, *, threads: int | None = None
) -> dict[int, tuple[str, str]]:
    """The rows of ``frame`` the model raises ValueError on, with the column and reason, found
    by halving (a few dozen calls for a few bad rows in a batch of 32k). If the model refuses
    even the card's typical row, the model is broken, not the rows: ModelFailed."""
    typical = pd.DataFrame(
        {
            f.name: np.array(
                [f.typical if f.typical is not None else np.nan],
                dtype=np.float64 if f.kind == "number" else object,
            )
            for f in model.card.features
        }
    )
    try:
        predict(model, typical, typed=True, threads=threads)
    except ValueError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ModelFailed(
            f"{model.card.ref} cannot score even its own typical row ({detail}); the model is "
            "broken, so the input stays pending"
        ) from exc
    out: dict[int, tuple[str, str]] = {}

    def search(lo: int, hi: int) -> None:
        try:
            predict(model, frame.iloc[lo:hi], typed=True, threads=threads)
        except ValueError as exc:
            if hi - lo == 1:
                out[lo] = _refusal(model, frame.iloc[lo], exc)
            elif hi - lo <= 16:  # one by one: bounded work even when every row is refused
                for i in range(lo, hi):
                    search(i, i + 1)
            else:
                mid = (lo + hi) // 2
                search(lo, mid)
                search(mid, hi)

    search(0, len(frame))
    return out


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _refusal(model: LoadedModel, row: pd.Series, exc: ValueError) -> tuple[str, str]:
    for feat in model.card.features:
        value = row.get(feat.name)
        if feat.kind == "number" and isinstance(value, float) and abs(value) > _FLOAT32_MAX:
            return feat.name, (
                f"'{feat.name}' is {value:g}, beyond the ±3.4e38 this model can take "
                "(it computes in float32); check the value"
            )
    detail = " ".join(str(exc).split())[:200]
    return "", f"the model could not score this row ({detail}); check its values"
