"""The model card: everything the scorer, the UI and the drift view know about a model's inputs.

Pure data: built by training, read by everyone else. No column name ever appears in code; it
comes from ``card.features``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scorer.errors import CardInvalid

Task = Literal["regression", "classification"]
Kind = Literal["number", "category"]
# The Python type of a classifier's labels in its pipeline (the target as pandas read it): the
# card, the scorer and predictions.csv write labels as text ('0', 'yes'), the pipeline and plain
# PyCaret's predict_model give them as this type (0, 'yes').
LabelType = Literal["str", "int", "bool"]

CARD_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Feature:
    """One input column the model needs."""

    name: str
    kind: Kind
    required: bool = True  # the column must be present in an input file
    nullable: bool = False  # an empty value is allowed (training had missing values)
    missing_rate: float = 0.0
    min: float | None = None  # numbers: training range
    max: float | None = None
    integer: bool = False  # numbers: every training value was whole
    categories: tuple[str, ...] = ()  # categories: every value seen in training
    typical: float | str | None = None  # median (numbers) or mode (categories); form defaults
    # drift baseline: numbers → bin edges + share per bin; categories → share per category
    bins: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()
    # numbers: whole numbers with few distinct values (1/2, 1–6: codes?); drift bins are one per
    # value seen in training, and training suggests --categorical if they are codes
    coded: bool = False


@dataclass(frozen=True, slots=True)
class IgnoredColumn:
    """A column of the training data left out of the features (an id), and why."""

    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class PredictionBaseline:
    """Distribution of the model's predictions on its hold-out data."""

    bins: tuple[float, ...] = ()  # regression: bin edges
    shares: tuple[float, ...] = ()  # share per bin (regression) or per class (classification)
    classes: tuple[str, ...] = ()  # classification: class labels in ``shares`` order


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    version: int
    task: Task
    target: str
    created_at: str
    features: tuple[Feature, ...]
    metrics: dict[str, float]
    estimator: str
    training_data: dict[str, Any]  # sha256, rows, holdout_rows, source
    prediction_baseline: PredictionBaseline
    model_sha256: str
    libraries: dict[str, str]
    classes: tuple[str, ...] = ()  # classification: every label the model can predict
    schema: int = CARD_SCHEMA
    notes: dict[str, Any] = field(default_factory=dict)
    # the scoring plan published beside model.pkl, if any: {"format", "sha256", "verified"}
    plan: dict[str, Any] | None = None
    # training columns that are not features (ids): scoring passes them through untouched
    ignored: tuple[IgnoredColumn, ...] = ()
    label_type: LabelType = "str"
    # classification: predictions.csv's probability column per class, in ``classes`` order
    # (cards from before it derive the same names: ``schema.probability_columns``)
    proba_columns: tuple[str, ...] = ()
    # sha256 of the card.json bytes this card was read from ("" when built in memory); it is
    # computed on reading, never written into the card (a card cannot vouch for itself)
    json_sha256: str = field(default="", compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def feature(self, name: str) -> Feature:
        for feat in self.features:
            if feat.name == name:
                return feat
        raise KeyError(name)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> str:
        raw = asdict(self)
        del raw["json_sha256"]
        if raw["plan"] is None:  # cards without a plan stay readable by scorers that predate it
            del raw["plan"]
        return json.dumps(raw, indent=2, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            raw = json.loads(text)
            feats = tuple(
                Feature(
                    **{
                        **f,
                        "categories": tuple(f.get("categories", ())),
                        "bins": tuple(f.get("bins", ())),
                        "shares": tuple(f.get("shares", ())),
                    }
                )
                for f in raw.pop("features")
            )
            pb = raw.pop("prediction_baseline", {}) or {}
            baseline = PredictionBaseline(
                bins=tuple(pb.get("bins", ())),
                shares=tuple(pb.get("shares", ())),
                classes=tuple(pb.get("classes", ())),
            )
            raw["classes"] = tuple(raw.get("classes", ()))
            raw["ignored"] = tuple(IgnoredColumn(**i) for i in raw.get("ignored", ()))
            raw["proba_columns"] = tuple(raw.get("proba_columns", ()))
            raw["json_sha256"] = hashlib.sha256(
                text.encode() if isinstance(text, str) else text
            ).hexdigest()
            card = cls(features=feats, prediction_baseline=baseline, **raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CardInvalid(
                f"card.json is not a valid model card ({exc}); republish the model"
            ) from exc
        if card.task not in ("regression", "classification"):
            raise CardInvalid(f"card.json has unknown task '{card.task}'")
        return card
