"""Runs: every run under scored/, newest first, and one run in detail (drift, rejects, files)."""

from __future__ import annotations

import datetime as dt
import math

import altair as alt
import pandas as pd
import streamlit as st

from scorer import catalog, cost, drift, layout
from scorer.card import ModelCard
from scorer.errors import BadArgument, DropscoreError
from scorer.manifest import Manifest
from ui import data, state, widgets
from ui.settings import UISettings
from ui.views.score import preview_table, show_warnings

PAGE_SIZE = 25
RUN_PARAM = "run"
ALL = "All"


def render() -> None:
    settings = state.settings()
    key = st.query_params.get(RUN_PARAM)
    if key:
        _detail(settings, str(key))
    else:
        _listing(settings)


# --- the list ----------------------------------------------------------------------------------
FILTER_KEYS = ("runs.status", "runs.model", "runs.search", "runs.page")


def _restore_filters(models: list[str]) -> None:
    """Streamlit forgets a widget's value on a run that does not draw it (a run's detail, another
    page); the filters are kept under their own key and put back before the widgets are drawn."""
    saved: dict[str, object] = st.session_state.get(state.RUN_FILTERS, {})
    for key, value in saved.items():
        if key not in st.session_state and value is not None:
            if key == "runs.model" and value not in (ALL, *models):
                continue  # that model has no run any more
            st.session_state[key] = value


def _save_filters() -> None:
    st.session_state[state.RUN_FILTERS] = {k: st.session_state.get(k) for k in FILTER_KEYS}


def _listing(settings: UISettings) -> None:
    st.title("Runs")
    head, button = st.columns([5, 1], vertical_alignment="bottom")
    head.caption(
        f"Every run under s3://{settings.bucket}/{settings.scored}, newest first · listed at "
        f"{dt.datetime.now(dt.UTC):%H:%M:%S} UTC; new runs show up within {data.RUNS_TTL} s."
    )
    if button.button("Refresh", icon=":material/refresh:", key="runs.refresh"):
        data.refresh_runs()
    listed = data.runs(settings.bucket, settings.scored)
    if not listed:
        st.info(
            f"No runs yet. Drop a CSV into s3://{settings.bucket}/{settings.incoming} or use "
            "**Score a file → Send to the bucket**; its run shows up here.",
            icon=":material/inbox:",
        )
        return
    models = sorted({f"{r.summary.model} v{r.summary.model_version}" for r in listed})
    _restore_filters(models)
    f1, f2, f3 = st.columns([2, 2, 3])
    statuses = f1.pills(
        "Status", ["ok", "partial", "failed"], selection_mode="multi", key="runs.status"
    )
    model = f2.selectbox("Model", [ALL, *models], key="runs.model")
    text = f3.text_input("Input contains", key="runs.search", placeholder="e.g. 2024/claims")
    shown = [
        r
        for r in listed
        if (not statuses or r.summary.status in statuses)
        and (model == ALL or f"{r.summary.model} v{r.summary.model_version}" == model)
        and (not text or text.lower() in r.summary.input.lower())
    ]
    alerted = sum(bool(r.alerts) for r in shown)
    st.caption(
        f"{len(shown):,} of {len(listed):,} runs · "
        f"{sum(r.summary.status == 'ok' for r in shown):,} ok · "
        f"{sum(r.summary.status == 'partial' for r in shown):,} partial · "
        f"{sum(r.summary.status == 'failed' for r in shown):,} failed · "
        f"{alerted:,} with alerts"
    )
    st.caption(widgets.md(_month_cost_line([r.summary for r in listed])))  # cost: all runs
    if not shown:
        _save_filters()
        st.info("No run matches these filters.")
        return
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    if int(st.session_state.get("runs.page", 1) or 1) > pages:
        st.session_state["runs.page"] = pages
    page = min(max(int(st.session_state.get("runs.page", 1) or 1), 1), pages)
    chunk = shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    table = pd.DataFrame(
        {
            "status": [widgets.status_label(r.summary.status, r.alerts) for r in chunk],
            "input": [r.summary.input for r in chunk],  # before the alerts: names the run
            "alerts": [widgets.alert_summary(r.alerts) for r in chunk],
            "started (UTC)": [r.summary.started_at[:19].replace("T", " ") for r in chunk],
            "rows in": [r.summary.rows_in for r in chunk],
            "scored": [r.summary.rows_scored for r in chunk],
            "rejected": [r.summary.rows_rejected for r in chunk],
            "model": [f"{r.summary.model} v{r.summary.model_version}" for r in chunk],
            "duration (s)": [r.summary.duration_s for r in chunk],
            # cost (issue 15): None where no figure exists (a local run)
            "cost (USD)": [r.summary.cost_usd for r in chunk],
        }
    )
    event = st.dataframe(
        table.style.map(_status_style, subset=["status", "alerts"]),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"runs.table.{page}",
        column_config={
            "status": st.column_config.TextColumn(width="medium"),
            "alerts": st.column_config.TextColumn(width="large"),
            "rows in": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT),
            "scored": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT),
            "rejected": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT),
            "duration (s)": st.column_config.NumberColumn(format=widgets.SECONDS_FORMAT),
            "cost (USD)": st.column_config.NumberColumn(format="%.6f"),
        },
    )
    if pages > 1:
        st.pagination(pages, key="runs.page")
    _save_filters()
    selected = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    labels = {
        r.summary.key: f"{r.summary.input} · {r.summary.started_at[:16].replace('T', ' ')} · "
        f"{widgets.status_label(r.summary.status, r.alerts)}"
        for r in chunk
    }
    choice = st.selectbox(
        "Open a run",
        list(labels),
        index=None,
        format_func=labels.__getitem__,
        placeholder="Choose a run (or click a row in the table)",
        key=f"runs.open.{page}",
    )
    target = chunk[selected[0]].summary.key if selected else choice
    if target:
        st.query_params[RUN_PARAM] = target
        st.rerun()


# --- cost (issue 15) ----------------------------------------------------------------------------
def _month_cost_line(summaries: list[catalog.RunSummary]) -> str:
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    usd, priced, unpriced = catalog.month_cost(summaries, month)
    line = f"Cost this month ({month}, UTC): ${usd:.4f} estimated over {priced:,} Fargate run(s)"
    if unpriced:
        line += f"; {unpriced:,} run(s) without a figure (local, or size unknown)"
    return line


def _status_style(value: str) -> str:
    if "major" in value:
        color = "#b3261e"
    elif "warning" in value:
        color = "#a86b00"
    else:
        color = {"ok": "#1f7a3f", "partial": "#a86b00", "failed": "#b3261e"}.get(value, "")
    return f"color: {color}; font-weight: 600" if color else ""


# --- one run ------------------------------------------------------------------------------------
def _detail(settings: UISettings, key: str) -> None:
    if st.button("All runs", icon=":material/arrow_back:", type="tertiary"):
        del st.query_params[RUN_PARAM]
        st.rerun()
    try:
        path = layout.check_run_path(settings.bucket, key)
    except BadArgument as exc:
        st.error(widgets.md(exc.message), icon=":material/block:")
        return
    m = data.manifest(settings.bucket, path.key, settings.scored)
    if m is None:
        st.title("Run not found (yet)")
        st.info(
            f"There is no committed run {path.run_id} for {path.rel}. If the file was just "
            "sent, the batch scorer may still be working on it: refresh in a few seconds.",
            icon=":material/hourglass_top:",
        )
        if st.button("Refresh", icon=":material/refresh:"):
            st.rerun()
        return
    source = m.input.key or path.rel
    # the file's name as the title (breaks at its hyphens on a phone), the full path below it
    st.title(widgets.md(source.rsplit("/", 1)[-1]))
    name, version = m.model.name, m.model.version
    st.markdown(
        f"{widgets.status_markdown(m.status, m.alerts)} &nbsp; {widgets.md(source)} · run "
        f"`{path.run_id}` · model **{widgets.md(name)} v{widgets.md(version)}** · started "
        f"{m.started_at[:19].replace('T', ' ')} UTC"
    )
    job = layout.job_occurrence(path.rel)
    if job is not None:  # a run of one occurrence of an 'all' job
        st.page_link(
            state.page("schedules"),
            label=f"Job {widgets.md(job[0])}, occurrence {job[1]}",
            icon=":material/schedule:",
            query_params={"job": job[0]},
        )
    if m.status == "failed" and m.reason:
        st.error(
            f"{m.reason.code}: {widgets.md(m.reason.message)}",
            icon=":material/error:",
        )
    if m.alerts:
        major = sum(a.level == "major" for a in m.alerts)
        box = st.error if major else st.warning
        box(
            f"**{len(m.alerts)} alert{'s' if len(m.alerts) != 1 else ''}"
            f"{f' ({major} major)' if major else ''}: this file does not look like the data "
            "the model was trained on; treat its predictions with care.**  \n"
            + "  \n".join(widgets.md(g) for g in widgets.alert_summary(m.alerts).split("; "))
            + "  \nEach alert with its numbers is in the **Warnings** tab.",
            icon=":material/notifications:",
        )
    cols = st.columns(5)
    cols[0].metric("Rows in", widgets.fmt_number(m.rows_in))
    cols[1].metric("Scored", widgets.fmt_number(m.rows_scored))
    cols[2].metric("Rejected", widgets.fmt_number(m.rows_rejected))
    cols[3].metric("Duration", f"{m.duration_s:,.2f} s")
    cols[4].metric("Rows/s", widgets.fmt_number(round(m.rows_per_s)))
    st.caption(f"Cost: {widgets.md(cost.describe(m.cost, m.task))}")  # cost (issue 15)
    st.caption(f"Ran {execution(m)}")  # issue 14: one process, forked workers or Dask shards
    card: ModelCard | None
    try:
        card = data.card(settings.registry, name, int(version)) if version is not None else None
    except (DropscoreError, ValueError):
        card = None
    tabs = st.tabs(
        [
            "Drift",
            "Predictions",
            f"Rejected rows ({m.rows_rejected:,})",
            "Warnings",
            "Downloads",
            "Manifest",
        ]
    )
    with tabs[0]:
        if card is None:
            st.info(f"The model card of {name} v{version} is not in the registry; no baseline.")
        else:
            _drift(card, m)
    with tabs[1]:
        _predictions(settings, path, m)
    with tabs[2]:
        _rejected(settings, path, m)
    with tabs[3]:
        show_warnings(m)
        if card is not None and m.warnings_by_column:
            _row_warnings(settings, path, m, card)
    with tabs[4]:
        _downloads(settings, path, m)
    with tabs[5]:
        st.json(m.to_json(), expanded=True)


def execution(m: Manifest) -> str:
    """How the run was executed, as its manifest records it."""
    if m.shards:  # workers then counts the Dask workers the cluster had when the run started
        return f"in {_count(m.shards, 'shard')} on {_count(m.workers, 'Dask worker')}"
    if m.workers:
        return f"on {_count(m.workers, 'forked worker')}"
    return "in one process"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _drift(card: ModelCard, m: Manifest) -> None:
    if not m.distributions:
        st.info("This run recorded no distributions (nothing was scored).")
        return
    pred, features = drift.run_drift(card, m.distributions)
    st.subheader("Predictions against the training baseline", anchor=False)
    if pred.count:
        st.altair_chart(
            widgets.compare_chart(pred.buckets, pred.baseline, pred.observed, ""),
            width="stretch",
            height=320,
        )
        st.caption(
            f"PSI {pred.psi:.3f} ({pred.level}) over {pred.count:,} predictions; the baseline "
            "is the model's predictions on its hold-out data."
        )
    else:
        st.info("No predictions to compare.")
    st.subheader("Drift per feature (PSI)", anchor=False)
    rows = [
        {"feature": d.name, "PSI": d.psi, "level": d.level, "rows": d.count, "missing": d.missing}
        for d in features
    ]
    frame = pd.DataFrame(rows)
    st.altair_chart(_psi_chart(frame), width="stretch")
    flagged = [d for d in features if d.level in ("moderate", "major")]
    if flagged:
        st.warning(
            "Drifted: "
            + ", ".join(f"{widgets.md(d.name)} (PSI {d.psi:.2f}, {d.level})" for d in flagged)
            + f". Above {drift.MODERATE} is a moderate shift, above {drift.MAJOR} a major one.",
            icon=":material/trending_up:",
        )
    else:
        st.success(
            f"No feature drifted: every PSI is below {drift.MODERATE}.", icon=":material/check:"
        )
    usable = [d for d in features if d.count]
    if usable:
        worst = max(usable, key=lambda d: d.psi)
        names = [d.name for d in usable]
        pick = st.columns([2, 3])[0].selectbox(
            "Compare a feature's distribution", names, index=names.index(worst.name),
            key="runs.feature",
        )  # fmt: skip
        chosen = usable[names.index(pick)]
        st.altair_chart(
            widgets.compare_chart(chosen.buckets, chosen.baseline, chosen.observed, pick),
            width="stretch",
            height=320,
        )
    with st.expander("PSI table"):
        st.dataframe(
            frame,
            hide_index=True,
            column_config={"PSI": st.column_config.NumberColumn(format="%.3f")},
        )


def _psi_chart(frame: pd.DataFrame) -> alt.LayerChart:
    top = max(float(frame["PSI"].max() if len(frame) else 0), drift.MAJOR * 1.3)
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3, size=20)
        .encode(
            y=alt.Y("feature:N", sort="-x", title=None, axis=alt.Axis(labelLimit=240)),
            x=alt.X("PSI:Q", scale=alt.Scale(domain=[0, top]), title="PSI"),
            color=alt.Color(
                "level:N",
                scale=alt.Scale(
                    domain=list(widgets.LEVEL_COLOR), range=list(widgets.LEVEL_COLOR.values())
                ),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["feature", alt.Tooltip("PSI:Q", format=".3f"), "level", "rows", "missing"],
        )
    )
    rules = (
        alt.Chart(pd.DataFrame({"PSI": [drift.MODERATE, drift.MAJOR]}))
        .mark_rule(strokeDash=[4, 4], color="#7a8499")
        .encode(x="PSI:Q")
    )
    return (bars + rules).properties(height=alt.Step(32))


def _predictions(settings: UISettings, path: layout.RunPath, m: Manifest) -> None:
    url = catalog.output_url(path, m, "predictions", settings.scored)
    if url is None:
        st.info("No predictions: no row could be scored.")
        return
    preview = data.csv_preview(url)
    st.caption(data.preview_note(preview, "rows", m.rows_scored))
    preview_table(preview.frame)


def _rejected(settings: UISettings, path: layout.RunPath, m: Manifest) -> None:
    if not m.rows_rejected:
        st.info("No rows were rejected.")
        return
    by_code = pd.DataFrame(
        {"reason": list(m.rejected_by_code), "rows": list(m.rejected_by_code.values())}
    )
    st.dataframe(
        by_code,
        hide_index=True,
        width="content",
        column_config={"rows": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT)},
    )
    url = catalog.output_url(path, m, "rejected", settings.scored)
    if url is None:
        return
    preview = data.csv_preview(url)
    st.caption(data.preview_note(preview, "rejected rows", m.rows_rejected))
    st.dataframe(preview.frame, hide_index=True)


def _row_warnings(settings: UISettings, path: layout.RunPath, m: Manifest, card: ModelCard) -> None:
    url = catalog.output_url(path, m, "predictions", settings.scored)
    if url is None:
        return
    decimal = str((m.input.dialect or {}).get("decimal") or ".")
    found = data.preview_warnings(url, settings.registry, card.name, card.version, decimal)
    st.subheader("Row by row", anchor=False)
    st.caption(
        f"The warnings of the first {data.PREVIEW_ROWS:,} scored rows, found by checking each "
        "row against the model card again (download the predictions for all)."
    )
    if found.empty:
        st.info("None of these rows has a warning.")
        return
    st.dataframe(
        found,
        hide_index=True,
        column_config={"row": st.column_config.NumberColumn(format=widgets.COUNT_FORMAT)},
    )


def _downloads(settings: UISettings, path: layout.RunPath, m: Manifest) -> None:
    stem = path.rel.rsplit("/", 1)[-1]
    for name, label in (("predictions", "Predictions CSV"), ("rejected", "Rejected rows CSV")):
        url = catalog.output_url(path, m, name, settings.scored)
        if url is None:
            continue
        size = m.outputs[name].bytes  # listed: output_url found it
        st.download_button(
            f"{label} ({size / 1024 / 1024:.1f} MB)" if size > 1 << 20 else label,
            lambda url=url: data.object_bytes(url),
            f"{stem}-{path.run_id}-{name}.csv",
            "text/csv",
            icon=":material/download:",
            key=f"runs.dl.{name}",
        )
    st.download_button(
        "Manifest JSON", m.to_json(), f"{stem}-{path.run_id}-manifest.json", "application/json",
        icon=":material/download:", key="runs.dl.manifest",
    )  # fmt: skip
