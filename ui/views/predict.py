"""Predict: a form generated from the model card, one prediction, and why."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from scorer import api, explain
from scorer.card import Feature, ModelCard
from scorer.predict import Predictions, predict
from scorer.registry import LoadedModel
from ui import data, state, widgets

MISSING = "(missing)"


@dataclass(frozen=True, slots=True)
class Answer:
    ref: str  # model name@version that answered
    row: dict[str, Any]
    value: Any
    proba: dict[str, float]
    explanation: explain.Explanation
    range_warnings: tuple[str, ...]
    unseen: tuple[str, ...]
    elapsed_ms: float  # prediction and reasons, server side
    rejected: tuple[str, ...] = ()  # the batch's reasons when the row cannot be scored


def render() -> None:
    settings = state.settings()
    st.title("Predict")
    st.caption("One prediction from the form below, with the reasons behind it.")
    choice = widgets.model_picker(settings, key="predict")
    card = choice.card
    st.markdown(widgets.describe_card(card))
    with st.form("predict-form", border=True):
        row = _inputs(card)
        submitted = st.form_submit_button("Predict", type="primary", icon=":material/bolt:")
    if submitted:
        model = data.loaded_model(settings.registry, card.name, card.version)
        st.session_state[state.PREDICT_RESULT] = answer(model, row)
    result: Answer | None = st.session_state.get(state.PREDICT_RESULT)
    if result is not None and result.ref == card.ref:
        _show(card, result)


def _inputs(card: ModelCard) -> dict[str, Any]:
    row: dict[str, Any] = {}
    columns = st.columns(3, gap="medium")
    for i, feat in enumerate(card.features):
        with columns[i % 3]:
            key = f"predict.{card.ref}.{i}"
            row[feat.name] = _number(feat, key) if feat.kind == "number" else _category(feat, key)
    return row


def _number(feat: Feature, key: str) -> float | None:
    lo, hi = feat.min, feat.max
    typical = feat.typical if isinstance(feat.typical, int | float) else (lo or 0.0)
    hint = f"training range {_fmt(lo)} – {_fmt(hi)}" if lo is not None and hi is not None else ""
    if feat.integer:
        value: float | None = st.number_input(
            feat.name, value=round(float(typical)), step=1, key=key, help=_help(feat, hint)
        )
    else:
        span = (hi - lo) if lo is not None and hi is not None else abs(float(typical)) or 1.0
        step = 10.0 ** math.floor(math.log10(span / 100)) if span > 0 else 0.01
        decimals = max(0, min(6, -math.floor(math.log10(step))))
        value = st.number_input(
            feat.name,
            value=float(typical),
            step=step,
            format=f"%.{decimals}f",
            key=key,
            help=_help(feat, hint),
        )
    st.caption(hint + (f" · typical {_fmt(feat.typical)}" if feat.typical is not None else ""))
    return value


def _category(feat: Feature, key: str) -> str | None:
    options = list(feat.categories) + ([MISSING] if feat.nullable else [])
    index = options.index(feat.typical) if feat.typical in options else 0
    value = st.selectbox(
        feat.name, options, index=index, key=key, format_func=_show_category, help=_help(feat, "")
    )
    st.caption(f"{len(feat.categories)} categories seen in training")
    return None if value == MISSING else value


def _show_category(value: str) -> str:
    """Make leading/trailing spaces visible: cards from before categories were trimmed at
    training hold values like ' Private' (the scorer maps 'Private' to it)."""
    return f"“{value}”" if value != value.strip() else value


def _help(feat: Feature, hint: str) -> str:
    parts = [hint] if hint else []
    if feat.missing_rate:
        parts.append(f"{feat.missing_rate:.0%} missing in training")
    return "; ".join(parts) or "seen in training"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}" if value is not None else ""


def answer(model: LoadedModel, row: dict[str, Any]) -> Answer:
    """Score one row through the Python API — the batch's validation, the batch's reasons —
    then explain it: the explanation scores perturbed copies of the row in one model call, the
    row itself first, which also gives every class's probability (timed: the page shows how
    long the server took)."""
    card = model.card
    t0 = time.perf_counter()
    scored = api.score_frame(pd.DataFrame([row]), model)
    if len(scored.rejected):
        return Answer(
            ref=card.ref, row=row, value=None, proba={},
            explanation=explain.Explanation(float("nan"), (), card.target),
            range_warnings=(), unseen=(), elapsed_ms=(time.perf_counter() - t0) * 1000,
            rejected=tuple(f"{r.code}: {r.message}" for r in scored.rejected.itertuples()),
        )  # fmt: skip
    seen: list[Predictions] = []

    def score(frame: pd.DataFrame) -> np.ndarray:
        preds = predict(model, frame)
        seen.append(preds)
        if card.task == "classification" and preds.proba is not None:
            return preds.proba[:, int(preds.proba[0].argmax())]  # the class predicted for row
        return np.asarray(preds.values, dtype=float)

    why = explain.explain(card, row, score, card.target)
    elapsed = (time.perf_counter() - t0) * 1000
    preds = seen[-1]
    value = scored.predictions["prediction"].iloc[0]
    proba: dict[str, float] = {}
    if card.task == "classification" and preds.proba is not None:
        proba = {c: float(p) for c, p in zip(card.classes, preds.proba[0], strict=True)}
        why = dataclasses.replace(why, target=f"P({value})")
    return Answer(
        ref=card.ref,
        row=row,
        value=value if card.task == "classification" else float(value),
        proba=proba,
        explanation=why,
        range_warnings=tuple(w.message for w in explain.range_warnings(card, row)),
        unseen=tuple(explain.unseen_categories(card, row)),
        elapsed_ms=elapsed,
    )


def _show(card: ModelCard, result: Answer) -> None:
    if result.rejected:
        for reason in result.rejected:
            st.error(f"Not scored — {widgets.md(reason)}", icon=":material/error:")
        return
    for message in result.range_warnings:
        st.warning(widgets.md(message), icon=":material/warning:")
    for name in result.unseen:
        st.warning(
            f"'{widgets.md(name)}' has a value the model never saw in training",
            icon=":material/warning:",
        )
    left, right = st.columns([2, 3], gap="large")
    with left, st.container(border=True):
        if card.task == "classification":
            best = result.proba.get(str(result.value), 0.0)
            st.metric(f"Predicted {card.target}", str(result.value), border=False)
            st.caption(f"probability {best:.1%}")
            st.altair_chart(_proba_chart(result.proba), width="stretch")
        else:
            st.metric(f"Predicted {card.target}", f"{result.value:,.2f}")
        st.caption(
            f"Answered by {result.ref} in {result.elapsed_ms:.0f} ms on the server, "
            "reasons included."
        )
    with right, st.container(border=True):
        st.subheader("Why", anchor=False)
        st.altair_chart(_why_chart(result.explanation), width="stretch")
        st.caption(f"Method: {explain.METHOD}")


def _proba_chart(proba: dict[str, float]) -> alt.Chart:
    frame = pd.DataFrame({"class": list(proba), "probability": list(proba.values())})
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3, color=widgets.PALETTE[widgets.OBSERVED])
        .encode(
            y=alt.Y("class:N", sort="-x", title=None),
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            tooltip=["class", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=alt.Step(34))
    )


def _why_chart(why: explain.Explanation) -> alt.Chart:
    rows = [
        {
            "feature": f"{c.feature} = {_value_text(c.value)}",
            "effect": c.effect,
            "direction": "raises" if c.effect >= 0 else "lowers",
        }
        for c in why.contributions
    ]
    frame = pd.DataFrame(rows)
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3, size=20)
        .encode(
            y=alt.Y("feature:N", sort=None, title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("effect:Q", title=f"effect on {why.target}"),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=["raises", "lowers"], range=["#d6453d", "#2454d6"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["feature", alt.Tooltip("effect:Q", format=",.4g")],
        )
        .properties(height=alt.Step(32))
    )


def _value_text(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return _fmt(value)
    return _show_category(str(value))
