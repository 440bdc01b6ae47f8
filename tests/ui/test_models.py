"""Models page: versions, aliases, the card's features, and promotion for those allowed."""

from __future__ import annotations

import json

import streamlit as st
from streamlit.testing.v1 import AppTest

from scorer import storage
from scorer.registry import Registry
from tests.ui.conftest import APP, TIMEOUT, add_version, open_page

ADMIN = {"is_logged_in": True, "email": "boss@example.com", "name": "Boss", "email_verified": True}
ANALYST = {"is_logged_in": True, "email": "ana@example.com", "name": "Ana", "email_verified": True}


def aws(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_UI_MODE", "aws")
    monkeypatch.setenv("DROPSCORE_UI_ALLOWED", "example.com")
    monkeypatch.setenv("DROPSCORE_UI_ADMINS", "boss@example.com")


def signed_in(user: dict, page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = dict(user)
    at.run()
    return open_page(at, page)


def test_versions_aliases_and_features(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    add_version(s3_registry, "claims")
    at = app(page="models")
    assert not at.exception
    versions = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert list(versions["version"]) == ["v2", "v1"]
    assert list(versions["aliases"]) == ["", "production"]
    card = Registry(s3_registry).resolve("claims")
    for metric in card.metrics:
        assert metric in versions.columns
    features = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    assert list(features["feature"]) == card.feature_names


def promote_button(at: AppTest, version: int):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == f"Promote v{version} to production")


def worse_version(registry: str, name: str = "claims", by: float = 0.1, data: str = "") -> int:
    """A new version whose card says its main metric is ``by`` lower (and, with ``data``, that
    it was trained on other data)."""
    new = add_version(registry, name)
    url = storage.join(registry, name, str(new), "card.json")
    card = json.loads(storage.read_bytes(url))
    card["metrics"]["r2"] = round(card["metrics"]["r2"] - by, 6)
    if data:
        card["training_data"]["sha256"] = data
    storage.write_bytes(url, json.dumps(card).encode())
    return new


def test_promotion_in_local_mode(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    new = add_version(s3_registry, "claims")
    at = app(page="models")
    assert promote_button(at, new).disabled  # until a note is typed and the box ticked
    at.checkbox(key="models.promote.confirm.claims.1").check().run()
    assert promote_button(at, new).disabled  # a tick without a note is not enough
    assert "Type a note to enable promotion" in " ".join(c.value for c in at.caption)
    at.text_area(key="models.promote.note.claims.1").input("retrained, same data").run()
    assert not at.warning  # same data, same metrics: nothing to warn about
    promote_button(at, new).click()
    at.run()
    assert f"claims v{new} is now production." in [s.value for s in at.success]
    assert Registry(s3_registry).aliases("claims")["production"] == new
    assert at.checkbox(key=f"models.promote.confirm.claims.{new}").value is False  # no 2nd click
    assert at.text_area(key=f"models.promote.note.claims.{new}").value == ""
    history = next(d.value for d in at.dataframe if "note" in d.value.columns)
    assert list(history["change"]) == [f"v1 → v{new}", "nothing → v1"]
    assert history["note"][0] == "retrained, same data"
    assert history["by"][0].endswith("(local mode)")


def test_candidate_and_current_side_by_side_with_a_worse_warning(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    new = worse_version(s3_registry)
    reg = Registry(s3_registry)
    old_r2, new_r2 = reg.card("claims", 1).metrics["r2"], reg.card("claims", new).metrics["r2"]
    at = app(page="models")
    table = next(d.value for d in at.dataframe if f"candidate: v{new}" in d.value.columns)
    rows = {r[""]: (r["now: v1"], r[f"candidate: v{new}"]) for r in table.to_dict("records")}
    assert rows["r2"] == (f"{old_r2:.4g}", f"{new_r2:.4g}")
    assert rows["estimator"] == (reg.card("claims", 1).estimator,) * 2
    assert rows["features added"][1] == "none"
    assert [w.value for w in at.warning] == [
        f"v{new} is worse than v1 on r2: {new_r2:.4g} vs {old_r2:.4g} ({new_r2 - old_r2:+.4g})."
    ]
    box = at.checkbox(key="models.promote.confirm.claims.1")
    assert box.label.endswith("despite the warning")
    box.check()
    at.text_area(key="models.promote.note.claims.1").input("rollback test").run()
    promote_button(at, new).click()
    at.run()
    (record,) = [p for p in reg.history("claims") if p.to_version == new]
    assert record.warnings[0].startswith(f"v{new} is worse than v1 on r2")
    assert record.note == "rollback test"


def test_other_training_data_says_the_metrics_are_not_comparable(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    worse_version(s3_registry, by=-0.01, data="f" * 64)  # better, but on other hold-out rows
    at = app(page="models")
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("The metrics are not directly comparable")


def test_a_promotion_made_elsewhere_meanwhile_is_refused_not_overwritten(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    v2 = add_version(s3_registry, "claims")
    v3 = add_version(s3_registry, "claims")
    at = app(page="models")
    at.selectbox(key="models.promote.version").select(v3).run()
    at.checkbox(key="models.promote.confirm.claims.1").check()
    at.text_area(key="models.promote.note.claims.1").input("mine").run()
    Registry(s3_registry).promote("claims", v2, note="theirs", by="other@example.com")
    promote_button(at, v3).click()
    at.run()
    assert any("someone else promoted meanwhile" in e.value for e in at.error)
    assert Registry(s3_registry).aliases("claims")["production"] == v2


def test_admin_may_promote(app, monkeypatch, s3_registry) -> None:  # type: ignore[no-untyped-def]
    aws(monkeypatch)
    new = add_version(s3_registry, "claims")
    at = signed_in(ADMIN, "models")
    assert any(b.label == f"Promote v{new} to production" for b in at.button)
    assert "Signed in as **Boss**" in [c.value for c in at.sidebar.caption]


def test_promotion_is_refused_to_non_admins(app, monkeypatch, s3_registry) -> None:  # type: ignore[no-untyped-def]
    aws(monkeypatch)
    add_version(s3_registry, "claims")
    at = signed_in(ANALYST, "models")
    assert not any(b.label.startswith("Promote") for b in at.button)
    assert any(i.value.startswith("Only administrators can promote") for i in at.info)
    assert Registry(s3_registry).aliases("claims")["production"] == 1
    assert not at.text_area  # no note box either
    # the history is for everyone to read
    Registry(s3_registry).promote("claims", 1, note="re-pinned", by="boss@example.com")
    st.cache_data.clear()  # listings are cached for LISTING_TTL; don't wait for it
    at = signed_in(ANALYST, "models")
    history = next(d.value for d in at.dataframe if "note" in d.value.columns)
    assert history.iloc[0][["change", "by", "note"]].tolist() == [
        "v1 → v1", "boss@example.com", "re-pinned",
    ]  # fmt: skip


def test_an_admin_promotion_is_recorded_under_their_address(app, monkeypatch, s3_registry) -> None:  # type: ignore[no-untyped-def]
    aws(monkeypatch)
    new = add_version(s3_registry, "claims")
    at = signed_in(ADMIN, "models")
    at.checkbox(key="models.promote.confirm.claims.1").check()
    at.text_area(key="models.promote.note.claims.1").input("quarterly refresh").run()
    promote_button(at, new).click()
    at.run()
    latest = Registry(s3_registry).history("claims")[0]
    assert (latest.by, latest.note, latest.moved) == (
        "boss@example.com",
        "quarterly refresh",
        f"v1 → v{new}",
    )


def test_the_classification_card_shows_its_own_features(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    at = app(page="models")
    at.selectbox(key="models.name").select("income").run()
    features = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    assert list(features["feature"]) == Registry(s3_registry).resolve("income").feature_names
