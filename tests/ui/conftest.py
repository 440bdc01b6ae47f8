"""UI fixtures: a bucket with the trained models and real runs, and an AppTest of ui/app.py
configured through the same DROPSCORE_* variables a deployment uses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from scorer import storage
from tests.ui.support import Seeded, seed_runs

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
TIMEOUT = 120  # the first run imports PyCaret and unpickles a model


@pytest.fixture(autouse=True)
def _scorer_client_after() -> Iterator[None]:
    """The app shortens this process's S3 timeouts and attempts (UI settings); the tests that
    follow in the same process get the scorer's own client back."""
    yield
    storage.CLIENT_OVERRIDES.clear()
    storage.s3_client.cache_clear()


@pytest.fixture
def ui_env(monkeypatch: pytest.MonkeyPatch, bucket: str, s3_registry: str) -> str:
    """Local mode against a fresh bucket holding both trained models; returns the bucket."""
    monkeypatch.setenv("DROPSCORE_BUCKET", bucket)
    monkeypatch.setenv("DROPSCORE_REGISTRY", s3_registry)
    monkeypatch.setenv("DROPSCORE_MODEL", "claims")
    monkeypatch.setenv("DROPSCORE_UI_MODE", "local")
    for name in ("DROPSCORE_UI_ALLOWED", "DROPSCORE_UI_ADMINS", "DROPSCORE_UI_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DROPSCORE_UI_MAX_ROWS", raising=False)
    return bucket


@pytest.fixture
def seeded(ui_env: str, s3, s3_registry: str) -> Seeded:  # type: ignore[no-untyped-def]
    return seed_runs(s3, ui_env, s3_registry)


@pytest.fixture
def app(ui_env: str) -> Callable[..., AppTest]:
    """``app(page="runs", query={...})``: a fresh session of ui/app.py, already run once."""

    def make(page: str = "", query: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.query_params.update(query or {})
        at.run()
        if page:
            open_page(at, page)
        return at

    return make


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Go to a callable st.Page (AppTest.switch_page only knows file-based pages): a page's
    hash is the hash of its url_path, which is what a browser navigation sends."""
    at._page_hash = calc_hash(url_path)
    return at.run()


def add_version(registry: str, name: str) -> int:
    """Publish the current production version again as a new version (same model.pkl and
    scoring plan)."""
    base = storage.join(registry, name)
    aliases = json.loads(storage.read_bytes(storage.join(base, "aliases", "production.json")))
    old = int(aliases["version"])
    card = json.loads(storage.read_bytes(storage.join(base, str(old), "card.json")))
    new = old + 1
    card["version"] = new
    storage.write_bytes(
        storage.join(base, str(new), "model.pkl"),
        storage.read_bytes(storage.join(base, str(old), "model.pkl")),
    )
    if card.get("plan"):
        plan = storage.read_bytes(storage.join(base, str(old), "plan.json"))
        storage.write_bytes(storage.join(base, str(new), "plan.json"), plan)
    storage.write_bytes(storage.join(base, str(new), "card.json"), json.dumps(card).encode())
    return new
