"""Predict page: the form comes from the card (regression and classification alike)."""

from __future__ import annotations

from scorer.registry import Registry


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
    numbers = {n.label: n for n in at.number_input}
    selects = {s.label: s for s in at.selectbox}
    for feat in card.features:
        if feat.kind == "number":
            assert numbers[feat.name].value == feat.typical
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
    assert "Method: one feature at a time" in shown
    assert "Answered by claims@" in shown


def test_form_follows_the_classification_card(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    card = Registry(s3_registry).resolve("income")
    at = app(page="predict")
    at.selectbox(key="predict.model").select("income").run()
    labels = {n.label for n in at.number_input} | {s.label for s in at.selectbox}
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
    field = next(n for n in at.number_input if n.label == feat.name)
    field.set_value(type(field.value)(feat.max * 10))  # same run as the submit: it is a form
    next(b for b in at.button if b.label == "Predict").click()
    at.run()
    warnings = [w.value for w in at.warning]
    assert any(f"'{feat.name}'" in w and "above the training range" in w for w in warnings)
