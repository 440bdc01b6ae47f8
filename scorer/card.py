"""The model card: everything the scorer, the UI and the drift view know about a model's inputs.

Pure data: built by training, read by everyone else. No column name ever appears in code; it
comes from ``card.features``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
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


# The sections below were written as JSON objects whose keys grew over time: a field that is
# None was not recorded (an older card) and is left out when the card is written again, so a
# card.json round-trips to the same bytes.


@dataclass(frozen=True, slots=True)
class DataDialect:
    """How training read its file: field delimiter and decimal mark."""

    delimiter: str = ","
    decimal: str = "."


@dataclass(frozen=True, slots=True)
class TrainingData:
    """The rows the model was trained on (``training_data``)."""

    source: str | None = None  # where training read them (a path or s3:// URL)
    sha256: str | None = None  # of the file's bytes: same sha, same rows
    rows: int | None = None  # data records in the file
    rows_used: int | None = None  # those with a target
    rows_without_target: int | None = None
    dialect: DataDialect | None = None  # cards from before it: comma-separated, '.' decimals
    train_rows: int | None = None
    holdout_rows: int | None = None  # the rows the metrics were measured on
    estimators_compared: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainingData:
        raw = dict(raw)
        if raw.get("dialect") is not None:
            raw["dialect"] = DataDialect(**raw["dialect"])
        if raw.get("estimators_compared") is not None:
            raw["estimators_compared"] = tuple(raw["estimators_compared"])
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Notes:
    """What a reader of the card should know (``notes``), in words."""

    metrics_on: str | None = None  # which rows the metrics come from
    plan: str | None = None  # whether a scoring plan was exported, or why not
    category_rule: str | None = None  # how category spellings are matched

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Notes:
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """How the scoring plan was checked against the pipeline before publishing."""

    rows: int  # hold-out and edge rows both scored
    max_abs_diff: float
    max_rel_diff: float


@dataclass(frozen=True, slots=True)
class PlanEstimator:
    """A plan's estimator head: its class and the pickle beside plan.json."""

    class_name: str  # written as "class": the estimator's module and class
    file: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.class_name, "file": self.file, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PlanEstimator:
        raw = dict(raw)
        return cls(class_name=raw.pop("class"), **raw)


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """The scoring plan published beside model.pkl (``plan``): plan.json's format and sha256."""

    format: int
    sha256: str
    verified: PlanCheck | None = None
    estimator: PlanEstimator | None = None  # format 2 with a fitted estimator as its head

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PlanEntry:
        raw = dict(raw)
        if raw.get("verified") is not None:
            raw["verified"] = PlanCheck(**raw["verified"])
        if raw.get("estimator") is not None:
            raw["estimator"] = PlanEstimator.from_dict(raw["estimator"])
        return cls(**raw)


def _section(value: Any) -> Any:
    """A section as its JSON object: fields in order, those never recorded (None) left out."""
    if isinstance(value, PlanEstimator):
        return value.to_dict()
    if isinstance(value, DataDialect | TrainingData | Notes | PlanCheck | PlanEntry):
        return {
            f.name: _section(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True, slots=True)
class ModelCard:
    name: str
    version: int
    task: Task
    target: str
    created_at: str
    features: tuple[Feature, ...]
    metrics: dict[str, float]  # metric name → hold-out value (r2, mae … or auc, accuracy …)
    estimator: str
    training_data: TrainingData
    prediction_baseline: PredictionBaseline
    model_sha256: str
    libraries: dict[str, str]  # library → version it was trained with
    classes: tuple[str, ...] = ()  # classification: every label the model can predict
    schema: int = CARD_SCHEMA
    notes: Notes = Notes()
    # the scoring plan published beside model.pkl, if any
    plan: PlanEntry | None = None
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
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The card as its JSON object (the contract: the shape card.json has)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "json_sha256"}
        raw["features"] = [asdict(f) for f in self.features]
        raw["metrics"], raw["libraries"] = dict(self.metrics), dict(self.libraries)
        raw["prediction_baseline"] = asdict(self.prediction_baseline)
        raw["ignored"] = [asdict(i) for i in self.ignored]
        for name in ("training_data", "notes", "plan"):
            raw[name] = _section(raw[name])
        if raw["plan"] is None:  # cards without a plan stay readable by scorers that predate it
            del raw["plan"]
        return raw

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
            raw["training_data"] = TrainingData.from_dict(raw["training_data"])
            raw["notes"] = Notes.from_dict(raw.get("notes", {}))
            if raw.get("plan") is not None:
                raw["plan"] = PlanEntry.from_dict(raw["plan"])
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
