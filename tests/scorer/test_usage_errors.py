"""A command line that is itself wrong exits 2 ("nothing ran; retrying will not help"), never 1,
which the exit-code contract reserves for "the input stays pending: retry me" — with one line
that names the problem and where the usage is, and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSCORE_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,  # not the repository: the installed package answers
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


# (module, arguments, code, a fragment of the message, the usage the line points to)
USAGE_ERRORS = [
    ("scorer", ["score", "in.csv", "--registry", "r", "--model", "claims", "--out", "o",
                "--no-such-flag"], "USAGE", "unrecognized arguments: --no-such-flag",
     "python -m scorer score --help"),
    ("scorer", ["score", "in.csv", "--model", "claims", "--out", "o"], "USAGE",
     "the following arguments are required: --registry", "python -m scorer score --help"),
    ("scorer", ["nonsense"], "USAGE", "invalid choice: 'nonsense'", "python -m scorer --help"),
    ("scorer", ["score", "in.csv", "--registry", "r", "--model", "claims", "--out", "o",
                "--max-rejected-rate", "20%"], "BAD_ARGUMENT", "--max-rejected-rate",
     "python -m scorer score --help"),
    ("scorer", ["score", "in.csv", "--registry", "r", "--model", "bad name", "--out", "o"],
     "BAD_ARGUMENT", "model name 'bad name' is not allowed", "python -m scorer score --help"),
    ("scorer", ["jobs", "add", "n", "--bucket", "b", "--source", "s3://b/in/", "--model",
                "claims", "--schedule", "every day"], "BAD_ARGUMENT", "'every day'",
     "python -m scorer jobs add --help"),
    ("training", ["sample-data", "--rows", "0", "--out", "x.csv"], "BAD_ARGUMENT",
     "--rows must be at least 1", "python -m training sample-data --help"),
    ("training", ["sample-data", "--rows", "ten", "--out", "x.csv"], "USAGE",
     "argument --rows: invalid int value: 'ten'", "python -m training sample-data --help"),
    ("training", ["promote", "../claims", "1", "--registry", "r"], "BAD_ARGUMENT",
     "model name '../claims' is not allowed", "python -m training promote --help"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("module", "args", "code", "fragment", "usage"),
    USAGE_ERRORS,
    ids=[
        "scorer: an unknown flag",
        "scorer: a required option missing",
        "scorer: an unknown command",
        "scorer: a malformed --max-rejected-rate",
        "scorer: a malformed model reference",
        "scorer jobs add: a schedule that is not cron() or rate()",
        "training: zero rows",
        "training: a number that is not a number",
        "training promote: a model name with a path in it",
    ],
)
def test_a_usage_error_exits_2_with_one_line_and_the_usage(
    tmp_path: Path, module: str, args: list[str], code: str, fragment: str, usage: str
) -> None:
    proc = run(module, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error [{code}]: "), proc.stderr
    assert fragment in lines[0], proc.stderr
    assert lines[0].endswith(f"; see '{usage}'"), proc.stderr
    assert list(tmp_path.iterdir()) == [], "nothing ran, so nothing was written"


def test_the_help_of_both_commands_states_the_exit_codes(tmp_path: Path) -> None:
    for module in ("scorer", "training"):
        proc = run(module, "--help", cwd=tmp_path)
        assert proc.returncode == 0
        text = " ".join(proc.stdout.split())
        assert "exit codes: 0" in text, module
        assert "or the command itself was wrong (nothing ran)" in text, module
