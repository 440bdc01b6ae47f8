"""``python -m training --help`` and each subcommand's: exit 0, every option's env var named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HELP = [
    ([], ["sample-data", "train", "promote", "examples:"]),
    (["sample-data"], ["DROPSCORE_ROWS", "DROPSCORE_OUT", "DROPSCORE_SEED"]),
    (
        ["train"],
        [
            "DROPSCORE_DATA",
            "DROPSCORE_TARGET",
            "DROPSCORE_NAME",
            "DROPSCORE_REGISTRY",
            "DROPSCORE_TASK",
            "DROPSCORE_ESTIMATORS",
            "DROPSCORE_ALIAS",
        ],
    ),
    (["promote"], ["DROPSCORE_REGISTRY", "DROPSCORE_ALIAS", "name", "version"]),
]


@pytest.mark.parametrize(
    ("sub", "expected"), HELP, ids=["top level", "sample-data", "train", "promote"]
)
def test_help_exits_0_and_names_the_env_vars(sub: list[str], expected: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSCORE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "training", *sub, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: python -m training")
    for word in expected:
        assert word in proc.stdout


def test_an_env_var_fills_a_required_option(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSCORE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "training", "sample-data"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DROPSCORE_ROWS": "3", "DROPSCORE_OUT": str(out)},
    )
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 4
