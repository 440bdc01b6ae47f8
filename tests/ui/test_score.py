"""Score a file: an upload is scored by the batch code; bad rows come back with reasons."""

from __future__ import annotations

import pytest

from scorer import service
from scorer.layout import ObjectVersion
from tests.ui.conftest import open_page
from tests.ui.support import claims_frame, claims_with_bad_rows, csv_bytes, read_csv
from ui.widgets import md


def score_button(at):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label.startswith("Score with "))


def upload(at, name: str, content: bytes):  # type: ignore[no-untyped-def]
    at.file_uploader(key="score.upload").set_value((name, content, "text/csv"))
    return at.run()


def test_upload_with_bad_rows_is_scored_and_the_rejects_explained(app) -> None:  # type: ignore[no-untyped-def]
    content, bad = claims_with_bad_rows(40)
    at = upload(app(page="score"), "march claims.csv", content)
    score_button(at).click()
    at.run()
    assert not at.exception
    assert not at.error
    assert [w.value for w in at.warning] == [
        f"{40 - bad} of 40 rows scored; {bad} rejected — see each row's reason below."
    ]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows in"] == "40"
    assert metrics["Rejected"] == str(bad)
    tables = [d.value for d in at.dataframe]
    rejected = next(t for t in tables if "message" in t.columns)
    assert sorted(rejected["code"]) == ["NON_FINITE", "TOO_MANY_FIELDS", "WRONG_TYPE"]
    assert any("not a number" in m for m in rejected["message"])
    preview = next(t for t in tables if "prediction" in t.columns)
    assert len(preview) == 40 - bad
    labels = [d.label for d in at.download_button]
    assert labels == ["Predictions CSV", "Rejected rows CSV", "Manifest JSON"]


def test_a_file_the_model_cannot_read_is_refused_with_a_reason(app) -> None:  # type: ignore[no-untyped-def]
    at = upload(app(page="score"), "semi.csv", b"a;b;c\n1;2;3\n")
    score_button(at).click()
    at.run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert errors[0].startswith("Not scored (WRONG_DELIMITER)")


def test_too_many_rows_are_refused_with_the_limit(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_UI_MAX_ROWS", "10")
    at = upload(app(page="score"), "big.csv", csv_bytes(claims_frame(50, 4)))
    errors = [e.value for e in at.error]  # refused on upload, before any work
    assert any("more than 10 rows" in e for e in errors), errors
    assert not [b for b in at.button if b.label.startswith("Score with ")]


def test_a_file_at_the_row_limit_is_scored(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_UI_MAX_ROWS", "50")
    at = upload(app(page="score"), "edge.csv", csv_bytes(claims_frame(50, 4)))
    score_button(at).click()
    at.run()
    assert [s.value for s in at.success] == ["All 50 rows scored."]


def test_the_downloaded_manifest_names_no_server_path(app) -> None:  # type: ignore[no-untyped-def]
    import json

    content, _ = claims_with_bad_rows(40)
    at = upload(app(page="score"), "march.csv", content)
    score_button(at).click()
    at.run()
    assert "Manifest JSON" in [d.label for d in at.download_button]
    text = at.session_state["score.result"].manifest_json.decode()  # what that button serves
    manifest = json.loads(text)
    assert manifest["input"]["url"] == "march.csv"
    assert {e["url"] for e in manifest["outputs"].values()} == {"predictions.csv", "rejected.csv"}
    assert "/tmp" not in text
    assert "dropscore-api-" not in text


def test_only_csv_files_are_accepted(app) -> None:  # type: ignore[no-untyped-def]
    at = upload(app(page="score"), "notes.gz", b"x\n1\n")  # .txt: the widget refuses it
    assert any(md("is not a .csv or .csv.gz file") in e.value for e in at.error)


def test_send_to_the_bucket_links_to_the_run_the_batch_path_makes(app, s3, s3_registry) -> None:  # type: ignore[no-untyped-def]
    at = upload(app(page="score"), "../../etc/passwd.csv", csv_bytes(claims_frame(30, 5)))
    score_button(at).click()
    at.run()
    next(b for b in at.button if b.label == "Send to the bucket").click()
    at.run()
    assert not at.exception
    sent = [s.value for s in at.success]
    assert any("Sent to s3://" in s for s in sent), sent
    bucket = at.session_state["dropscore.settings"].bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]]
    assert len(keys) == 1
    key = keys[0]
    assert key.startswith("incoming/uploads/passwd-")
    assert key.endswith(".csv")
    link = at.session_state["score.sent"][2]
    # the batch path (what the watcher would run) scores it into exactly that run
    result = service.score_object(
        ObjectVersion(bucket, key), service.Settings(registry=s3_registry)
    )
    assert result is not None
    assert link.endswith("/" + result.manifest.run_id)
    detail = app(page="runs", query={"run": link})
    open_page(detail, "runs")
    assert [t.value for t in detail.title] == [md(key.rsplit("/", 1)[-1])]  # the file name


def test_the_bucket_scores_the_version_previewed_not_production(app, s3, s3_registry) -> None:  # type: ignore[no-untyped-def]
    from tests.ui.conftest import add_version

    old = add_version(s3_registry, "claims") - 1  # production stays v1; v2 is newer
    settings = service.Settings(registry=s3_registry)
    bucket = s3_registry.split("/")[2]
    s3.put_object(
        Bucket=bucket, Key="models/claims/aliases/production.json", Body=b'{"version": 2}'
    )  # production moves to v2 …
    at = app(page="score")
    version = at.selectbox(key="score.ref.claims")
    version.select_index(list(version.options).index(f"v{old}")).run()  # … v1 is previewed
    at = upload(at, "claims.csv", csv_bytes(claims_frame(30, 5)))
    assert score_button(at).label == f"Score with claims@{old}"
    score_button(at).click()
    at.run()
    next(b for b in at.button if b.label == "Send to the bucket").click()
    at.run()
    assert not at.exception
    assert any(f"scored with claims@{old}" in s.value for s in at.success)
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]]
    link = at.session_state["score.sent"][2]
    result = service.score_object(ObjectVersion(bucket, key), settings)  # as the event path runs
    assert result is not None
    assert result.manifest.model.version == old
    assert result.manifest.model.extra["requested"] == f"claims@{old}"
    folder = link.rsplit("/", 1)[0]
    assert s3.head_object(Bucket=bucket, Key=f"scored/{link}/manifest.json")
    assert link == f"{folder}/{result.manifest.run_id}"


@pytest.mark.parametrize(
    ("name", "stem"),
    [("claims.csv", "claims"), ("a b/c.CSV", "c"), ("..\\..\\x.csv.gz", "x"), ("@=.csv", "upload")],
    ids=["plain", "directory dropped", "windows traversal", "nothing safe left"],
)
def test_upload_names_are_reduced_to_a_safe_stem(name: str, stem: str) -> None:
    from ui.views.score import safe_stem

    assert safe_stem(name)[0] == stem


def test_the_predictions_download_is_the_batch_output(app) -> None:  # type: ignore[no-untyped-def]
    at = upload(app(page="score"), "ok.csv", csv_bytes(claims_frame(25, 6)))
    score_button(at).click()
    at.run()
    result = at.session_state["score.result"]
    frame = read_csv(result.predictions)
    assert list(frame.columns[-2:]) == ["row_number", "prediction"]
    assert len(frame) == 25
    assert result.manifest.status == "ok"


def test_a_gzipped_upload_is_scored_like_a_plain_one(app) -> None:  # type: ignore[no-untyped-def]
    import gzip

    at = upload(app(page="score"), "week.csv.gz", gzip.compress(csv_bytes(claims_frame(30, 7))))
    score_button(at).click()
    at.run()
    assert [s.value for s in at.success] == ["All 30 rows scored."]


def test_a_file_far_outside_training_is_not_a_plain_success(app) -> None:  # type: ignore[no-untyped-def]
    frame = claims_frame(50, 4)
    frame["age"] = frame["age"] + 200
    at = upload(app(page="score"), "far.csv", csv_bytes(frame))
    score_button(at).click()
    at.run()
    assert not at.exception
    assert not at.success
    assert [w.value for w in at.warning] == [
        "All 50 rows scored, with alerts: this file does not look like the training data — "
        "see below."
    ]
    shown = "\n".join(str(m.value) for m in at.markdown)
    assert "DRIFT_FEATURE" in shown
    assert "major drift of 'age'" in shown
    assert "OUT_OF_RANGE_SHARE" in shown
