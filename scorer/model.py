"""A loaded model: its card and the engine that predicts with it (no storage, no verification).

Two engines give the same numbers (a plan is verified against its pipeline before publishing):
``PlanEngine`` evaluates the scoring plan in numpy without importing PyCaret, ``PipelineEngine``
calls the PyCaret/scikit-learn pipeline. ``scorer.registry`` builds them from verified files;
``scorer.predict`` uses them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from scorer.card import ModelCard

if TYPE_CHECKING:
    from scorer.evaluator import Evaluator
    from scorer.plan import Plan

EngineName = Literal["plan", "pipeline"]
#: (values, score, proba): predicted values (floats or class labels), the predicted class's
#: probability and every class's probability in ``card.classes`` order (classification only)
Raw = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


class Engine(Protocol):
    """What predicts for a card: the frame in the card's feature order and dtypes in, ``Raw``
    out. Safe to call from several threads at once."""

    @property
    def name(self) -> EngineName: ...  # the manifest's ``model.engine``

    def predict(self, x: pd.DataFrame, card: ModelCard, *, threads: int | None = None) -> Raw:
        """``threads``: the threads the model's library may use for this call (None: its own
        setting); a hint that never changes the numbers."""
        ...

    def fork_safe(self) -> bool: ...  # a forked process can predict with it (scorer.workers)


class PlanEngine:
    """The scoring plan evaluated in numpy: stateless, so no lock."""

    name: EngineName = "plan"

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator  # built once per load (scorer.registry); read-only after
        self.plan: Plan = evaluator.plan

    def predict(self, x: pd.DataFrame, card: ModelCard, *, threads: int | None = None) -> Raw:
        columns = {c: x[c].to_numpy() for c in x.columns}
        values, score, proba = self.evaluator.predict(columns, threads=threads)
        return values, score, proba

    def fork_safe(self) -> bool:
        """A numpy-only plan is. An estimator head (LightGBM, XGBoost, CatBoost, scikit-learn's
        histogram boosting …) may start an OpenMP thread pool when loaded, and a child forked
        after that hangs in its first prediction (seen with LightGBM)."""
        from scorer.plan import EstimatorHead

        return not isinstance(self.plan.head, EstimatorHead)


class PipelineEngine:
    """The PyCaret/scikit-learn pipeline as unpickled (PyCaret is imported by unpickling it)."""

    name: EngineName = "pipeline"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        # PyCaret's pipeline is not thread-safe (its transformers keep per-call state: two
        # threads predicting at once fail with 'cannot reindex on an axis with duplicate
        # labels'), so calls are serialised; the lock lives and dies with the pipeline.
        self._lock = threading.Lock()

    def __getstate__(self) -> Any:
        return self.pipeline  # a copy in another process gets a lock of its own

    def __setstate__(self, pipeline: Any) -> None:
        self.__init__(pipeline)  # type: ignore[misc]

    def predict(self, x: pd.DataFrame, card: ModelCard, *, threads: int | None = None) -> Raw:
        # ``threads`` is not passed on: the calls are serialised anyway (the lock below)
        if card.task == "regression":
            with self._lock:
                values = self.pipeline.predict(x)
            return np.asarray(values, dtype=float), None, None
        with self._lock:
            proba = np.asarray(self.pipeline.predict_proba(x), dtype=float)
        classes = np.asarray(card.classes, dtype=object)
        best = proba.argmax(axis=1)
        return classes[best], proba[np.arange(len(best)), best], proba

    def fork_safe(self) -> bool:
        """Only a pipeline ending in a scikit-learn linear model: other estimators may start an
        OpenMP thread pool when loaded (see ``PlanEngine.fork_safe``)."""
        steps = getattr(self.pipeline, "steps", None)
        estimator = steps[-1][1] if steps else self.pipeline
        return type(estimator).__module__.startswith("sklearn.linear_model")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    card: ModelCard
    engine: Engine
    #: extra facts for the manifest's ``model`` section: why this model (scorer.pinning)
    origin: tuple[tuple[str, Any], ...] = ()

    @property
    def plan(self) -> Plan | None:
        """The scoring plan, when loaded with the plan engine."""
        return self.engine.plan if isinstance(self.engine, PlanEngine) else None

    @property
    def evaluator(self) -> Evaluator | None:
        """The plan's evaluator, when loaded with the plan engine (scorer.explain reads it)."""
        return self.engine.evaluator if isinstance(self.engine, PlanEngine) else None

    @property
    def pipeline(self) -> Any:
        """The PyCaret/scikit-learn pipeline, when loaded with the pipeline engine, else None."""
        return self.engine.pipeline if isinstance(self.engine, PipelineEngine) else None
