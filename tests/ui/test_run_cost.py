"""Cost on the Runs page: a column in the list, "cost this month" in its header, and the
estimate (or why there is none) on a run's page — from real runs' manifests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from scorer import catalog, service, taskinfo
from scorer.layout import ObjectVersion
from tests.reliability.conftest import put, sample_csv
from tests.scorer.test_cost import metadata_endpoint  # noqa: F401 - a fixture
from tests.ui.conftest import open_page
from ui.widgets import md


@pytest.fixture
def fresh_task() -> Iterator[None]:
    taskinfo.current.cache_clear()  # the task size is read once per process
    yield
    taskinfo.current.cache_clear()


def score(bucket: str, key: str) -> Any:
    ref = ObjectVersion(bucket, key, None)
    return service.score_object(ref, service.Settings())


def test_the_runs_page_shows_each_runs_cost_and_this_months_total(
    app: Any,
    ui_env: str,
    s3: Any,
    metadata_endpoint: str,  # noqa: F811
    fresh_task: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = ui_env
    put(s3, bucket, "incoming/cost/fargate.csv", sample_csv(40))
    put(s3, bucket, "incoming/cost/laptop.csv", sample_csv(20, seed=5))
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", metadata_endpoint)
    on_fargate = score(bucket, "incoming/cost/fargate.csv").manifest
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4")
    taskinfo.current.cache_clear()
    local = score(bucket, "incoming/cost/laptop.csv").manifest
    usd = on_fargate.cost.usd
    assert usd > 0
    assert local.cost.usd is None

    at = app(page="runs")
    assert not at.exception
    table = next(d.value for d in at.dataframe if "status" in d.value.columns).set_index("input")
    assert table.loc["incoming/cost/fargate.csv", "cost (USD)"] == pytest.approx(usd)
    assert table["cost (USD)"].isna().sum() == 1  # the local run: no figure, not a zero
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    header = next(c.value for c in at.caption if "Cost this month" in c.value)
    assert (
        md(f"Cost this month ({month}, UTC): ${usd:.4f} estimated over 1 Fargate run(s)") in header
    )
    assert md("1 run(s) without a figure") in header

    key = next(e.path.key for e in catalog.list_runs(bucket) if "fargate" in e.path.rel)
    at = app(query={"run": key})
    open_page(at, "runs")
    line = next(c.value for c in at.caption if c.value.startswith("Cost:"))
    assert md(f"${usd:.6f} (estimate on 2 vCPU, 4 GB,") in line
    assert md("eu-west-1") in line


def test_this_months_cost_counts_only_this_months_runs() -> None:
    def run(started: str, usd: float | None) -> catalog.RunSummary:
        return catalog.RunSummary(
            key="k", run_id="r", rel="x", status="ok", input="i", rows_in=1, rows_scored=1,
            rows_rejected=0, model="m", model_version=1, started_at=started, duration_s=1.0,
            reason="", cost_usd=usd,
        )  # fmt: skip

    runs = [
        run("2026-11-01T00:00:01+00:00", 0.25),
        run("2026-11-30T23:59:59+00:00", 0.5),
        run("2026-11-15T12:00:00+00:00", None),
        run("2026-10-31T23:59:59+00:00", 9.0),
    ]
    assert catalog.month_cost(runs, "2026-11") == (0.75, 2, 1)
