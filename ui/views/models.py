"""Models: versions with metrics, what each alias points at, promotion, and the card's features."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from scorer.card import ModelCard
from scorer.cliutil import os_user
from scorer.errors import DropscoreError
from scorer.promotion import NOTE_LIMIT, Comparison, check_note, compare
from scorer.refs import DEFAULT_ALIAS
from scorer.registry import Registry
from ui import data, state, widgets
from ui.auth import Viewer


def render() -> None:
    settings = state.settings()
    viewer = state.viewer()
    st.title("Models")
    st.caption(f"The registry at {settings.registry}.")
    names = data.model_names(settings.registry)
    if not names:
        st.info("No models yet: train one with `python -m training train`.")
        return
    default = settings.default_model.name
    if default not in names:  # named, never silently swapped for another model
        st.error(
            widgets.md(
                f"The configured model '{default}' is not in {settings.registry}; models there: "
                f"{', '.join(names)}. Pick one to see it, or fix DROPSCORE_MODEL."
            ),
            icon=":material/error:",
        )
    name = st.columns([2, 3])[0].selectbox(
        "Model",
        names,
        index=names.index(default) if default in names else None,
        key="models.name",
        placeholder="Choose a model",
    )
    if name is None:
        return
    versions = data.versions(settings.registry, name)
    aliases = data.aliases(settings.registry, name)
    cards = [data.card(settings.registry, name, v) for v in sorted(versions, reverse=True)]
    if not cards:
        st.info(f"'{name}' has no published version yet.")
        return
    promoted = st.session_state.pop(state.PROMOTED, None)
    if promoted:
        st.success(promoted, icon=":material/check_circle:")
    if aliases:
        st.markdown(
            "  ".join(f":blue-badge[{alias} → v{v}]" for alias, v in sorted(aliases.items()))
        )
    st.subheader("Versions", anchor=False)
    st.dataframe(_versions_table(cards, aliases), hide_index=True)
    _promotion(settings.registry, name, cards, aliases, viewer)
    _history(settings.registry, name)
    st.subheader("Features", anchor=False)
    shown = st.columns([2, 3])[0].selectbox(
        "Card of version",
        [c.version for c in cards],
        index=_index_of(cards, aliases.get(DEFAULT_ALIAS)),
        format_func=lambda v: f"v{v}",
        key="models.card",
    )
    card = next(c for c in cards if c.version == shown)
    st.dataframe(_features_table(card), hide_index=True)
    with st.expander("Training data, libraries and integrity"):
        st.write(
            {
                "target": card.target,
                "task": card.task,
                "estimator": card.estimator,
                "classes": list(card.classes),
                "training data": card.to_dict()["training_data"],
                "libraries": card.libraries,
                "model.pkl sha256": card.model_sha256,
            }
        )


def _index_of(cards: list[ModelCard], version: int | None) -> int:
    for i, c in enumerate(cards):
        if c.version == version:
            return i
    return 0


def _versions_table(cards: list[ModelCard], aliases: dict[str, int]) -> pd.DataFrame:
    rows = []
    for c in cards:
        row: dict[str, object] = {
            "version": f"v{c.version}",
            "aliases": ", ".join(sorted(a for a, v in aliases.items() if v == c.version)),
            "created (UTC)": c.created_at[:19].replace("T", " "),
            "estimator": c.estimator,
            "training rows": c.training_data.rows,
        }
        row.update({k: float(f"{float(v):.4g}") for k, v in c.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _features_table(card: ModelCard) -> pd.DataFrame:
    rows = []
    for f in card.features:
        if f.kind == "number":
            seen = f"{f.min:g} – {f.max:g}" if f.min is not None and f.max is not None else ""
        else:
            cats = ", ".join(repr(c) if c != c.strip() else c for c in f.categories[:8])
            seen = cats + (f" … (+{len(f.categories) - 8})" if len(f.categories) > 8 else "")
        rows.append(
            {
                "feature": f.name,
                "kind": f.kind + (" (whole)" if f.integer else ""),
                "required": f.required,
                "may be empty": f.nullable,
                "seen in training": seen,
                "typical": _typical(f.typical),
                "missing in training": f"{f.missing_rate:.1%}",
            }
        )
    return pd.DataFrame(rows)


def _typical(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return repr(value) if value != value.strip() else value
    return f"{value:,.6g}"


def _promotion(
    registry: str, name: str, cards: list[ModelCard], aliases: dict[str, int], viewer: Viewer
) -> None:
    st.subheader("Promote", anchor=False)
    current = aliases.get(DEFAULT_ALIAS)
    if not viewer.can_promote:
        st.info(
            f"Only administrators can promote a version ({viewer.label} is not one; the list is "
            "DROPSCORE_UI_ADMINS).",
            icon=":material/lock:",
        )
        return
    candidates = [c.version for c in cards if c.version != current]
    if not candidates:
        st.caption(f"v{current} is the only version and already {DEFAULT_ALIAS}.")
        return
    version = st.columns([2, 3])[0].selectbox(
        f"Version to make {DEFAULT_ALIAS}", candidates, format_func=lambda v: f"v{v}",
        key="models.promote.version",
    )  # fmt: skip
    candidate = next(c for c in cards if c.version == version)
    before = next((c for c in cards if c.version == current), None)
    comparison = compare(before, candidate)
    table = _comparison_table(comparison, before, candidate)
    # tall enough for every row: a comparison that scrolls hides the features added/removed
    st.dataframe(table, hide_index=True, height=35 * (len(table) + 1) + 3)
    for warning in comparison.warnings:
        st.warning(warning, icon=":material/warning:")
    # keys carry the current version: after a promotion the note and the tick start empty
    suffix = f"{name}.{current}"
    note = st.text_area(
        "Note (required): why this version",
        key=f"models.promote.note.{suffix}",
        max_chars=NOTE_LIMIT,
        placeholder="e.g. retrained on October data; r2 0.84 on its hold-out",
        height=80,
    )
    confirm = st.checkbox(
        f"Yes: batch runs from now on use v{version} instead of "
        + (f"v{current}" if current else "nothing")
        + (" despite the warning" if comparison.warnings else ""),
        key=f"models.promote.confirm.{suffix}",
    )
    ready = confirm and bool(note.strip())
    if not note.strip():
        st.caption("Type a note to enable promotion; it is kept in the promotion history.")
    if st.button(
        f"Promote v{version} to {DEFAULT_ALIAS}",
        type="primary",
        disabled=not ready,
        icon=":material/rocket_launch:",
    ):
        try:
            Registry(registry).promote(
                name,
                int(version),
                DEFAULT_ALIAS,
                note=check_note(note),
                by=viewer.email or f"{os_user()} (local mode)",
                warnings=comparison.warnings,
                expected_from=current,
            )
        except DropscoreError as exc:
            data.forget_aliases()  # a conflict means the page is out of date: show what is now
            st.error(widgets.md(exc.message), icon=":material/error:")
            return
        data.forget_aliases()
        st.session_state[state.PROMOTED] = f"{name} v{version} is now {DEFAULT_ALIAS}."
        st.rerun()


def _comparison_table(
    comparison: Comparison, before: ModelCard | None, candidate: ModelCard
) -> pd.DataFrame:
    now = f"now: v{before.version}" if before else f"now: no {DEFAULT_ALIAS}"
    new = f"candidate: v{candidate.version}"
    return pd.DataFrame([{"": what, now: a, new: b} for what, a, b in comparison.rows])


def _history(registry: str, name: str) -> None:
    st.subheader("Promotion history", anchor=False)
    records = data.history(registry, name)
    if not records:
        st.caption("No promotions recorded yet (records start with this version of dropscore).")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when (UTC)": p.at[:19].replace("T", " "),
                    "alias": p.alias,
                    "change": p.moved,
                    "by": p.by,
                    "note": p.note,
                    "warning shown": " ".join(p.warnings),
                }
                for p in records
            ]
        ),
        hide_index=True,
    )
