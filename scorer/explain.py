"""Why one prediction came out as it did.

Exact where the model allows it (``exact``): a linear plan's terms, coefficient × (value −
baseline mean) in the model's own transformed space, and a LightGBM model's own SHAP values
(``pred_contrib``); encoded columns are summed back into the input feature they come from, and
base + Σ contributions = the prediction (checked: a mismatch falls back to the approximation
rather than be called exact). Classifiers are explained on the log-odds of the predicted class,
where those terms are additive.

Otherwise (``explain``, pure: takes a prediction function), approximate — one feature at a time
against the training distribution: each feature in turn is replaced by values drawn from its
training baseline in the card (bin midpoints for numbers, seen categories for categories,
weighted by their training shares) while every other feature keeps the value entered. A
feature's effect is the prediction minus the average of those predictions: how far *this* value
moves the prediction away from a typical one. It needs only ``predict``, so it works for every
PyCaret estimator; effects are not additive (unlike SHAP), because features interact. All
perturbed rows go through the model in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scorer import categories
from scorer.card import Feature, ModelCard
from scorer.evaluator import Evaluator
from scorer.model import LoadedModel
from scorer.plan import EstimatorHead, LinearHead, LogisticHead
from scorer.predict import typed_input

EXACT_LINEAR = "exact (linear)"
EXACT_LIGHTGBM = "exact (LightGBM SHAP)"
APPROXIMATE = "approximate (model-agnostic)"
#: how each method's bars read, for the page
METHOD_TEXT = {
    EXACT_LINEAR: (
        "each bar is the model's coefficient × (your value − the training average), in the "
        "model's own encoded space, summed per input column; the base value is the prediction "
        "for the training averages, and base + bars = the prediction exactly."
    ),
    EXACT_LIGHTGBM: (
        "each bar is the column's SHAP value from LightGBM itself (pred_contrib), summed over "
        "its encoded columns; the base value is the model's average output over its training "
        "data, and base + bars = the prediction exactly."
    ),
}
METHOD = (
    "one feature at a time against the training distribution: each feature is replaced by "
    "values from its training baseline (weighted by how often they occurred) while the others "
    "keep what you entered; the bar is how far your value moves the prediction from that "
    "average. Model-agnostic (works for every estimator); effects are not additive like SHAP."
)

#: f(frame) -> one number per row (a regression value or one class's probability)
ScoreFn = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: Any  # what was entered
    effect: float  # prediction minus the average over the feature's baseline values
    reference: float  # that average


@dataclass(frozen=True, slots=True)
class RangeWarning:
    feature: str
    value: float
    min: float
    max: float

    @property
    def message(self) -> str:
        side = "below" if self.value < self.min else "above"
        return (
            f"'{self.feature}' = {self.value:g} is {side} the training range "
            f"{self.min:g}–{self.max:g}; the model has not seen such values, so treat the "
            "prediction with care"
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    prediction: float  # the explained score (value, the class's probability or log-odds)
    contributions: tuple[Contribution, ...]  # largest |effect| first
    target: str  # what ``prediction`` is: the target name, "P(class)" or "log-odds of P(class)"
    method: str = APPROXIMATE  # EXACT_LINEAR | EXACT_LIGHTGBM | APPROXIMATE
    #: exact methods: what the bars are measured from (base + Σ effects = prediction)
    base: float | None = None

    @property
    def text(self) -> str:
        return METHOD_TEXT.get(self.method, METHOD)


def baseline_values(feature: Feature, max_values: int = 12) -> tuple[list[Any], np.ndarray]:
    """Representative training values of a feature and their weights (summing to 1)."""
    if feature.kind == "number":
        edges = np.asarray(feature.bins, dtype=float)
        shares = np.asarray(feature.shares, dtype=float)
        if len(edges) >= 2 and len(shares) == len(edges) - 1 and shares.sum() > 0:
            mids = (edges[:-1] + edges[1:]) / 2
            if feature.integer:
                mids = np.round(mids)
            return list(mids.astype(float)), shares / shares.sum()
        if feature.typical is not None:
            return [float(feature.typical)], np.ones(1)
        return [], np.zeros(0)
    cats = list(feature.categories)
    shares = np.asarray(feature.shares, dtype=float)
    if cats and len(shares) == len(cats) and shares.sum() > 0:
        order = np.argsort(-shares, kind="stable")[:max_values]
        kept = shares[order]
        return [cats[i] for i in order], kept / kept.sum()
    if feature.typical is not None:
        return [feature.typical], np.ones(1)
    return [], np.zeros(0)


def explain(card: ModelCard, row: Mapping[str, Any], score: ScoreFn, target: str) -> Explanation:
    """Effects of each feature of one row (see the module docstring for the method)."""
    row = canonical_row(card, row)
    base = pd.DataFrame([{f.name: row.get(f.name) for f in card.features}])
    blocks = [base]
    spans: list[tuple[Feature, int, int, np.ndarray]] = []
    start = 1
    for feat in card.features:
        values, weights = baseline_values(feat)
        if not values:
            continue
        block = pd.concat([base] * len(values), ignore_index=True)
        block[feat.name] = pd.Series(values, dtype=object if feat.kind == "category" else float)
        blocks.append(block)
        spans.append((feat, start, start + len(values), weights))
        start += len(values)
    frame = pd.concat(blocks, ignore_index=True)
    scores = np.asarray(score(frame), dtype=float)
    prediction = float(scores[0])
    out = []
    for feat, lo, hi, weights in spans:
        reference = float(np.dot(scores[lo:hi], weights))
        out.append(Contribution(feat.name, row.get(feat.name), prediction - reference, reference))
    out.sort(key=lambda c: abs(c.effect), reverse=True)
    return Explanation(prediction, tuple(out), target)


def range_warnings(card: ModelCard, row: Mapping[str, Any]) -> list[RangeWarning]:
    """Numbers outside the range the model saw in training."""
    found = []
    for feat in card.features:
        value = row.get(feat.name)
        if feat.kind != "number" or value is None or feat.min is None or feat.max is None:
            continue
        number = float(value)
        if np.isfinite(number) and (number < feat.min or number > feat.max):
            found.append(RangeWarning(feat.name, number, feat.min, feat.max))
    return found


def canonical_row(card: ModelCard, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with each category as the batch scorer feeds it (``scorer.categories``): the
    seen category it stands for, else trimmed; a blank category is missing."""
    out = dict(row)
    for f in card.features:
        value = row.get(f.name)
        if f.kind == "category" and isinstance(value, str):
            out[f.name] = categories.index(f.categories).canonical(value) or value.strip() or None
    return out


def unseen_categories(card: ModelCard, row: Mapping[str, Any]) -> list[str]:
    """Features whose category was never seen in training (by the category rule)."""
    return [
        f.name
        for f in card.features
        if f.kind == "category"
        and f.categories
        and row.get(f.name) is not None
        and categories.index(f.categories).canonical(str(row.get(f.name))) is None
    ]


# --- exact contributions ------------------------------------------------------------------------
def exact(model: LoadedModel, row: Mapping[str, Any]) -> Explanation | None:
    """Exact additive contributions (see the module docstring), or None when the model has no
    such decomposition here (no scoring plan, another estimator, three or more classes)."""
    evaluator, card = model.evaluator, model.card
    if evaluator is None:
        return None
    plan = evaluator.plan
    row = canonical_row(card, row)
    frame = typed_input(
        card.features, pd.DataFrame([{f.name: row.get(f.name) for f in card.features}])
    )
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    design = evaluator.design_matrix(columns)[0]
    head = plan.head
    values, _, proba = evaluator.predict(columns)
    sign, label = 1.0, card.target
    if card.task == "classification":
        if proba is None or len(card.classes) != 2:
            return None
        best = int(np.argmax(proba[0]))
        order = head.order if isinstance(head, LogisticHead | EstimatorHead) else ()
        # the decision function is the log-odds of the estimator's second class
        sign = 1.0 if order and order[best] == 1 else -1.0
        label = f"log-odds of P({card.classes[best]})"
        prediction = float(np.log(proba[0, best]) - np.log1p(-proba[0, best]))
    else:
        prediction = float(values[0])
    if isinstance(head, LinearHead | LogisticHead):
        coef = np.asarray(head.coef if isinstance(head, LinearHead) else head.coef[0], dtype=float)
        intercept = float(head.intercept if isinstance(head, LinearHead) else head.intercept[0])
        if isinstance(head, LogisticHead) and head.proba == "softmax":
            coef, intercept = 2 * coef, 2 * intercept  # softmax over (−d, d): log-odds are 2d
        mean = _baseline_design(card, evaluator, row, design)
        terms = sign * coef * (design - mean)
        base = sign * float(intercept + coef @ mean)
        method = EXACT_LINEAR
    elif isinstance(head, EstimatorHead) and _is_lightgbm(evaluator.estimator):
        x = pd.DataFrame([design], columns=list(plan.design))
        contrib = np.asarray(evaluator.estimator.predict(x, pred_contrib=True), dtype=float)
        if contrib.shape != (1, len(design) + 1):
            return None
        terms, base = sign * contrib[0, :-1], sign * float(contrib[0, -1])
        method = EXACT_LIGHTGBM
    else:
        return None
    if not np.isfinite(prediction) or not np.isfinite(terms).all():
        return None
    if abs(base + float(terms.sum()) - prediction) > 1e-6 * max(1.0, abs(prediction)):
        return None  # e.g. an objective whose output is transformed: not additive, not "exact"
    by_feature: dict[str, float] = {}
    for origin, term in zip(evaluator.origins, terms, strict=True):
        by_feature[origin] = by_feature.get(origin, 0.0) + float(term)
    out = [
        Contribution(f.name, row.get(f.name), by_feature.get(f.name, 0.0), base)
        for f in card.features
    ]
    out.sort(key=lambda c: abs(c.effect), reverse=True)
    return Explanation(prediction, tuple(out), label, method, base)


def _is_lightgbm(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == "lightgbm"


def _baseline_design(
    card: ModelCard, evaluator: Evaluator, row: Mapping[str, Any], design: np.ndarray
) -> np.ndarray:
    """The training-baseline average of each design column: each input feature takes its
    baseline values (weighted as in training) in turn; a column with no baseline keeps the
    row's own value (its contribution is then 0)."""
    mean = design.copy()
    base = {f.name: row.get(f.name) for f in card.features}
    origins = np.asarray(evaluator.origins, dtype=object)
    for feat in card.features:
        values, weights = baseline_values(feat, max_values=10_000)
        own = origins == feat.name
        if not values or not own.any():
            continue
        block = pd.DataFrame([base] * len(values))
        block[feat.name] = pd.Series(values, dtype=object if feat.kind == "category" else float)
        x = typed_input(card.features, block)
        rows = evaluator.design_matrix({c: x[c].to_numpy() for c in x.columns})
        mean[own] = weights @ rows[:, own]
    return mean
