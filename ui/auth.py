"""Who is using the app: local mode (no sign-in, loopback only) or OIDC sign-in + allow-lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.settings import UISettings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    """An address is listed exactly, or its domain is (``example.com`` or ``@example.com``)."""
    email = email.strip().lower()
    if "@" not in email or email.startswith("@"):
        return False
    domain = email.rsplit("@", 1)[1]
    for entry in entries:
        entry = entry.strip().lower()
        if entry == email or entry.lstrip("@") == domain:
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
    verified = user.get("email_verified", True)
    if verified is False or not matches(email, settings.allowed):
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
