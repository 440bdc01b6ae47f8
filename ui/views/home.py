"""Overview: what dropscore does (the flow in one picture), live counts, where to start."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from scorer.errors import DropscoreError
from ui import data, state, widgets
from ui.settings import UISettings


def flow_dot(settings: UISettings) -> str:
    """The product's flow as Graphviz DOT (drawn in the browser: no system binary needed)."""
    bucket = settings.bucket
    return f"""digraph flow {{
  rankdir=LR; bgcolor="transparent";
  node [shape=box style="rounded,filled" fillcolor="#eef2fb" color="#2454d6"
        fontname="sans-serif" fontsize=11 margin="0.15,0.08"];
  edge [color="#7a8499" fontname="sans-serif" fontsize=9];
  drop [label="CSV dropped into\\ns3://{bucket}/{settings.incoming}"];
  upload [label="Score a file\\n(upload here)"];
  scorer [label="Batch scorer\\nvalidates every row,\\nscores with the model"];
  registry [label="Model registry\\n(production version)" fillcolor="#f3f4f7" color="#a9b4c9"];
  out [label="s3://{bucket}/{settings.scored}\\npredictions · rejected rows\\n· manifest"];
  runs [label="Runs page\\nstatus, alerts, drift"];
  predict [label="Predict\\none row by hand" fillcolor="#f3f4f7" color="#a9b4c9"];
  drop -> scorer; upload -> scorer [label="send to\\nthe bucket"];
  registry -> scorer; scorer -> out; out -> runs; registry -> predict [style=dashed];
}}"""


def render() -> None:
    settings = state.settings()
    st.title("dropscore")
    st.markdown(
        "Scores CSV files with a trained model. Drop a file into the bucket (or upload it here) "
        "and every row is checked against the model's card, scored, or kept aside with the "
        "reason — each file ends in exactly one **manifest** that says what happened."
    )
    st.graphviz_chart(flow_dot(settings), width="stretch")
    _counts(settings)
    st.subheader("Where to start", anchor=False)
    cols = st.columns(4)
    for col, (page, text) in zip(
        cols,
        (
            ("predict", "Try the model on one row, with the reasons for its answer."),
            ("score", "Upload a CSV: scored like a batch run, previewed, downloadable."),
            ("runs", "Every run in the bucket: status, alerts, drift, rejected rows."),
            ("models", "The registry's models and versions; promote one to production."),
        ),
        strict=True,
    ):
        with col.container(border=True):
            st.page_link(state.page(page))
            st.caption(text)


def _counts(settings: UISettings) -> None:
    listed = data.runs(settings.bucket, settings.scored)
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    todays = [r for r in listed if r.summary.started_at.startswith(today)]
    st.subheader("Right now", anchor=False)
    cols = st.columns(4)
    cols[0].metric("Runs today (UTC)", widgets.fmt_number(len(todays)))
    cols[1].metric(
        "ok · partial · failed (today)",
        " · ".join(
            widgets.fmt_number(sum(r.summary.status == s for r in todays))
            for s in ("ok", "partial", "failed")
        ),
    )
    cols[2].metric(
        "Runs with alerts (today)",
        widgets.fmt_number(sum(bool(r.alerts) for r in todays)),
        help="Drift, unseen categories, values outside training or many rejected rows.",
    )
    names = data.model_names(settings.registry)
    default = settings.default_model
    try:
        aliases = data.aliases(settings.registry, default.name) if default.name in names else {}
    except DropscoreError:
        aliases = {}
    alias = default.alias or "production"
    if default.version is not None:
        used = f"{default.name} v{default.version}"
    elif alias in aliases:
        used = f"{default.name} v{aliases[alias]}"
    else:
        used = "missing"
    cols[3].metric(
        "Batch model",
        used,
        help=f"DROPSCORE_MODEL = {settings.model}; {len(names):,} model(s) in the registry.",
    )
    if used == "missing":
        st.error(
            widgets.md(
                f"model '{default.name}' has no version/alias '{alias}' in {settings.registry}: "
                "batch runs will fail until one is published or promoted."
            ),
            icon=":material/error:",
        )
    st.caption(
        f"{widgets.fmt_number(len(listed))} runs in all · models: "
        + (", ".join(widgets.md(n) for n in names) or "none yet")
    )
