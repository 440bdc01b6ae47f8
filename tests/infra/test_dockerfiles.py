"""The Dockerfiles keep their promises (pinned base, locked install, non-root, entry points),
and — since no Docker engine exists here — the UI image's entry point is run as the container
would run it: the real app under the image's production Streamlit settings, on its health
endpoint, with the image's own HEALTHCHECK command."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from infra_support import ROOT, VENV_BIN

DOCKERFILES = {"scorer": ROOT / "Dockerfile.scorer", "ui": ROOT / "Dockerfile.ui"}
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def env_of(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final_stage(path):
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def one(path: Path, word: str) -> str:
    (args,) = [a for w, a in final_stage(path) if w == word]
    return args


@pytest.mark.parametrize("path", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_every_stage_uses_the_same_digest_pinned_python_311_slim(path: Path) -> None:
    bases = [args.split()[0] for word, args in instructions(path) if word == "FROM"]
    assert len(bases) == 2, "a build stage and a runtime stage"
    assert all(BASE.match(b) for b in bases), bases
    assert len(set(bases)) == 1, "the venv is built against the runtime's interpreter"


@pytest.mark.parametrize("path", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dependencies_come_from_the_lock_file_only(path: Path) -> None:
    runs = " ".join(a for w, a in instructions(path) if w == "RUN")
    assert "uv sync --frozen --no-dev --no-build" in runs
    copies = [a for w, a in instructions(path) if w == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies
    make_uv = re.search(r"uv==([\d.]+)", (ROOT / "Makefile").read_text())
    assert make_uv, "the Makefile pins uv"
    assert f"uv=={make_uv.group(1)}" in runs, "image and Makefile use the same uv"
    assert "--from=build /opt/venv /opt/venv" in " ".join(copies)


@pytest.mark.parametrize("path", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_runs_as_a_non_root_user_with_writes_confined_to_tmp(path: Path) -> None:
    stage = final_stage(path)
    users = [i for i, (w, _) in enumerate(stage) if w == "USER"]
    assert len(users) == 1
    uid = stage[users[0]][1].split(":")[0]
    assert uid.isdigit(), "numeric, so ECS/Kubernetes can verify it is not root"
    assert int(uid) >= 1000
    assert all(w != "RUN" for w, _ in stage[users[0] :]), "nothing runs as root after USER"
    env = env_of(path)
    assert env["HOME"] == "/tmp"
    assert "PYTHONPATH" not in env, "dropscore is installed in the venv, not found by a path"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for var in ("MPLCONFIGDIR", "NUMBA_CACHE_DIR", "PYCARET_CUSTOM_LOGGING_PATH"):
        assert env[var].startswith("/tmp/"), var


def build_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    return steps[: max(i for i, (word, _) in enumerate(steps) if word == "FROM")]


@pytest.mark.parametrize("path", DOCKERFILES.values(), ids=DOCKERFILES.keys())
def test_dropscore_is_installed_as_a_wheel_after_its_dependencies(path: Path) -> None:
    """Dependencies first (a layer that survives code changes), then the packages' sources and
    a non-editable install of the project: the runtime stage copies only the venv."""
    steps = build_stage(path)
    runs = [i for i, (w, a) in enumerate(steps) if w == "RUN" and "uv sync" in a]
    assert len(runs) == 2
    deps, project = (steps[i][1] for i in runs)
    assert "--no-install-project" in deps
    assert "--no-install-project" not in project
    assert "uv sync --frozen --no-dev --no-build --no-editable" in project
    sources = [a for w, a in steps[runs[0] : runs[1]] if w == "COPY"]
    for package in PACKAGES:
        assert f"{package}/ {package}/" in sources, package
    runtime = " ".join(a for w, a in final_stage(path) if w == "COPY")
    assert not any(f"{p}/" in runtime for p in PACKAGES), "the code comes with the venv only"


PACKAGES = ("scorer", "training", "ui", "devstack")


def test_the_wheel_the_images_build_holds_every_package_and_the_ui_entry_point(
    tmp_path: Path,
) -> None:
    """Build the wheel from exactly what the build stage copies, as the image does, and check
    it holds the packages (with the UI's static files) and the app the UI entry point runs."""
    import shutil
    import tomllib
    import zipfile

    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv is needed (make install puts it in .tools/bin)"
    src = tmp_path / "src"
    for word, args in build_stage(DOCKERFILES["ui"]):
        if word == "COPY":
            for name in args.split()[:-1]:
                if (ROOT / name).is_dir():
                    shutil.copytree(
                        ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    (src / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / name, src / name)
    build = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("dropscore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names, package
    assert {
        "ui/app.py",
        "ui/static/logo.svg",
        "scorer/__main__.py",
        "training/__main__.py",
    } <= names
    assert not any(n.startswith("tests/") for n in names)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == "dropscore"
    # the UI entry point's default is where that wheel puts ui/app.py in the image's venv
    python = re.search(r"python:(3\.\d+)", one(DOCKERFILES["ui"], "FROM")).group(1)  # type: ignore[union-attr]
    app = f"/opt/venv/lib/python{python}/site-packages/ui/app.py"
    assert f'"${{DROPSCORE_UI_APP:-{app}}}"' in (ROOT / "infra" / "ui-entrypoint.sh").read_text()


def test_scorer_entry_point_is_scorer_event() -> None:
    path = DOCKERFILES["scorer"]
    assert json.loads(one(path, "ENTRYPOINT")) == ["python", "-m", "scorer"]
    assert json.loads(one(path, "CMD")) == ["event"]
    assert "HEALTHCHECK" not in [w for w, _ in final_stage(path)]  # a batch task; see its skip


PRODUCTION_STREAMLIT = {
    "STREAMLIT_SERVER_PORT": "8501",
    "STREAMLIT_SERVER_ADDRESS": "0.0.0.0",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "true",
    "STREAMLIT_SERVER_ENABLE_CORS": "true",
    "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "none",
    "STREAMLIT_CLIENT_TOOLBAR_MODE": "viewer",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_GLOBAL_DEVELOPMENT_MODE": "false",
}


def test_ui_image_has_production_streamlit_settings_and_a_healthcheck() -> None:
    path = DOCKERFILES["ui"]
    env = env_of(path)
    assert {k: env.get(k) for k in PRODUCTION_STREAMLIT} == PRODUCTION_STREAMLIT
    assert json.loads(one(path, "ENTRYPOINT")) == ["/usr/local/bin/dropscore-ui"]
    assert "/_stcore/health" in one(path, "HEALTHCHECK")
    assert one(path, "EXPOSE") == "8501"


def test_dockerignore_lets_in_only_what_the_images_copy() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = set()
    for path in DOCKERFILES.values():
        for word, args in instructions(path):
            if word == "COPY" and not args.startswith("--from"):
                sources = [a for a in args.split()[:-1] if not a.startswith("--")]
                copied |= {s.rstrip("/") for s in sources}
    assert copied == allowed
    assert all((ROOT / c).exists() for c in copied)


# --- the UI entry point, run as the container runs it ------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ui_entry_point_serves_health_under_production_settings(tmp_path: Path) -> None:
    port = free_port()
    secrets = '[auth]\nredirect_uri = "https://ui.example.com/oauth2callback"\n'
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "DROPSCORE_"))},
        **env_of(DOCKERFILES["ui"]),
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",  # the venv dropscore is installed in
        "HOME": str(tmp_path),  # the task's /tmp volume
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",  # loopback here; 0.0.0.0 in the task
        "DROPSCORE_UI_MODE": "aws",
        "DROPSCORE_UI_ALLOWED": "example.org",
        "DROPSCORE_UI_SECRETS": secrets,
        "DROPSCORE_UI_APP": str(ROOT / "ui" / "app.py"),
        "DROPSCORE_UI_MAX_MB": "7",
    }
    log = tmp_path / "ui.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(ROOT / "infra" / "ui-entrypoint.sh")],
            env=env,
            cwd=tmp_path,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        # the image's own HEALTHCHECK command, pointed at this port
        check = json.loads(one(DOCKERFILES["ui"], "HEALTHCHECK").split("CMD", 1)[1])
        check = [c.replace(":8501/", f":{port}/") for c in check]
        assert subprocess.run(check, env=env, timeout=30).returncode == 0
        written = tmp_path / ".streamlit" / "secrets.toml"
        assert written.read_text().strip() == secrets.strip()
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert "gather usage" not in log.read_text().lower()
        # Streamlit buffers what its upload endpoint receives up to server.maxUploadSize:
        # the server's limit is the app's own, from the same variable
        args = psutil.Process(proc.pid).cmdline()
        assert args[args.index("--server.maxUploadSize") + 1] == "7", args
    finally:
        proc.terminate()
        proc.wait(10)
    # a health probe against a dead server must fail, or the check proves nothing
    assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0


def test_streamlit_upload_limit_equals_the_apps_limit() -> None:
    """Local runs read .streamlit/config.toml; it must not let Streamlit take more than the app
    accepts (DROPSCORE_UI_MAX_MB's default), and the image passes the variable itself."""
    import tomllib

    from ui.settings import UISettings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == UISettings.from_env({}).max_mb
    entry = (ROOT / "infra" / "ui-entrypoint.sh").read_text()
    assert '--server.maxUploadSize "${DROPSCORE_UI_MAX_MB:-50}"' in entry
    assert f"DROPSCORE_UI_MAX_MB:-{UISettings.from_env({}).max_mb}}}" in entry
    assert "maxUploadSize" not in "".join(a for _, a in instructions(DOCKERFILES["ui"]))
