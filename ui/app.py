"""dropscore's Streamlit app: ``streamlit run ui/app.py`` (the project is installed, so its
packages import from anywhere; the image runs the installed copy)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from scorer import storage
from scorer.errors import DropscoreError
from ui import auth, state, widgets
from ui.settings import UISettings
from ui.views import home, models, predict, runs, schedules, score

_STATIC = Path(__file__).resolve().parent / "static"
_LOGO = str(_STATIC / "logo.svg")
_LOGO_ICON = str(_STATIC / "icon.svg")
# on a phone: headings wrap between words (a file name at its hyphens), never inside one, and
# the flow graph keeps a legible size and scrolls sideways
_CSS = """<style>
h1 { word-break: normal; overflow-wrap: break-word; hyphens: none; }  /* mid-word: last resort */
@media (max-width: 640px) {
  h1 { font-size: 1.75rem !important; }
  [data-testid="stGraphVizChart"] { overflow-x: auto; }
  [data-testid="stGraphVizChart"] svg { min-width: 680px; }
}
</style>"""


def main() -> None:
    st.set_page_config(page_title="dropscore", page_icon=_LOGO_ICON, layout="wide")
    st.logo(_LOGO, size="large", icon_image=_LOGO_ICON)
    try:
        settings = state.settings()
    except DropscoreError as exc:
        st.error(f"dropscore is misconfigured: {exc.message}", icon=":material/error:")
        st.stop()
    storage.configure_client(
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        attempts=settings.s3_attempts,
    )
    st.html(_CSS)
    viewer = auth.sign_in(settings)
    st.session_state[state.VIEWER] = viewer
    pages = {
        # the overview is the default (served at /), so every other page keeps its own URL
        "home": st.Page(
            widgets.guarded(home.render), title="Overview", icon=":material/home:", default=True
        ),
        "predict": st.Page(
            widgets.guarded(predict.render),
            title="Predict",
            icon=":material/bolt:",
            url_path="predict",
        ),
        "score": st.Page(
            widgets.guarded(score.render),
            title="Score a file",
            icon=":material/upload_file:",
            url_path="score",
        ),
        "runs": st.Page(
            widgets.guarded(runs.render),
            title="Runs",
            icon=":material/table_rows:",
            url_path="runs",
        ),
        "models": st.Page(
            widgets.guarded(models.render),
            title="Models",
            icon=":material/model_training:",
            url_path="models",
        ),
        "schedules": st.Page(
            widgets.guarded(schedules.render),
            title="Schedules",
            icon=":material/schedule:",
            url_path="schedules",
        ),
    }
    st.session_state[state.PAGES] = pages
    current = st.navigation(list(pages.values()))
    _sidebar(settings, viewer)
    current.run()


def _sidebar(settings: UISettings, viewer: auth.Viewer) -> None:
    with st.sidebar:
        if viewer.local:
            st.badge("Local mode — no sign-in", icon=":material/lan:", color="orange")
            st.caption("Bound to 127.0.0.1: only this machine can open it.")
        else:
            st.caption(f"Signed in as **{viewer.label}**")
            if st.button("Sign out", icon=":material/logout:"):
                st.logout()
        st.caption(f"Bucket `{settings.bucket}` · model `{settings.model}`")


main()
