"""Who is using the app: local mode (no sign-in, loopback only) or OIDC sign-in + allow-lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.settings import UISettings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# A DNS name: labels of letters, digits and inner hyphens. Anything else (a second '@', quotes,
# spaces, a trailing dot) means the address is not the plain form an allow-list can judge.
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_LOCAL = re.compile(r"[^\s@\"(),:;<>\[\]\\]+")


@dataclass(frozen=True, slots=True)
class Viewer:
    email: str  # "" in local mode
    name: str
    can_promote: bool
    local: bool

    @property
    def label(self) -> str:
        return "local mode — no sign-in" if self.local else (self.name or self.email)


def matches(email: str, entries: tuple[str, ...]) -> bool:
    """An address is listed exactly, or its domain is (``example.com`` or ``@example.com``).

    The address must be plain ``local@domain`` with exactly one '@': ``a@evil.test@example.com``
    or a quoted local part is refused rather than guessed at (compare case-insensitively).
    """
    local, at, domain = email.lower().partition("@")
    if not at or not _LOCAL.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        return False
    address = f"{local}@{domain}"
    for entry in entries:
        entry = entry.strip().lower()
        if entry == address or entry.removeprefix("@") == domain:
            return True
    return False


def sign_in(settings: UISettings) -> Viewer:
    """The signed-in viewer; renders the sign-in or refusal screen and stops otherwise."""
    if settings.mode == "local":
        address = st.get_option("server.address")
        if address not in LOOPBACK and not st.get_option("global.appTest"):
            _refuse(
                "Local mode has no sign-in, so it only runs bound to 127.0.0.1 "
                f"(server.address is {address!r}). Start it with "
                "`streamlit run ui/app.py` from the repository root, or set "
                "DROPSCORE_UI_MODE=aws to require sign-in."
            )
        return Viewer(email="", name="local user", can_promote=True, local=True)
    user: Any = st.user
    if not user.get("is_logged_in", False):
        _login_screen()
    email = str(user.get("email") or "")
    # Only an explicit true from the identity provider: a missing claim proves nothing.
    if user.get("email_verified") is not True:
        _refuse(
            f"{email or 'This account'} has no verified email address, so dropscore cannot tell "
            "who it is. Verify the address with your identity provider and sign in again.",
            sign_out=True,
        )
    if not matches(email, settings.allowed):
        _refuse(
            f"{email or 'This account'} is not allowed to use dropscore. Ask an administrator "
            "to add your address or domain to DROPSCORE_UI_ALLOWED.",
            sign_out=True,
        )
    return Viewer(
        email=email,
        name=str(user.get("name") or email),
        can_promote=matches(email, settings.admins),
        local=False,
    )


def _login_screen() -> None:
    st.title("dropscore")
    st.write("Sign in to score files and browse results.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        try:
            st.login()
        except Exception:
            st.error(
                "Sign-in is not configured on this server: it needs an [auth] section in "
                ".streamlit/secrets.toml and the Authlib package. Ask an administrator."
            )
    st.stop()


def _refuse(message: str, *, sign_out: bool = False) -> None:
    st.title("dropscore")
    st.error(message, icon=":material/block:")
    if sign_out and st.button("Sign out"):
        st.logout()
    st.stop()
