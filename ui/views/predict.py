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
from scorer.codes import Code
from scorer.model import LoadedModel
from scorer.predict import predict
from scorer.schema import probability_columns
from ui import data, form, state, widgets

MISSING = "(missing)"


@dataclass(frozen=True, slots=True)
class Answer:
    ref: str  # model name@version that answered
    row: dict[str, Any]  # what was sent: numbers as the text typed ("" = missing)
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
    st.caption(
        "One prediction from the form below, with the reasons behind it. Numbers are used "
        "exactly as typed; an empty optional number is a missing value."
    )
    choice = widgets.model_picker(settings, key="predict")
    card = choice.card
    st.markdown(widgets.describe_card(card))
    with st.form("predict-form", border=True):
        row, problems = _inputs(card)
        submitted = st.form_submit_button("Predict", type="primary", icon=":material/bolt:")
    if submitted and problems:
        st.session_state.pop(state.PREDICT_RESULT, None)  # never beside inputs it did not use
        st.error(
            f"Not predicted: {len(problems)} field{'s' if len(problems) > 1 else ''} "
            f"({', '.join(widgets.md(p) for p in problems)}) "
            f"{'need' if len(problems) > 1 else 'needs'} fixing — see the message under "
            f"{'each' if len(problems) > 1 else 'it'}.",
            icon=":material/error:",
        )
        return
    if submitted:
        model = data.loaded_model(settings.registry, card.name, card.version)
        st.session_state[state.PREDICT_RESULT] = answer(model, row)
    result: Answer | None = st.session_state.get(state.PREDICT_RESULT)
    if result is not None and result.ref == card.ref:
        _show(card, result)


def _inputs(card: ModelCard) -> tuple[dict[str, Any], list[str]]:
    """The row as typed (numbers as their text) and the fields refused."""
    row: dict[str, Any] = {}
    problems: list[str] = []
    columns = st.columns(3, gap="medium")
    for i, feat in enumerate(card.features):
        with columns[i % 3]:
            key = f"predict.{card.ref}.{i}"
            if feat.kind == "number":
                entry = _number(feat, key)
                row[feat.name] = entry.text
                if entry.error:
                    problems.append(feat.name)
            else:
                row[feat.name] = _category(feat, key)
    return row, problems


def _number(feat: Feature, key: str) -> form.Entry:
    lo, hi = feat.min, feat.max
    hint = f"training range {_fmt(lo)} – {_fmt(hi)}" if lo is not None and hi is not None else ""
    rules = ["whole number"] if feat.integer else []
    if feat.nullable:
        rules.append("empty = missing")
    text = st.text_input(
        feat.name,
        value=form.default_text(feat),
        key=key,
        placeholder="empty = missing" if feat.nullable else "a number",
        help=_help(feat, hint),
    )
    entry = form.read_number(feat, text)
    if entry.error:
        st.error(widgets.md(entry.error), icon=":material/error:")
    parts = [hint] if hint else []
    if feat.typical is not None:
        parts.append(f"typical {_fmt(feat.typical)}")
    st.caption(" · ".join(parts + rules))
    return entry


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
    return widgets.fmt_number(value)  # one number format on every page (ui/formats.py)


def answer(model: LoadedModel, row: dict[str, Any]) -> Answer:
    """Score one row through the Python API — the batch's validation, reasons and warnings —
    then explain it: exactly where the model allows it (``explain.exact``), else by perturbed
    copies of the row in one model call (timed: the page shows how long the server took).
    Numbers may come as the text typed: the batch reads them as it reads a file's cells."""
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
    values = _values(card, row)
    value = scored.predictions["prediction"].iloc[0]
    proba: dict[str, float] = {}
    if card.task == "classification":  # the batch's probability column per class
        first = scored.predictions.iloc[0]
        columns = probability_columns(card)
        proba = {c: float(first[col]) for c, col in zip(card.classes, columns, strict=True)}
    why = explain.exact(model, values) or _approximate(model, values, proba)
    elapsed = (time.perf_counter() - t0) * 1000
    warned = scored.manifest.warnings_by_column
    ranges = {w.feature: w.message for w in explain.range_warnings(card, values)}
    return Answer(
        ref=card.ref,
        row=row,
        value=value if card.task == "classification" else float(value),
        proba=proba,
        explanation=why,
        range_warnings=tuple(
            ranges.get(col, f"'{col}' is outside the training range")
            for col, codes in warned.items()
            if Code.OUT_OF_RANGE in codes
        ),
        unseen=tuple(col for col, codes in warned.items() if Code.UNSEEN_CATEGORY in codes),
        elapsed_ms=elapsed,
    )


def _values(card: ModelCard, row: dict[str, Any]) -> dict[str, Any]:
    """The row's values as the batch read them: a number's text as its float, "" missing."""
    out = dict(row)
    for feat in card.features:
        value = row.get(feat.name)
        if feat.kind == "number" and isinstance(value, str):
            out[feat.name] = float(value) if value.strip() else None
    return out


def _approximate(
    model: LoadedModel, row: dict[str, Any], proba: dict[str, float]
) -> explain.Explanation:
    card = model.card

    def score(frame: pd.DataFrame) -> np.ndarray:
        preds = predict(model, frame)
        if card.task == "classification" and preds.proba is not None:
            return preds.proba[:, int(preds.proba[0].argmax())]  # the class predicted for row
        return np.asarray(preds.values, dtype=float)

    why = explain.explain(card, row, score, card.target)
    if card.task == "classification":
        best = max(proba, key=lambda c: proba[c]) if proba else "predicted class"
        why = dataclasses.replace(why, target=f"P({best})")
    return why


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
        _why(result.explanation)
    with st.expander("Values used"):
        st.caption("Exactly what the model was given (a number as typed; empty = missing).")
        st.dataframe(
            pd.DataFrame(
                {
                    "column": list(result.row),
                    "value": [_value_text(_used(v)) for v in result.row.values()],
                }
            ),
            hide_index=True,
        )


def _used(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _why(why: explain.Explanation) -> None:
    exact = why.base is not None
    color = "green" if exact else "gray"
    st.subheader("Why", anchor=False)
    st.markdown(f":{color}-badge[{why.method}] on *{widgets.md(why.target)}*")
    if why.base is not None:
        cols = st.columns(2)
        change = why.prediction - why.base
        cols[0].metric("Base value", _score_text(why.base, why.target), border=False)
        cols[1].metric(
            "Prediction",
            _score_text(why.prediction, why.target),
            delta=f"{change:+,.3f} from the base"
            if why.target.startswith("log-odds")
            else f"{change:+,.2f} from the base",
            delta_color="off",
            border=False,
        )
        if why.target.startswith("log-odds"):  # the probabilities those log-odds stand for
            cols[0].caption(f"P {_expit(why.base):.1%}")
            cols[1].caption(f"P {_expit(why.prediction):.1%}")
    else:
        st.caption(
            "No single base value: each bar is measured from the average prediction with that "
            "column at its training values, so the bars do not add up to the prediction."
        )
    st.altair_chart(_why_chart(why), width="stretch")
    st.caption(f"Method — {why.method}: {why.text}")


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _score_text(value: float, target: str) -> str:
    """A base value or prediction in the explained quantity's own format."""
    if target.startswith("log-odds"):
        return f"{value:+.3f}"
    if target.startswith("P("):
        return f"{value:.1%}"
    return f"{value:,.2f}"


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
            tooltip=["feature", alt.Tooltip("effect:Q", format=",.6g")],
        )
        .properties(height=alt.Step(32))
    )


def _value_text(value: Any) -> str:
    """A value at the precision used (30.23 stays 30.23)."""
    if value is None:
        return "missing"
    if isinstance(value, float):
        return form.value_text(value)
    return _show_category(str(value))
