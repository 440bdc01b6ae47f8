"""UI fixtures: a bucket with the trained models and real runs, an AppTest of ui/app.py
configured through the same DROPSCORE_* variables a deployment uses, and for the browser tests
the app served by ``streamlit run`` and driven in Debian's headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from scorer import layout, storage
from tests.conftest import free_port
from tests.ui.support import Seeded, seed_runs

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
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
    for name in (layout.INCOMING_ENV, layout.SCORED_ENV):
        monkeypatch.delenv(name, raising=False)
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


# --- the app in a real headless Chromium (tests/ui/test_browser*.py, test_signin.py) -----------
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots, for people to look at
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 90_000  # the first prediction imports PyCaret and unpickles the model
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def app_env(bucket: str, registry: str) -> dict[str, str]:
    """The DROPSCORE_* variables a local-mode deployment of the app sets."""
    return {
        "DROPSCORE_BUCKET": bucket,
        "DROPSCORE_REGISTRY": registry,
        "DROPSCORE_MODEL": "claims",
        "DROPSCORE_UI_MODE": "local",
    }


def needs_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make system-deps)")


@contextmanager
def streamlit_app(
    env: Mapping[str, str], log: Path, *args: str, port: int | None = None
) -> Iterator[str]:
    """``streamlit run ui/app.py [args]`` on ``port`` (default: a free one) of 127.0.0.1 with
    exactly ``env``; yields its URL once it answers its health check, and stops it after."""
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "streamlit"), "run", "ui/app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", *args],
            cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"streamlit did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def server(bucket: str, s3, s3_registry: str, tmp_path: Path) -> Iterator[tuple[str, Seeded]]:  # type: ignore[no-untyped-def]
    """The app (local mode) over a bucket seeded with real runs: (its URL, the runs)."""
    needs_chromium()
    seeded = seed_runs(s3, bucket, s3_registry)
    env = {**os.environ, **app_env(bucket, s3_registry)}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        yield url, seeded


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright; ``expect`` waits up to WAIT_MS."""
    needs_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Browser, width: int, height: int, *, fresh: bool = False) -> Page:
    """A tab of ``width`` × ``height`` that waits up to WAIT_MS; ``fresh``: in a new profile
    (no cookie from an earlier page)."""
    viewport = {"width": width, "height": height}
    if fresh:
        page = browser.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
    else:
        page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.set_default_timeout(WAIT_MS)
    return page


def settled(page: Page, name: str, height: int | None = None) -> None:
    """Wait for the app to finish its run, check it shows no exception, and save a screenshot
    as tests/artifacts/<name>.png (``height``: that tall, as the app scrolls inside)."""
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(800)  # let charts finish drawing for the screenshot
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()
    size = page.viewport_size
    if height is not None and size is not None:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if height is not None and size is not None:
        page.set_viewport_size(size)
