"""Schedules page: jobs with their schedule in words, next and last occurrence, "run now" for
administrators only, and a job run's page linking back to its job."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from scorer import catalog, jobrun, jobs, service
from tests.scorer.test_s3_runs import put_sample
from tests.ui.conftest import APP, TIMEOUT, open_page
from tests.ui.test_models import ADMIN, ANALYST, aws


def add(bucket: str, name: str) -> None:
    spec = jobs.Job(name, f"s3://{bucket}/incoming/sched/", "claims", "cron(0 2 * * ? *)")
    jobs.add(bucket, spec, service.Settings(), None)


def jobs_table(at: AppTest):  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if "job" in d.value.columns)


def test_jobs_show_schedule_next_and_last_occurrence(app, ui_env, s3) -> None:  # type: ignore[no-untyped-def]
    put_sample(s3, ui_env, "incoming/sched/a.csv", rows=25, seed=3)
    add(ui_env, "nightly")
    summary, _ = jobrun.run(ui_env, "nightly", service.Settings())
    at = app(page="schedules")
    assert not at.exception
    assert [t.value for t in at.title] == ["Schedules"]
    row = jobs_table(at).set_index("job").loc["nightly"]
    assert row["schedule"] == "at 02:00 UTC, every day"
    assert row["next (UTC)"].endswith("02:00")
    assert (row["last occurrence"], row["last status"]) == (summary["occurrence"], "complete")
    assert (row["scored"], row["failed"]) == (1, 0)
    runs = next(d.value for d in at.dataframe if "input" in d.value.columns)
    assert list(runs["input"]) == ["incoming/sched/a.csv"]
    assert list(runs["status"]) == ["ok"]


def test_run_now_is_for_administrators_only(app, ui_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    add(ui_env, "nightly")
    aws(monkeypatch)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = dict(ANALYST)
    at.run()
    open_page(at, "schedules")
    assert not any(b.label == "Run nightly now" for b in at.button)
    assert any(i.value.startswith("Only administrators can run a job now") for i in at.info)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = dict(ADMIN)
    at.run()
    open_page(at, "schedules")
    next(b for b in at.button if b.label == "Run nightly now").click().run()
    # "Started …" while it runs, "Ran …" when it was done within the page's wait: either is true
    assert any("a manual occurrence of nightly" in s.value for s in at.success)
    deadline = time.monotonic() + 120
    while not jobrun.occurrences(ui_env, "nightly"):  # the occurrence runs in its own process
        assert time.monotonic() < deadline
        time.sleep(1)
    [occ] = jobrun.occurrences(ui_env, "nightly")
    assert occ.startswith("manual-")


def test_a_run_of_an_all_job_links_to_its_job(app, ui_env, s3) -> None:  # type: ignore[no-untyped-def]
    put_sample(s3, ui_env, "incoming/sched/a.csv", rows=25, seed=3)
    spec = jobs.Job(
        "monthly", f"s3://{ui_env}/incoming/sched/", "claims", "rate(1 day)", mode="all"
    )
    jobs.add(ui_env, spec, service.Settings(), None)
    jobrun.run(ui_env, "monthly", service.Settings())
    [entry] = catalog.list_runs(ui_env)
    at = app(query={"run": entry.path.key})
    open_page(at, "runs")
    assert not at.exception
    [link] = at.get("page_link")
    assert link.proto.label.startswith("Job monthly, occurrence manual-")
