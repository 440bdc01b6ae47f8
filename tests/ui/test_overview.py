"""The overview page, outages, a missing model and the one number format (issue 16)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from scorer import storage
from ui.formats import AMOUNT_FORMAT, COUNT_FORMAT, fmt_number, number_format
from ui.widgets import md, outage_message


def test_the_overview_shows_the_flow_live_counts_and_where_to_start(app, seeded) -> None:  # type: ignore[no-untyped-def]
    at = app()  # the default page, served at /
    assert not at.exception
    assert [t.value for t in at.title] == ["dropscore"]
    assert "digraph flow" in at.get("graphviz_chart")[0].proto.spec
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs today (UTC)"] == "5"
    assert metrics["ok · partial · failed (today)"] == "3 · 1 · 1"
    assert metrics["Runs with alerts (today)"] == "2"
    assert metrics["Batch model"] == "claims v1"
    links = {link.proto.label for link in at.get("page_link")}
    assert links == {"Predict", "Score a file", "Runs", "Models"}


@pytest.fixture
def s3_down(monkeypatch: pytest.MonkeyPatch, ui_env: str) -> Iterator[int]:
    """Every S3 call of the app goes to a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    monkeypatch.setitem(os.environ, "AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    storage.s3_client.cache_clear()
    yield port
    monkeypatch.undo()
    storage.s3_client.cache_clear()


@pytest.mark.parametrize("page", ["", "predict", "runs", "models", "score"])
def test_an_outage_names_the_bucket_and_endpoint_with_a_retry(app, s3_down, ui_env, page) -> None:  # type: ignore[no-untyped-def]
    at = app(page=page)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert errors[0].startswith(md(f"Cannot reach the bucket '{ui_env}' at 127.0.0.1:{s3_down}"))
    assert "http" not in errors[0]  # no internal URL, no query string
    assert [b.label for b in at.button if b.key == "outage.retry"] == ["Retry"]
    client = storage.s3_client()  # the app's own, short settings: an answer within seconds
    assert client.meta.config.connect_timeout == 2.0
    assert client.meta.config.retries["total_max_attempts"] == 2


def test_retry_works_once_storage_is_back(app, s3_down, ui_env, moto_endpoint) -> None:  # type: ignore[no-untyped-def]
    at = app(page="runs")
    assert at.button(key="outage.retry")
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    storage.s3_client.cache_clear()
    at.button(key="outage.retry").click().run()
    assert not at.error
    assert [t.value for t in at.title] == ["Runs"]


def test_outage_messages_keep_only_what_a_user_can_act_on() -> None:
    raw = (
        "cannot reach S3 for 's3://acme-data/scored/x/manifest.json': Could not connect to the "
        'endpoint URL: "http://10.0.3.7:9000/acme-data?list-type=2&prefix=scored%2F"'
    )
    text = outage_message(raw, "10.0.3.7:9000")
    assert text.startswith("Cannot reach the bucket 'acme-data' at 10.0.3.7:9000")
    assert "http" not in text
    assert "list-type" not in text
    denied = outage_message("access denied to 's3://acme-data/models'; check …", "s3.amazonaws.com")
    assert denied.startswith("Access to the bucket 'acme-data' at s3.amazonaws.com was denied")


def test_a_configured_model_that_does_not_exist_is_named_not_swapped(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_MODEL", "nosuch")
    at = app(page="predict")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert errors[0].startswith(md("The configured model 'nosuch' is not in s3://"))
    assert at.selectbox(key="predict.model").value is None  # nothing picked in its place
    assert not [b for b in at.button if b.label == "Predict"]
    at = app(page="models")  # the Models page names it too and shows no other model's versions
    assert not at.exception
    assert next(e.value for e in at.error).startswith(md("The configured model 'nosuch' is not"))
    assert at.selectbox(key="models.name").value is None
    assert "Versions" not in [s.value for s in at.subheader]


def test_a_configured_alias_that_does_not_exist_is_named(app, monkeypatch, s3_registry) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_MODEL", "claims:staging")
    at = app(page="score")
    errors = [e.value for e in at.error]
    assert errors == [md(f"model 'claims' has no version/alias 'staging' in {s3_registry}")]
    assert at.selectbox(key="score.ref.claims").value is None
    assert not at.get("file_uploader")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (69_500.123, "69,500.12"),
        (7_620.844, "7,620.84"),
        (1000, "1,000"),
        (1000.0, "1,000"),
        (2.7, "2.70"),
        (0.83621, "0.8362"),
        (-12_345.5, "-12,345.50"),
        (3e-7, "3.000e-07"),
        (None, ""),
    ],
    ids=str,
)
def test_one_number_format_for_every_page(value: object, text: str) -> None:
    assert fmt_number(value) == text


def test_a_column_of_whole_numbers_is_counted_and_others_are_amounts() -> None:
    import pandas as pd

    assert number_format(pd.Series([1.0, 2.0, 1000.0])) == COUNT_FORMAT
    assert number_format(pd.Series([1.0, 69_500.5])) == AMOUNT_FORMAT
