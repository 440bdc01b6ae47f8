"""Sign-in: aws mode lets in only signed-in users on the allow-list; local mode is labelled."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import APP, TIMEOUT
from ui.auth import matches
from ui.settings import UISettings


@pytest.fixture
def aws_mode(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROPSCORE_UI_MODE", "aws")
    monkeypatch.setenv("DROPSCORE_UI_ALLOWED", "example.com, guest@partner.org")


def session(user: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = dict(user)
    return at.run()


def test_anonymous_users_see_only_sign_in(aws_mode: None) -> None:
    at = session({"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Predict" not in [t.value for t in at.title]
    assert not at.number_input
    assert not at.dataframe


def test_a_user_without_a_sign_in_state_is_anonymous(aws_mode: None) -> None:
    at = session({"email": "someone@example.com"})  # no is_logged_in: never trusted
    assert [b.label for b in at.button] == ["Sign in"]


def test_signed_in_but_not_allowed_is_refused(aws_mode: None) -> None:
    at = session({"is_logged_in": True, "email": "eve@evil.example", "email_verified": True})
    assert [e.value for e in at.error] == [
        "eve@evil.example is not allowed to use dropscore. Ask an administrator to add your "
        "address or domain to DROPSCORE_UI_ALLOWED."
    ]
    assert [b.label for b in at.button] == ["Sign out"]


@pytest.mark.parametrize(
    "verified", [False, None, "true", 1], ids=["false", "missing", "a string", "a number"]
)
def test_an_email_not_verified_explicitly_is_refused(aws_mode: None, verified: object) -> None:
    user = {"is_logged_in": True, "email": "ana@example.com"}
    if verified is not None:
        user["email_verified"] = verified
    at = session(user)
    assert [e.value for e in at.error] == [
        "ana@example.com has no verified email address, so dropscore cannot tell who it is. "
        "Verify the address with your identity provider and sign in again."
    ]
    assert [b.label for b in at.button] == ["Sign out"]


def test_allowed_user_gets_the_app(aws_mode: None) -> None:
    user = {"is_logged_in": True, "email": "guest@partner.org", "name": "Guest"}
    at = session({**user, "email_verified": True})
    assert [t.value for t in at.title] == ["dropscore"]  # the overview, at /
    assert not at.exception


def test_misconfiguration_is_a_message_not_a_traceback(ui_env: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DROPSCORE_UI_MODE", "public")
    at = session({})
    assert [e.value for e in at.error] == [
        "dropscore is misconfigured: DROPSCORE_UI_MODE is 'public'; use 'local' or 'aws'"
    ]
    assert not at.exception


@pytest.mark.parametrize(
    ("email", "entries", "allowed"),
    [
        ("ana@example.com", ("example.com",), True),
        ("ana@example.com", ("@example.com",), True),
        ("ANA@Example.com", ("ana@example.com",), True),
        ("ana@example.com.evil.org", ("example.com",), False),
        ("ana@sub.example.com", ("example.com",), False),
        ("example.com", ("example.com",), False),
        ("@example.com", ("example.com",), False),
        ("", ("example.com",), False),
        ("ana@example.com", (), False),
        ("mallory@evil.test@example.com", ("example.com",), False),
        ("mallory@evil.test@example.com", ("mallory@evil.test@example.com",), False),
        ('"mallory@evil.test"@example.com', ("example.com",), False),
        ("ana@example.com ", ("example.com",), False),
        ("ana @example.com", ("example.com",), False),
        ("ana@", ("example.com",), False),
    ],
    ids=[
        "domain listed", "domain with @", "address, any case", "lookalike domain",
        "subdomain is another domain", "no local part", "only a domain", "no address",
        "empty allow-list lets nobody in", "two @ with a listed domain",
        "two @ even when listed whole", "quoted local part", "trailing space",
        "space in the address", "no domain",
    ],
)  # fmt: skip
def test_allow_list_matching(email: str, entries: tuple[str, ...], allowed: bool) -> None:
    assert matches(email, entries) is allowed


def test_settings_defaults_and_limits() -> None:
    s = UISettings.from_env({})
    assert (s.bucket, s.registry, s.model, s.mode) == (
        "dropscore", "s3://dropscore/models", "claims", "local",
    )  # fmt: skip
    assert (s.max_mb, s.max_rows) == (50, 200_000)
    s = UISettings.from_env(
        {
            "DROPSCORE_BUCKET": "b",
            "DROPSCORE_UI_ADMINS": "A@x.org; b@x.org",
            "DROPSCORE_UI_MAX_MB": "5",
        }
    )
    assert (s.registry, s.admins, s.max_mb) == ("s3://b/models", ("a@x.org", "b@x.org"), 5)
    with pytest.raises(Exception, match="DROPSCORE_UI_MAX_ROWS is '-3'"):
        UISettings.from_env({"DROPSCORE_UI_MAX_ROWS": "-3"})
