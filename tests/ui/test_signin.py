"""Sign-in end to end: ``st.login`` against a real OpenID Connect provider, in a real browser.

The provider is ``oidc-provider-mock`` (a Flask OpenID Connect server built on Authlib) on a
free loopback port, with users whose claims the test chooses; its authorization page is where
a person would type a password, and the test presses the button for one user. The app runs as
deployed in AWS mode (``streamlit run ui/app.py`` with DROPSCORE_UI_MODE=aws, an [auth] section
in a secrets.toml of its own) against the moto bucket. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scorer.registry import Registry
from tests.conftest import free_port
from tests.ui.conftest import ARTIFACTS, needs_chromium, new_page, settled, streamlit_app
from tests.ui.test_models import worse_version

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "boss@example.com"
ANALYST = "ana@example.com"
STRANGER = "eve@elsewhere.test"  # verified, but not on the allow-list
UNVERIFIED = "newbie@example.com"  # on the allow-list's domain, email_verified false
NO_CLAIM = "legacy@example.com"  # on the allow-list's domain, no email_verified claim at all


@dataclass(frozen=True, slots=True)
class Stack:
    url: str  # the app
    provider: str  # the identity provider's issuer URL


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real OpenID Connect provider on 127.0.0.1 with the test's users; returns its issuer."""
    import werkzeug.serving
    from oidc_provider_mock import User, app

    # the provider speaks plain http on loopback; Authlib refuses that unless told
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    users = [
        User(sub=ADMIN, claims={"email": ADMIN, "email_verified": True, "name": "Boss Admin"}),
        User(sub=ANALYST, claims={"email": ANALYST, "email_verified": True, "name": "Ana Analyst"}),
        User(sub=STRANGER, claims={"email": STRANGER, "email_verified": True, "name": "Eve"}),
        User(
            sub=UNVERIFIED, claims={"email": UNVERIFIED, "email_verified": False, "name": "Newbie"}
        ),
        User(sub=NO_CLAIM, claims={"email": NO_CLAIM, "name": "Legacy"}),
    ]
    server = werkzeug.serving.make_server(
        "127.0.0.1", free_port(), app(user_claims=users), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def stack(provider: str, bucket: str, s3_registry: str, tmp_path: Path) -> Iterator[Stack]:
    needs_chromium()
    # the app's own URL goes into its secrets (the OIDC redirect), so its port is chosen here
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_toml = tmp_path / "secrets.toml"
    secrets_toml.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "dropscore-ui-test"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DROPSCORE_")},
        "DROPSCORE_BUCKET": bucket,
        "DROPSCORE_REGISTRY": s3_registry,
        "DROPSCORE_MODEL": "claims",
        "DROPSCORE_UI_MODE": "aws",
        "DROPSCORE_UI_ALLOWED": "example.com",
        "DROPSCORE_UI_ADMINS": ADMIN,
    }
    log = tmp_path / "streamlit.log"
    with streamlit_app(env, log, "--secrets.files", str(secrets_toml), port=port):
        yield Stack(url, provider)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_sign_in_against_a_real_identity_provider(  # type: ignore[no-untyped-def]
    stack: Stack, browser, s3_registry: str
) -> None:
    from playwright.sync_api import Page, expect

    new = worse_version(s3_registry)  # its card's r2 is 0.1 below production's
    r2 = {v: Registry(s3_registry).card("claims", v).metrics["r2"] for v in (1, new)}

    def sign_in(page: Page, who: str, shot: str) -> None:
        """The sign-in screen, the provider's page (where the user is chosen), back to the app."""
        page.goto(stack.url)
        expect(page.get_by_text("Sign in to score files and browse results.")).to_be_visible()
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{stack.provider}/oauth2/authorize**")
        expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
        if shot:
            page.screenshot(path=str(ARTIFACTS / f"signin-{shot}.png"), full_page=True)
        page.get_by_role("button", name=who, exact=True).click()
        page.wait_for_url(f"{stack.url}/**")

    def fresh() -> Page:  # a new browser profile: no cookie from an earlier user
        return new_page(browser, 1400, 1400, fresh=True)

    # nobody signed in: only the sign-in screen, no page of the app
    page = fresh()
    page.goto(f"{stack.url}/models")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Models")).to_have_count(0)
    settled(page, "signin-01-signed-out")

    # an allow-listed analyst: the app works; the Models page refuses promotion
    sign_in(page, ANALYST, "02-provider")
    page.goto(f"{stack.url}/predict")  # / is the overview
    expect(page.get_by_role("heading", name="Predict")).to_be_visible()
    expect(page.get_by_text("Signed in as Ana Analyst")).to_be_visible()
    settled(page, "signin-03-analyst-predict")
    page.goto(f"{stack.url}/models")
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    expect(page.get_by_text("Only administrators can promote")).to_be_visible()
    expect(page.get_by_role("button", name=f"Promote v{new} to production")).to_have_count(0)
    expect(page.get_by_label("Note (required): why this version")).to_have_count(0)
    settled(page, "signin-04-analyst-models")
    # sign out: back to the sign-in screen, and the app is closed again
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(f"{stack.url}/models")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Versions")).to_have_count(0)
    settled(page, "signin-05-signed-out-again")
    page.context.close()

    # refused: verified but not listed, unverified, and no email_verified claim at all
    for who, shot, says in [
        (STRANGER, "06-unlisted", f"{STRANGER} is not allowed to use dropscore"),
        (UNVERIFIED, "07-unverified", f"{UNVERIFIED} has no verified email address"),
        (NO_CLAIM, "08-no-verified-claim", f"{NO_CLAIM} has no verified email address"),
    ]:
        page = fresh()
        sign_in(page, who, "")
        expect(page.get_by_text(says)).to_be_visible()
        expect(page.get_by_role("heading", name="Predict")).to_have_count(0)
        page.goto(f"{stack.url}/runs")  # no way around the refusal by URL
        expect(page.get_by_text(says)).to_be_visible()
        expect(page.get_by_role("heading", name="Runs")).to_have_count(0)
        settled(page, f"signin-{shot}")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.context.close()

    # the admin promotes: comparison, a required note, the record under their address
    page = fresh()
    sign_in(page, ADMIN, "")
    expect(page.get_by_text("Signed in as Boss Admin")).to_be_visible()
    page.goto(f"{stack.url}/models")
    button = page.get_by_role("button", name=f"Promote v{new} to production")
    expect(button).to_be_disabled()
    expect(page.get_by_text("Type a note to enable promotion")).to_be_visible()
    worse = f"v{new} is worse than v1 on r2: {r2[new]:.4g} vs {r2[1]:.4g}"
    expect(page.get_by_text(worse)).to_be_visible()
    page.get_by_label("Note (required): why this version").fill("verified sign-in test")
    page.get_by_label("Note (required): why this version").press("Tab")
    page.get_by_text(f"Yes: batch runs from now on use v{new}").click()
    expect(button).to_be_enabled()
    settled(page, "signin-09-admin-promote")
    page.set_viewport_size({"width": 390, "height": 2600})  # a phone, tall: the app scrolls
    settled(page, "signin-09-admin-promote-phone")
    page.set_viewport_size({"width": 1400, "height": 1400})
    button.click()
    expect(page.get_by_text(f"claims v{new} is now production.")).to_be_visible()
    settled(page, "signin-10-admin-promoted")

    latest = Registry(s3_registry).history("claims")[0]
    assert (latest.by, latest.note, latest.moved) == (
        ADMIN,
        "verified sign-in test",
        f"v1 → v{new}",
    )
    assert latest.warnings[0].startswith(worse)
