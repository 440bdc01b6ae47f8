"""Schedules: every job, its schedule in words, its next occurrence and its last result, and
"run now" for administrators."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from scorer import jobrun, jobs
from scorer.errors import DropscoreError
from scorer.manifest import AlertEntry
from ui import state, widgets
from ui.settings import UISettings

JOB_PARAM = "job"
STARTED = "schedules.started"
EARLY_EXIT_S = 3.0  # how long "run now" waits for a refusal before saying it started
_ROOT = Path(__file__).resolve().parents[2]


@st.cache_data(ttl=10, show_spinner=False)
def _jobs(bucket: str) -> list[jobs.Job]:
    return jobs.list_jobs(bucket)


@st.cache_data(ttl=60, show_spinner=False)
def _month_cost(bucket: str, name: str, month: str) -> tuple[float, int, bool]:
    return jobrun.month_cost(bucket, name, month)


@st.cache_data(ttl=10, show_spinner=False)
def _last(bucket: str, name: str) -> dict[str, Any] | None:
    found = jobrun.occurrences(bucket, name)
    return jobrun.read_occurrence(bucket, name, found[-1]) if found else None


def render() -> None:
    settings = state.settings()
    viewer = state.viewer()
    st.title("Schedules")
    st.caption(
        f"Scheduled scoring jobs in s3://{settings.bucket}/{jobs.PREFIX} "
        "(add them with `python -m scorer jobs add`)."
    )
    if STARTED in st.session_state:
        st.success(st.session_state.pop(STARTED), icon=":material/play_arrow:")
    try:
        found = _jobs(settings.bucket)
    except DropscoreError as exc:
        st.error(widgets.md(exc.message), icon=":material/error:")
        return
    if not found:
        st.info("No scheduled job yet.", icon=":material/schedule:")
        return
    now = dt.datetime.now(dt.UTC)
    rows = [_row(settings, job, now) for job in found]
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    names = [j.name for j in found]
    wanted = st.query_params.get(JOB_PARAM)
    name = st.selectbox(
        "Job", names, index=names.index(wanted) if wanted in names else 0, key="schedules.job"
    )
    job = next(j for j in found if j.name == name)
    _last_result(settings, job)
    _run_now(settings, job, viewer.can_promote, viewer.label)


def _row(settings: UISettings, job: jobs.Job, now: dt.datetime) -> dict[str, Any]:
    sched = job.parsed_schedule
    last = _last(settings.bucket, job.name)
    totals = (last or {}).get("totals", {})
    return {
        "job": job.name,
        "mode": job.mode,
        "source": job.source,
        "model": job.model,
        "schedule": sched.words(),
        "next (UTC)": sched.next(now).strftime("%Y-%m-%d %H:%M"),
        "last occurrence": (last or {}).get("occurrence", "—"),
        "last status": (last or {}).get("status", "—"),
        "scored": totals.get("ok", 0) + totals.get("partial", 0),
        "failed": totals.get("failed", 0),
        "already scored": totals.get("skipped", 0),
        "alerts": totals.get("alerts", 0),
        # cost (issue 15): what this month's occurrences' runs are estimated to have cost
        "cost this month (USD)": _month_cost(settings.bucket, job.name, now.strftime("%Y-%m"))[0],
    }


def _last_result(settings: UISettings, job: jobs.Job) -> None:
    last = _last(settings.bucket, job.name)
    st.subheader(f"Last occurrence of {job.name}", anchor=False)
    if last is None:
        st.caption("It has not run yet.")
        return
    t = last["totals"]
    st.markdown(
        f"`{last['occurrence']}` · **{last['status']}** · model **{widgets.md(last['model'])}** · "
        f"{last['objects_matched']} object(s) matched · finished "
        f"{str(last.get('finished_at', ''))[:19].replace('T', ' ')} UTC"
    )
    cols = st.columns(5)
    cols[0].metric("Scored", t["ok"] + t["partial"])
    cols[1].metric("Failed", t["failed"])
    cols[2].metric("Already scored", t["skipped"])
    cols[3].metric("Rows scored", f"{t['rows_scored']:,}")
    cols[4].metric("Alerts", t["alerts"])
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    usd, counted, capped = _month_cost(settings.bucket, job.name, month)
    st.caption(
        f"Estimated cost: this occurrence ${float(t.get('cost_usd') or 0.0):,.4f}; this month "
        f"({month}, UTC) ${usd:,.4f} over {counted:,} occurrence(s)"
        + (f" (the latest {counted:,} only)" if capped else "")
        + ". Runs scored outside Fargate (the demo, a laptop) have no figure and add nothing."
    )
    if last.get("alerts"):
        # the occurrence summary's alerts: a run's manifest alerts with the input's key
        st.markdown(widgets.alerts_markdown([AlertEntry.from_dict(a) for a in last["alerts"]]))
    if last.get("runs"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "input": r["key"],
                        "status": r["status"],
                        "rows in": r["rows_in"],
                        "scored": r["rows_scored"],
                        "rejected": r["rows_rejected"],
                        "run": f"{r['folder']}/{r['run_id']}" if r.get("run_id") else "",
                        "error": r.get("error", ""),
                    }
                    for r in last["runs"]
                ]
            ),
            hide_index=True,
            use_container_width=True,
        )


def _run_now(settings: UISettings, job: jobs.Job, allowed: bool, who: str) -> None:
    if not allowed:
        st.info(
            f"Only administrators can run a job now ({who} is not one; the list is "
            "DROPSCORE_UI_ADMINS).",
            icon=":material/lock:",
        )
        return
    if st.button(f"Run {job.name} now", icon=":material/play_arrow:", type="primary"):
        # its own process, as the scheduled task would run it: the page stays responsive and
        # the occurrence (a manual one, with its own id) writes its summary when done
        cmd = [sys.executable, "-m", "scorer", "--log-format", "human", "jobs", "run", job.name]
        cmd += ["--bucket", settings.bucket, "--registry", settings.registry]
        log = tempfile.NamedTemporaryFile(prefix="dropscore-run-now-", suffix=".log")  # noqa: SIM115
        proc = subprocess.Popen(  # our own CLI; arguments from validated settings
            cmd, cwd=_ROOT, stdout=subprocess.DEVNULL, stderr=log
        )
        try:  # a refusal (no rights, no such job) comes back at once: said, not "started"
            code = proc.wait(EARLY_EXIT_S)
        except subprocess.TimeoutExpired:
            code = None
        _last.clear()
        _month_cost.clear()
        if code:
            lines = Path(log.name).read_text(errors="replace").strip().splitlines()
            st.error(
                f"{job.name} did not run: {widgets.md(lines[-1] if lines else f'exit {code}')}",
                icon=":material/error:",
            )
            return
        st.session_state[STARTED] = (
            f"Started a manual occurrence of {job.name}; its result shows here when it finishes."
            if code is None
            else f"Ran a manual occurrence of {job.name}."
        )
        st.rerun()
