"""Named session-state keys, and the per-session objects every page needs."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from ui.auth import Viewer
from ui.settings import UISettings

SETTINGS = "dropscore.settings"
VIEWER = "dropscore.viewer"
PAGES = "dropscore.pages"
PREDICT_RESULT = "predict.result"
SCORE_RESULT = "score.result"
SENT_UPLOAD = "score.sent"
PROMOTED = "models.promoted"
RUN_FILTERS = "runs.filters"  # the list's filters, kept while a run or another page is open


def settings() -> UISettings:
    """Read from the environment once per session (configuration enters once)."""
    if SETTINGS not in st.session_state:
        st.session_state[SETTINGS] = UISettings.from_env(os.environ)
    value: UISettings = st.session_state[SETTINGS]
    return value


def viewer() -> Viewer:
    value: Viewer = st.session_state[VIEWER]
    return value


def page(name: str) -> Any:
    """The ``st.Page`` registered under ``name`` (for links between pages)."""
    return st.session_state[PAGES][name]
