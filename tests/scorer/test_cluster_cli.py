"""``--cluster`` through the command line: a Dask scheduler that cannot be reached ends the run
within ``--cluster-timeout`` with CLUSTER_UNAVAILABLE, exit 1 and nothing written (the input
stays pending); ``fargate[:N]`` outside the stack's tasks, or a wrong timeout, is a usage error
(exit 2) before anything runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scorer(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSCORE_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "scorer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )


@pytest.fixture(scope="module")
def claims_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.sample_data import generate

    path = tmp_path_factory.mktemp("cluster-cli") / "claims.csv"
    generate(400, seed=3).drop(columns=["charges"]).to_csv(path, index=False)
    return path


def test_an_unreachable_scheduler_fails_the_run_in_the_timeout_and_leaves_it_pending(
    tmp_path: Path, trained_registry: str, claims_csv: Path
) -> None:
    out = tmp_path / "out"
    proc = scorer(
        "score", str(claims_csv), "--registry", trained_registry, "--model", "claims",
        "--out", str(out), "--cluster", f"tcp://127.0.0.1:{closed_port()}",
        "--shard-over-mb", "0.004",  # the ~20 KB file is sharded: the cluster is needed
        cwd=tmp_path, env={"DROPSCORE_CLUSTER_TIMEOUT": "2"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error [CLUSTER_UNAVAILABLE]: the Dask cluster 'tcp://127.0.0.1:")
    assert "after 2 s" in line  # the setting, not Dask's 30 s default
    assert "check --cluster and --cluster-timeout (or run with --cluster none)" in line
    assert line.endswith("the input stays pending")
    assert "Traceback" not in proc.stderr
    assert not (out / "manifest.json").exists()  # pending: a retry or the sweep redoes it
    assert not (out / "predictions.csv").exists()


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--cluster", "fargate:2"], {}, "Dask workers on Fargate need DROPSCORE_ECS_CLUSTER"),
        (
            ["--cluster", "fargate"],
            {
                "DROPSCORE_ECS_CLUSTER": "c",
                "DROPSCORE_WORKER_TASK_DEFINITION": "w:1",
                "DROPSCORE_SUBNETS": "subnet-1",
                "DROPSCORE_WORKER_SECURITY_GROUP": "sg-1",
            },
            "--cluster fargate runs in the stack's scorer or sweep task",
        ),
        (["--cluster", "fargate:0"], {}, "fargate[:N] (N Fargate worker tasks), not 'fargate:0'"),
        (["--cluster", "tcp://h:1", "--cluster-timeout", "0"], {}, "--cluster-timeout must be"),
    ],
    ids=[
        "fargate without the stack's worker settings",
        "fargate outside an ECS task",
        "fargate with zero workers",
        "a cluster timeout of zero",
    ],
)
def test_cluster_settings_that_cannot_work_are_usage_errors(
    tmp_path: Path, trained_registry: str, claims_csv: Path, args: list[str],
    env: dict[str, str], fragment: str,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    proc = scorer(
        "score", str(claims_csv), "--registry", trained_registry, "--model", "claims",
        "--out", str(out), "--shard-over-mb", "0.004", *args, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error [BAD_ARGUMENT]: ")
    assert fragment in line
    assert not out.exists()


def help_of(command: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from scorer.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return capsys.readouterr().out


def option_help(text: str, option: str) -> str:
    """The help of one option: its line and those below it up to the next option's (argparse
    wraps them to the terminal's width: compared as words)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {option} "))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines)
    )
    return " ".join(" ".join(lines[start:end]).split())


@pytest.mark.parametrize(
    "command",
    [["event"], ["sweep"], ["watch"], ["jobs", "run"]],
    ids=lambda c: " ".join(c),
)
def test_every_command_that_scores_a_file_takes_the_cluster_options(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same three options, help texts and DROPSCORE_* variables as `score`."""
    score = help_of(["score"], capsys)
    theirs = help_of(command, capsys)
    for option, env in (("--cluster", "DROPSCORE_CLUSTER"),
                        ("--cluster-timeout", "DROPSCORE_CLUSTER_TIMEOUT"),
                        ("--shard-over-mb", "DROPSCORE_SHARD_OVER_MB")):  # fmt: skip
        assert f"\n  {option} " in theirs, f"{' '.join(command)} has no {option}"
        assert option_help(theirs, option) == option_help(score, option)
        assert f"[env {env}]" in option_help(theirs, option)
