"""Predict page: the form comes from the card (regression and classification alike)."""

from __future__ import annotations

import json

import pytest

from scorer import storage
from scorer.registry import Registry
from ui import form
from ui.state import PREDICT_RESULT
from ui.widgets import md


def texts(at) -> str:  # type: ignore[no-untyped-def]
    parts = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "success")
             for e in getattr(at, kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def test_local_mode_is_labelled_on_the_predict_page(app) -> None:  # type: ignore[no-untyped-def]
    at = app(page="predict")
    assert not at.exception
    assert [t.value for t in at.title] == ["Predict"]
    assert "Local mode — no sign-in" in "\n".join(str(m.value) for m in at.sidebar.markdown) + str(
        at.sidebar
    )


def test_form_is_built_from_the_regression_card_and_predicts(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    card = Registry(s3_registry).resolve("claims")
    at = app(page="predict")
    numbers = {n.label: n for n in at.text_input}
    selects = {s.label: s for s in at.selectbox}
    for feat in card.features:
        if feat.kind == "number":
            assert numbers[feat.name].value == form.default_text(feat)
        else:
            assert list(selects[feat.name].options) == list(feat.categories)
            assert selects[feat.name].value == feat.typical
    assert "training range" in texts(at)
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    assert not at.exception
    assert not at.error
    metric = next(m for m in at.metric if m.label == f"Predicted {card.target}")
    assert float(metric.value.replace(",", "")) > 0
    shown = texts(at)
    assert "Why" in [s.value for s in at.subheader]
    assert "Method — exact (linear)" in shown  # a linear plan: exact contributions
    assert "Base value" in [m.label for m in at.metric]
    assert "Answered by claims@" in shown


def test_form_follows_the_classification_card(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    card = Registry(s3_registry).resolve("income")
    at = app(page="predict")
    at.selectbox(key="predict.model").select("income").run()
    labels = {n.label for n in at.text_input} | {s.label for s in at.selectbox}
    assert set(card.feature_names) <= labels
    assert "charges" not in labels
    assert "age" not in labels
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    assert not at.exception
    assert not at.error
    metric = next(m for m in at.metric if m.label == f"Predicted {card.target}")
    assert metric.value in card.classes
    assert "probability" in texts(at)


def test_values_outside_the_training_range_are_flagged(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    card = Registry(s3_registry).resolve("claims")
    feat = next(f for f in card.features if f.kind == "number" and f.max is not None)
    at = app(page="predict")
    field = next(n for n in at.text_input if n.label == feat.name)
    field.set_value(str(int(feat.max * 10)))  # same run as the submit: it is a form
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    warnings = [w.value for w in at.warning]
    assert any(f"'{feat.name}'" in w and "above the training range" in w for w in warnings)


def _pick(card, *, integer: bool):  # type: ignore[no-untyped-def]
    return next(f for f in card.features if f.kind == "number" and f.integer == integer)


@pytest.mark.parametrize(
    ("which", "typed", "sent", "error"),
    [
        ("decimal", "30.23", "30.23", None),
        ("whole", "3", "3", None),
        ("whole", "2.7", None, "whole numbers only"),
        ("decimal", "1e309", None, "too large to be a number"),
        ("decimal", "abc", None, "is not a number"),
        ("decimal", "", None, "needs a number"),
    ],
    ids=[
        "a decimal is sent as typed, not rounded",
        "a whole number is sent as typed",
        "a fraction in a whole-number field is refused inline",
        "a non-finite number is refused inline",
        "text is refused inline",
        "a required number left empty is refused inline",
    ],
)
def test_the_form_sends_what_was_typed_or_says_why_not(  # type: ignore[no-untyped-def]
    app, s3_registry, which: str, typed: str, sent: str | None, error: str | None
) -> None:
    card = Registry(s3_registry).resolve("claims")
    feat = _pick(card, integer=which == "whole")
    at = app(page="predict")
    next(n for n in at.text_input if n.label == feat.name).set_value(typed)
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    assert not at.exception
    metrics = [m.label for m in at.metric]
    if error is None:
        assert not at.error
        result = at.session_state[PREDICT_RESULT]
        assert result.row[feat.name] == sent  # what the batch's validation was given
        assert f"Predicted {card.target}" in metrics
        # the explanation names the value used, at the precision typed
        [used] = [c.value for c in result.explanation.contributions if c.feature == feat.name]
        assert form.value_text(used) == typed
    else:
        errors = [e.value for e in at.error]
        assert any(error in e for e in errors), errors  # under the field …
        assert any(e.startswith("Not predicted: 1 field") for e in errors)  # … and why no answer
        assert f"Predicted {card.target}" not in metrics  # no prediction from other inputs
        assert PREDICT_RESULT not in at.session_state


def test_an_optional_number_left_empty_is_a_missing_value(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    """A card whose number column had missing values in training: empty means missing."""
    base = storage.join(s3_registry, "claims", "1", "card.json")
    raw = json.loads(storage.read_bytes(base))
    feat = next(f for f in raw["features"] if f["kind"] == "number" and not f.get("integer"))
    feat["nullable"] = True
    storage.write_bytes(base, json.dumps(raw).encode())
    at = app(page="predict")
    field = next(n for n in at.text_input if n.label == feat["name"])
    assert field.placeholder == "empty = missing"
    field.set_value("")
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    assert not at.exception
    assert not at.error
    result = at.session_state[PREDICT_RESULT]
    assert result.row[feat["name"]] == ""  # sent as a missing cell, not the old value
    assert any(m.label == f"Predicted {raw['target']}" for m in at.metric)
    used = at.dataframe[-1].value
    assert used.set_index("column").loc[feat["name"], "value"] == "missing"


def test_the_explanation_shows_its_base_and_adds_up(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    at = app(page="predict")
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    why = at.session_state[PREDICT_RESULT].explanation
    assert why.method == "exact (linear)"
    total = why.base + sum(c.effect for c in why.contributions)
    assert abs(total - why.prediction) <= 1e-6 * abs(why.prediction)
    assert any("exact (linear)" in m.value for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Base value"] == f"{why.base:,.2f}"
    assert metrics["Prediction"] == f"{why.prediction:,.2f}"


def test_a_classifier_explains_the_log_odds_of_its_class(app) -> None:  # type: ignore[no-untyped-def]
    at = app(page="predict")
    at.selectbox(key="predict.model").select("income").run()
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    why = at.session_state[PREDICT_RESULT].explanation
    value = at.session_state[PREDICT_RESULT].value
    assert why.target == f"log-odds of P({value})"
    assert any(md(f"log-odds of P({value})") in m.value for m in at.markdown)
    assert {m.label: m.value for m in at.metric}["Base value"] == f"{why.base:+.3f}"
    assert any(c.value.startswith("P ") and c.value.endswith("%") for c in at.caption)
