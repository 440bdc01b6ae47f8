"""Our own scans of the infrastructure code report nothing: cfn-lint and checkov on the template,
checkov and hadolint on both Dockerfiles, bash's parser on the deploy script. Every checkov skip
carries its reason, and no skip outlives the finding it silences."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT, TEMPLATE, VENV_BIN

DOCKERFILES = [ROOT / "Dockerfile.scorer", ROOT / "Dockerfile.ui"]
CHECKOV_BUDGET_S = 180  # ~10 s on an idle machine, ~50 s under a parallel suite; minutes = online


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


def checkov(*targets: Path, frameworks: tuple[str, ...]) -> tuple[list[dict[str, Any]], float]:
    """Run checkov offline (no guideline download, no mapping fetch); one report per framework."""
    cmd = [str(VENV_BIN / "checkov"), "--quiet", "--compact", "-o", "json", "--skip-download"]
    for target in targets:
        cmd += ["-f", str(target)]
    cmd += ["--framework", *frameworks]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    start = time.monotonic()
    proc = run(cmd, env=env)
    elapsed = time.monotonic() - start
    assert proc.stdout.strip(), proc.stderr
    reports = json.loads(proc.stdout)
    return (reports if isinstance(reports, list) else [reports]), elapsed


def failures(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


@pytest.fixture(scope="module")
def checkov_reports() -> tuple[list[dict[str, Any]], float]:
    return checkov(TEMPLATE, *DOCKERFILES, frameworks=("cloudformation", "dockerfile"))


def test_cfn_lint_reports_nothing() -> None:
    proc = run([str(VENV_BIN / "cfn-lint"), "--format", "parseable", str(TEMPLATE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.xdist_group("checkov")
def test_checkov_finds_no_failed_check_offline_and_in_time(checkov_reports) -> None:
    reports, elapsed = checkov_reports
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == {"cloudformation", "dockerfile"}, "a framework did not run"
    assert by_type["cloudformation"]["summary"]["resource_count"] >= 35
    assert by_type["cloudformation"]["summary"]["passed"] >= 80
    assert by_type["dockerfile"]["summary"]["resource_count"] == 2
    assert failures(reports) == []
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert elapsed < CHECKOV_BUDGET_S, f"checkov took {elapsed:.0f}s"


def template_skips(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(resource, check id, comment) for every checkov skip in the template's Metadata."""
    out = []
    for name, res in template["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            out.append((name, skip["id"], skip.get("comment", "")))
    return out


def dockerfile_skips(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"#\s*checkov:skip=([A-Z0-9_]+):?(.*)", path.read_text())


def test_every_checkov_skip_says_why(template) -> None:
    skips = template_skips(template)
    assert skips, "expected the documented skips"
    for resource, check, comment in skips:
        assert len(comment.split()) >= 6, f"{resource} skips {check} without a real reason"
    for path in DOCKERFILES:
        for check, reason in dockerfile_skips(path):
            assert len(reason.split()) >= 6, f"{path.name} skips {check} without a real reason"


def test_template_skip_lines_carry_their_reason_on_the_same_line() -> None:
    lines = [ln for ln in TEMPLATE.read_text().splitlines() if re.search(r"\bid: CKV", ln)]
    assert lines
    assert all("comment:" in ln for ln in lines), "STYLE 15: the reason sits on the skip's line"


@pytest.mark.slow
@pytest.mark.xdist_group("checkov")
def test_no_skip_outlives_its_finding(tmp_path: Path, template) -> None:
    """Strip every skip from a copy: checkov must then fail exactly the skipped checks."""
    skip_block = r"    Metadata:\n      checkov:\n        skip:\n(?:          - .*\n)+"
    stripped = re.sub(skip_block, "", TEMPLATE.read_text())
    assert "CKV_" not in stripped
    copy = tmp_path / "template.yaml"
    copy.write_text(stripped)
    reports, _ = checkov(copy, frameworks=("cloudformation",))
    failed = sorted(
        (c["resource"].split(".", 1)[1], c["check_id"])
        for r in reports
        for c in r["results"]["failed_checks"]
    )
    assert failed == sorted((res, check) for res, check, _ in template_skips(template))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: f"hadolint {p.name}")
def test_hadolint_is_clean(dockerfile: Path) -> None:
    proc = run([str(VENV_BIN / "hadolint"), "--no-color", str(dockerfile)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_deploy_script_parses_and_is_strict() -> None:
    script = ROOT / "infra" / "deploy.sh"
    assert run(["bash", "-n", str(script)]).returncode == 0
    assert "set -euo pipefail" in script.read_text()
