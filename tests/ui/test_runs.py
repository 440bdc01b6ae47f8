"""Runs: the list of every run, filters, and one run in detail."""

from __future__ import annotations

from tests.ui.conftest import open_page
from ui import data
from ui.widgets import md


def runs_table(at):  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if "status" in d.value.columns)


def test_every_run_is_listed_newest_first(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    assert not at.exception
    assert [t.value for t in at.title] == ["Runs"]
    table = runs_table(at)
    assert sorted(table["input"]) == sorted(seeded.run_keys)
    row = table.set_index("input").loc["incoming/2026/claims-with-bad-rows.csv"]
    assert (row["rows in"], row["scored"], row["rejected"]) == (60, 57, 3)
    assert row["status"].split(" · ")[0] == "partial"
    assert row["model"] == "claims v1"
    assert table.set_index("input").loc["incoming/broken/semicolons.csv", "status"] == "failed"
    assert (
        table.set_index("input").loc["incoming/partners/income-batch.csv", "model"] == "income v1"
    )


def test_filters_narrow_the_list(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    at.text_input(key="runs.search").set_value("partners").run()
    assert list(runs_table(at)["input"]) == ["incoming/partners/income-batch.csv"]
    at.text_input(key="runs.search").set_value("").run()
    at.selectbox(key="runs.model").select("income v1").run()
    assert list(runs_table(at)["model"]) == ["income v1"]
    at.text_input(key="runs.search").set_value("no such input").run()
    assert "No run matches these filters." in [i.value for i in at.info]


def test_choosing_a_run_opens_its_detail(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    wanted = seeded.run_keys["incoming/2026/claims-week-47.csv"]
    at.selectbox(key="runs.open.1").select(wanted).run()
    assert at.query_params["run"] == wanted
    assert [t.value for t in at.title] == [md("claims-week-47.csv")]  # the path is below it
    assert any(md("incoming/2026/claims-week-47.csv") in m.value for m in at.markdown)


def test_run_detail_shows_drift_rejects_warnings_and_files(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": seeded.run_keys["incoming/2026/claims-drifted.csv"]})
    open_page(at, "runs")
    assert not at.exception
    assert [e.icon for e in at.error] == [":material/notifications:"]  # its alerts, no failure
    assert [t.value for t in at.title] == [md("claims-drifted.csv")]
    drifted = [w.value for w in at.warning if w.value.startswith("Drifted:")]
    assert len(drifted) == 1
    assert "major" in drifted[0]
    psi = next(d.value for d in at.dataframe if "PSI" in d.value.columns)
    assert (psi["level"] == "major").sum() >= 2
    assert (psi["level"] == "stable").any()
    assert [d.label for d in at.download_button] == ["Predictions CSV", "Manifest JSON"]
    assert at.json[0].value  # the manifest itself


def test_rejected_rows_are_listed_with_their_reasons(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": seeded.run_keys["incoming/2026/claims-with-bad-rows.csv"]})
    open_page(at, "runs")
    tables = [d.value for d in at.dataframe]
    reasons = next(t for t in tables if "reason" in t.columns)
    assert dict(zip(reasons["reason"], reasons["rows"], strict=True)) == {
        "NON_FINITE": 1, "TOO_MANY_FIELDS": 1, "WRONG_TYPE": 1,
    }  # fmt: skip
    rows = next(t for t in tables if "message" in t.columns)
    assert set(rows["code"]) == {"NON_FINITE", "TOO_MANY_FIELDS", "WRONG_TYPE"}


def test_a_failed_run_says_why(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": seeded.run_keys["incoming/broken/semicolons.csv"]})
    open_page(at, "runs")
    assert any(e.value.startswith("WRONG_DELIMITER:") for e in at.error)


def test_a_run_name_that_leaves_scored_is_refused(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": "../../models/claims/claims-v1-0123456789abcdef"})
    open_page(at, "runs")
    assert [e.value for e in at.error] == [
        md("'../../models/claims/claims-v1-0123456789abcdef' is not a valid input path")
    ]


def test_a_run_not_committed_yet_says_so(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": "2026/later/claims-v1-0123456789abcdef"})
    open_page(at, "runs")
    assert [t.value for t in at.title] == ["Run not found (yet)"]


def test_no_runs_yet_points_at_how_to_make_one(app) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    assert any(i.value.startswith("No runs yet.") for i in at.info)


def test_hundreds_of_runs_are_paged(app, seeded, s3, capsys) -> None:  # type: ignore[no-untyped-def]
    """300 more committed runs: the list reads them once and shows 25 per page."""
    import time

    bucket = app().session_state["dropscore.settings"].bucket
    source = seeded.run_keys["incoming/2026/claims-week-47.csv"]
    body = s3.get_object(Bucket=bucket, Key=f"scored/{source}/manifest.json")["Body"].read()
    for i in range(300):
        run = f"claims-v1-{i:016x}"
        s3.put_object(Bucket=bucket, Key=f"scored/many/file-{i:03d}/{run}/manifest.json", Body=body)
    data.refresh_runs()  # the overview listed the runs a moment ago (kept for RUNS_TTL)
    t0 = time.perf_counter()
    at = app(page="runs")
    cold = time.perf_counter() - t0
    assert "305 of 305 runs" in [c.value for c in at.caption][1]
    first = runs_table(at)
    assert len(first) == 25
    t0 = time.perf_counter()
    at.pagination(key="runs.page").select(13).run()
    warm = time.perf_counter() - t0
    last = runs_table(at)
    assert len(last) == 305 - 12 * 25
    t0 = time.perf_counter()
    at.button(key="runs.refresh").click().run()  # list again; every manifest is cached
    relist = time.perf_counter() - t0
    assert len(runs_table(at)) == 305 - 12 * 25  # the page is kept
    with capsys.disabled():
        print(
            f"\n[runs] 305 runs: first page {cold:.2f} s (list + manifests), page 13 {warm:.2f} s, "
            f"refresh {relist:.2f} s (list only)"
        )


def test_a_run_with_huge_and_formula_cells_opens_with_a_bounded_preview(
    app, ui_env, s3, s3_registry
) -> None:  # type: ignore[no-untyped-def]
    """A legal 1 MiB cell starting with '=' (written as '=… so no spreadsheet runs it) and an
    8 MiB row: the run page opens, long cells are cut for display with a note, and the preview
    stops at a byte bound instead of reading the huge row."""
    from tests.ui.support import claims_frame, put_and_score

    frame = claims_frame(30, 5).astype(object)
    frame["note"] = "fine"
    for i in range(8):  # eight 1 MiB cells: one 8 MiB row
        frame[f"blob{i}"] = ""
    formula = "=" + "A" * (1024 * 1024 - 1)
    frame.loc[2, "note"] = formula
    frame.loc[4, frame.columns[0]] = formula  # not a number: rejected, its raw record kept
    for i in range(8):
        frame.loc[20, f"blob{i}"] = "B" * (1024 * 1024)
    key = "incoming/huge/cells.csv"
    run = put_and_score(s3, ui_env, key, frame.to_csv(index=False).encode(), s3_registry, "claims")
    at = app(query={"run": run})
    open_page(at, "runs")
    assert not at.exception
    assert not at.error
    assert [t.value for t in at.title] == [md(key.rsplit("/", 1)[-1])]  # the file's name
    preds = next(d.value for d in at.dataframe if "prediction" in d.value.columns)
    assert len(preds) == 19  # the rows before the 8 MiB row that fit in the preview's bytes
    cell = preds["note"].iloc[2]
    assert cell == "'=" + "A" * 298 + "…"
    captions = " ".join(c.value for c in at.caption)
    assert "stops at the first 4 MB" in captions
    assert "cut to 300 characters" in captions
    rejected = next(d.value for d in at.dataframe if "raw" in d.value.columns)
    assert len(rejected) == 1
    assert max(len(v) for v in rejected["raw"]) == 301


# --- alerts, filters, refresh (issue 16) --------------------------------------------------------
def far_outside_run(seeded, s3) -> str:  # type: ignore[no-untyped-def]
    from tests.ui.support import outside_training, put_and_score

    bucket, registry = seeded.bucket, seeded.registry
    key = "incoming/2026/claims-outside.csv"
    return put_and_score(s3, bucket, key, outside_training(), registry, "claims")


def test_a_run_outside_training_is_not_a_plain_ok_in_the_list(app, seeded, s3) -> None:  # type: ignore[no-untyped-def]
    far_outside_run(seeded, s3)
    at = app(page="runs")
    table = runs_table(at).set_index("input")
    row = table.loc["incoming/2026/claims-outside.csv"]
    assert row["status"] == "ok · major drift"  # scored, but not a green ok
    assert "major drift" in row["alerts"]
    assert "major out of range" in row["alerts"]
    clean = table.loc["incoming/2026/claims-week-47.csv"]
    assert (clean["status"], clean["alerts"]) == ("ok", "")
    assert "with alerts" in [c.value for c in at.caption][1]


def test_a_run_outside_training_shows_its_alerts_in_the_header(app, seeded, s3) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": far_outside_run(seeded, s3)})
    open_page(at, "runs")
    header = next(m.value for m in at.markdown if "badge[" in m.value and "run `" in m.value)
    assert ":red-badge[" in header
    assert "ok · major" in header
    assert ":green-badge[" not in header
    alerts = [e.value for e in at.error if "alert" in e.value]
    assert len(alerts) == 1
    assert md("major drift: predictions, ") in alerts[0]
    assert md("major out of range: ") in alerts[0]


def test_warnings_are_listed_row_by_row(app, seeded, s3) -> None:  # type: ignore[no-untyped-def]
    at = app(query={"run": far_outside_run(seeded, s3)})
    open_page(at, "runs")
    rows = next(d.value for d in at.dataframe if "in training" in d.value.columns)
    assert set(rows["warning"]) == {"OUT_OF_RANGE"}
    assert rows["row"].nunique() == 200  # every scored row, each with its own values
    assert rows.groupby("column").size().min() == 200


def test_filters_survive_opening_a_run_and_coming_back(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    at.text_input(key="runs.search").set_value("2026").run()
    at.selectbox(key="runs.model").select("claims v1").run()
    before = list(runs_table(at)["input"])
    assert len(before) == 3
    at.selectbox(key="runs.open.1").select(seeded.run_keys["incoming/2026/claims-week-47.csv"])
    at.run()
    assert "run" in at.query_params
    at.button[0].click().run()  # "All runs"
    assert "run" not in at.query_params
    assert at.text_input(key="runs.search").value == "2026"
    assert at.selectbox(key="runs.model").value == "claims v1"
    assert list(runs_table(at)["input"]) == before
    open_page(at, "models")
    open_page(at, "runs")  # another page and back
    assert at.text_input(key="runs.search").value == "2026"
    assert list(runs_table(at)["input"]) == before


def test_refresh_lists_a_new_run_at_once(app, seeded, s3) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    assert "6 of 6" not in [c.value for c in at.caption][1]
    far_outside_run(seeded, s3)
    at.button(key="runs.refresh").click().run()
    assert "6 of 6 runs" in [c.value for c in at.caption][1]


# --- how a run was executed (issue 14) ------------------------------------------------------------
def put_and_score_sharded(s3, bucket: str, key: str, registry: str) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """A claims file scored in shards on a one-worker local Dask cluster, as `--cluster local:1
    --shard-over-mb 0.01` would; returns its run link and shard count."""
    from scorer import cluster, service
    from scorer.layout import ObjectVersion
    from scorer.shards import Scale
    from tests.ui.support import claims_frame, csv_bytes

    resp = s3.put_object(Bucket=bucket, Key=key, Body=csv_bytes(claims_frame(1500, 8)))
    scale = Scale(cluster.parse("local:1"), cluster.shard_bytes("0.01"))
    settings = service.Settings(registry=registry, model="claims", scale=scale)
    result = service.score_object(ObjectVersion(bucket, key, resp.get("VersionId")), settings)
    assert result is not None
    rel = key.removeprefix("incoming/").removesuffix(".csv")
    return f"{rel}/{result.manifest.run_id}", result.manifest.shards


def test_a_run_page_says_how_the_run_was_executed(app, seeded, s3) -> None:  # type: ignore[no-untyped-def]
    key = "incoming/big/sharded.csv"
    run, shards = put_and_score_sharded(s3, seeded.bucket, key, seeded.registry)
    assert shards >= 2
    at = app(query={"run": run})
    open_page(at, "runs")
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert f"Ran in {shards} shards on 1 Dask worker" in captions
    at = app(query={"run": seeded.run_keys["incoming/2026/claims-week-47.csv"]})
    open_page(at, "runs")
    assert "Ran in one process" in [c.value for c in at.caption]


def test_forked_workers_are_named_as_such() -> None:
    """The third way a run is executed (a big file on a multi-core task), from its manifest."""
    from scorer.manifest import InputEntry, Manifest, ModelEntry
    from ui.views.runs import execution

    forked = Manifest(run_id="r", status="ok", input=InputEntry(), model=ModelEntry(), workers=2)
    assert execution(forked) == "on 2 forked workers"
    sharded = Manifest(
        run_id="r", status="ok", input=InputEntry(), model=ModelEntry(), workers=1, shards=3
    )
    assert execution(sharded) == "in 3 shards on 1 Dask worker"


# --- a deployment whose prefixes are not incoming/ and scored/ ----------------------------------
def test_runs_under_a_configured_results_prefix_are_listed_and_open(  # type: ignore[no-untyped-def]
    app, ui_env, s3, s3_registry, monkeypatch
) -> None:
    """The scorer and the UI read the same DROPSCORE_INCOMING / DROPSCORE_SCORED: a run the
    scorer wrote under out/results/ is on the runs page, and its detail and files open."""
    from scorer import service
    from scorer.layout import ObjectVersion
    from tests.ui.support import claims_frame, csv_bytes

    monkeypatch.setenv("DROPSCORE_INCOMING", "in/")
    monkeypatch.setenv("DROPSCORE_SCORED", "out/results/")
    key = "in/daily/claims.csv"
    version = s3.put_object(Bucket=ui_env, Key=key, Body=csv_bytes(claims_frame(30, 6)))
    settings = service.Settings(registry=s3_registry, incoming="in/", scored="out/results/")
    result = service.score_object(ObjectVersion(ui_env, key, version.get("VersionId")), settings)
    assert result is not None
    at = app(page="runs")
    assert not at.exception
    assert list(runs_table(at)["input"]) == [key]
    assert f"s3://{ui_env}/out/results/" in next(c.value for c in at.caption)
    at = app(query={"run": f"daily/claims/{result.manifest.run_id}"})
    open_page(at, "runs")
    assert not at.exception
    assert [t.value for t in at.title] == [md("claims.csv")]
    assert [d.label for d in at.download_button] == ["Predictions CSV", "Manifest JSON"]
