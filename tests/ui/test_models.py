"""Models page: versions, aliases, the card's features, and promotion for those allowed."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

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


def test_promotion_in_local_mode(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    new = add_version(s3_registry, "claims")
    at = app(page="models")
    button = next(b for b in at.button if b.label == f"Promote v{new} to production")
    assert button.disabled  # until the confirmation is ticked
    at.checkbox(key="models.promote.confirm.claims.1").check().run()
    next(b for b in at.button if b.label == f"Promote v{new} to production").click()
    at.run()
    assert f"claims v{new} is now production." in [s.value for s in at.success]
    assert Registry(s3_registry).aliases("claims")["production"] == new
    assert at.checkbox(key=f"models.promote.confirm.claims.{new}").value is False  # no 2nd click


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


def test_the_classification_card_shows_its_own_features(app, s3_registry) -> None:  # type: ignore[no-untyped-def]
    at = app(page="models")
    at.selectbox(key="models.name").select("income").run()
    features = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    assert list(features["feature"]) == Registry(s3_registry).resolve("income").feature_names
