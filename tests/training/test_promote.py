"""``python -m training promote``: a note is required, a worse candidate is warned about, and the
promotion lands in the registry's history with who, why and the warning shown."""

from __future__ import annotations

import getpass
import json
import shutil
from pathlib import Path

import pytest

from scorer.registry import Registry
from tests.scorer.test_registry import snapshot
from tests.training.test_train import assert_one_error_line, cli


@pytest.fixture
def two_versions(trained_registry: str, tmp_path: Path) -> Path:
    """claims v1 (production) and a v2 with the same model but a worse r2 on its card."""
    dest = tmp_path / "models"
    shutil.copytree(trained_registry, dest)
    v1, v2 = dest / "claims" / "1", dest / "claims" / "2"
    shutil.copytree(v1, v2)
    card = json.loads((v2 / "card.json").read_text())
    card["version"] = 2
    card["metrics"]["r2"] = round(card["metrics"]["r2"] - 0.1, 6)
    (v2 / "card.json").write_text(json.dumps(card))
    return dest


def test_a_blank_note_is_refused_and_writes_nothing(two_versions: Path) -> None:
    before = snapshot(two_versions)
    proc = cli("promote", "claims", "2", "--registry", str(two_versions), "--note", "   ")
    assert proc.returncode == 2  # a usage error: nothing ran
    assert_one_error_line(proc.stderr, "BAD_ARGUMENT", "a promotion needs a note saying why")
    assert snapshot(two_versions) == before


def test_promote_without_a_note_still_works_as_the_contract_says_and_is_recorded_as_such(
    two_versions: Path,
) -> None:
    proc = cli("promote", "claims", "2", "--registry", str(two_versions))
    assert proc.returncode == 0, proc.stderr
    assert "warning: no --note given" in proc.stderr
    reg = Registry(str(two_versions))
    assert reg.resolve("claims").version == 2
    assert reg.history("claims")[0].note == "(no note given)"


def test_a_worse_candidate_is_warned_about_and_recorded(two_versions: Path) -> None:
    reg = Registry(str(two_versions))
    old, new = reg.card("claims", 1).metrics["r2"], reg.card("claims", 2).metrics["r2"]
    proc = cli(
        "promote", "claims", "2",
        env={"DROPSCORE_REGISTRY": str(two_versions), "DROPSCORE_NOTE": "hotfix for ticket 7",
             "DROPSCORE_BY": "boss@example.com"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warning = f"v2 is worse than v1 on r2: {new:.4g} vs {old:.4g}"
    assert f"warning: {warning}" in proc.stderr
    assert proc.stdout.startswith("claims:production → version 2")
    latest = reg.history("claims")[0]
    assert (latest.by, latest.note, latest.moved) == (
        "boss@example.com", "hotfix for ticket 7", "v1 → v2",
    )  # fmt: skip
    assert latest.warnings[0].startswith(warning)
    assert reg.resolve("claims").version == 2


def test_who_defaults_to_the_os_user(two_versions: Path) -> None:
    proc = cli("promote", "claims", "2", "--registry", str(two_versions), "--note", "why not")
    assert proc.returncode == 0, proc.stderr
    assert Registry(str(two_versions)).history("claims")[0].by == getpass.getuser()
