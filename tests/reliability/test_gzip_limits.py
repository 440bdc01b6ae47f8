"""Poison gzip, bombs and the per-file budget, through the CLI as a task runs it: each command
is a subprocess under an address-space cap (RLIMIT_AS, far below a task's memory) and a time
limit, so a quadratic decompression fails by timing out and a bomb by running out of memory.
The model is scored by its scoring plan (no PyCaret import), which fits well inside the cap."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import ROOT, ledger, manifests, put, sample_csv
from tests.reliability.gzipfiles import bomb, members

MiB = 1024 * 1024
CAP = 1024 * MiB  # the scorer's address space: a quarter of a 4 GiB task, half the UI's 2 GiB
LIMIT_S = 240  # for a command; the fixed scorer needs seconds for each of these
POISON_LIMIT_S = 60  # the poison file takes ~4 s now, 136 s uncapped before the fix (2 cores)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def scorer(
    *args: str, env: dict[str, str] | None = None, timeout: float = LIMIT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m scorer ARGS`` under the memory cap and the time limit."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "scorer", "--log-format", "json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_capped,
        timeout=timeout,
        check=False,
    )


def score_file(
    tmp_path: Path, registry: str, name: str, data: bytes, *flags: str, timeout: float = LIMIT_S
) -> Any:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / f"out-{name}"
    proc = scorer(
        "score", str(src), "--registry", registry, "--model", "claims", "--out", str(out),
        "--workers", "0", *flags, timeout=timeout,
    )  # fmt: skip
    manifest = out / "manifest.json"
    assert manifest.exists(), proc.stderr[-2000:]
    return proc, json.loads(manifest.read_text()), out


def _no_crash(proc: subprocess.CompletedProcess[str]) -> None:
    assert "INTERNAL" not in proc.stderr, proc.stderr[-2000:]
    assert "MemoryError" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("count", "rows_per_member"),
    [(24_000, 20), (24_000, 1)],
    ids=["24,000 members of 20 rows", "1 MB of one-row members"],
)
def test_a_file_of_thousands_of_gzip_members_scores_every_row_under_a_memory_cap(
    tmp_path: Path, trained_registry: str, count: int, rows_per_member: int
) -> None:
    data, rows = members(count, rows_per_member)
    assert len(data) < 2 * MiB
    proc, m, out = score_file(
        tmp_path, trained_registry, "poison.csv.gz", data, timeout=POISON_LIMIT_S
    )
    _no_crash(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (m["status"], m["rows_in"], m["rows_scored"]) == ("ok", rows, rows)
    with open(out / "predictions.csv", "rb") as fh:
        assert sum(1 for _ in fh) == rows + 1


def test_a_gzip_bomb_is_refused_terminally_with_memory_under_the_cap(
    tmp_path: Path, trained_registry: str
) -> None:
    data = bomb(5 * 1024 * MiB)  # 5 GiB of valid rows in ~13 MB
    assert len(data) < 16 * MiB
    proc, m, _ = score_file(tmp_path, trained_registry, "bomb.csv.gz", data)
    _no_crash(proc)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (m["status"], m["reason"]["code"]) == ("failed", "DECOMPRESSION_BOMB")
    # bounded pieces: ~230-240 MB when run alone; up to 527 MB was seen twice in full-suite runs
    # on a heavily shared machine (cause not found: allocator arenas under contention is the
    # suspect). The cap itself (RLIMIT_AS) is what must never be reached: three quarters of it.
    assert m["peak_memory_mb"] < CAP / MiB * 3 / 4


def test_the_decompressed_size_cap_refuses_a_file_under_the_ratio(
    tmp_path: Path, trained_registry: str
) -> None:
    plain = sample_csv(20_000)
    import gzip

    proc, m, _ = score_file(
        tmp_path, trained_registry, "big.csv.gz", gzip.compress(plain), "--max-decompressed-mb",
        str(len(plain) / 2 / MiB),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (m["status"], m["reason"]["code"]) == ("failed", "DECOMPRESSION_BOMB")
    assert "DROPSCORE_MAX_DECOMPRESSED_MB" in m["reason"]["message"]


def test_a_file_over_the_size_budget_is_refused_as_too_large(
    tmp_path: Path, trained_registry: str
) -> None:
    data = sample_csv(2_000)
    proc, m, out = score_file(
        tmp_path, trained_registry, "big.csv", data, "--max-input-mb", str(len(data) / 2 / MiB)
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (m["status"], m["reason"]["code"]) == ("failed", "TOO_LARGE")
    assert not (out / "predictions.csv").exists()


def test_a_file_over_the_cpu_budget_is_refused_and_under_it_is_scored(
    tmp_path: Path, trained_registry: str
) -> None:
    data, _ = members(24_000, 20)  # ~half a million rows: well over 0.2 CPU seconds
    proc, m, _ = score_file(
        tmp_path, trained_registry, "slow.csv.gz", data, "--max-cpu-seconds", "0.2"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (m["status"], m["reason"]["code"]) == ("failed", "BUDGET_EXCEEDED")
    assert "--max-cpu-seconds" in m["reason"]["message"]
    proc, m, _ = score_file(
        tmp_path, trained_registry, "small.csv", sample_csv(50), "--max-cpu-seconds", "0.2"
    )
    assert (proc.returncode, m["status"], m["rows_scored"]) == (0, "ok", 50), proc.stderr


def test_a_budget_option_that_is_not_a_positive_number_is_a_usage_error(
    tmp_path: Path, trained_registry: str
) -> None:
    src = tmp_path / "x.csv"
    src.write_bytes(sample_csv(5))
    proc = scorer(
        "score", str(src), "--registry", trained_registry, "--model", "claims",
        "--out", str(tmp_path / "o"), "--max-cpu-seconds", "0",
    )  # fmt: skip
    assert proc.returncode == 2  # a usage error: nothing ran
    assert "error [BAD_ARGUMENT]: --max-cpu-seconds must be a number greater than 0" in proc.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


# --- the sweep, watch and the checker ------------------------------------------------------------
@pytest.mark.parametrize(
    ("budget", "poison_outcome"),
    [(None, ("ok", None)), ("0.3", ("failed", "BUDGET_EXCEEDED"))],
    ids=["default budget: the poison is scored", "a 0.3 s budget: the poison is refused"],
)
def test_poison_files_never_starve_the_sweep_and_the_checker_stays_fast_and_clean(
    s3: Any,
    bucket: str,
    s3_registry: str,
    budget: str | None,
    poison_outcome: tuple[str, str | None],
) -> None:
    poison, rows = members(24_000, 20)
    put(s3, bucket, "incoming/p1.csv.gz", poison)
    put(s3, bucket, "incoming/p2.csv.gz", poison)
    # an input whose event was lost, behind the two poison files in the sweep's order
    put(s3, bucket, "incoming/zz-lost.csv", sample_csv(30))
    put(s3, bucket, "incoming/bomb.csv.gz", bomb(2 * 1024 * MiB))
    env = {"DROPSCORE_MAX_CPU_SECONDS": budget} if budget else {}
    proc = scorer("sweep", "--bucket", bucket, "--concurrency", "2", env=env)
    _no_crash(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_input = {m["input"]["key"]: m for m in manifests(s3, bucket).values()}
    assert len(by_input) == 4
    outcome = {k: (m["status"], (m["reason"] or {}).get("code")) for k, m in by_input.items()}
    if budget:  # the bomb's first 32 MiB of rows may take more than the budget: both are right
        bomb_codes = ("DECOMPRESSION_BOMB", "BUDGET_EXCEEDED")
        assert outcome["incoming/bomb.csv.gz"] in [("failed", c) for c in bomb_codes]
        outcome["incoming/bomb.csv.gz"] = ("failed", "DECOMPRESSION_BOMB")
    assert outcome == {
        "incoming/p1.csv.gz": poison_outcome,
        "incoming/p2.csv.gz": poison_outcome,
        "incoming/zz-lost.csv": ("ok", None),
        "incoming/bomb.csv.gz": ("failed", "DECOMPRESSION_BOMB"),
    }
    if budget is None:
        assert by_input["incoming/p1.csv.gz"]["rows_in"] == rows
    check = scorer("check", "--bucket", bucket)
    assert (check.returncode, check.stdout) == (0, ""), check.stderr[-2000:]
    assert ledger(bucket) == []


def test_watch_hands_the_budget_to_each_event_it_runs(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    from urllib.parse import quote_plus

    from scorer import service, watch
    from scorer.budget import Limits
    from tests.scorer.test_events import eventbridge

    data = sample_csv(500)
    version = put(s3, bucket, "incoming/w.csv", data)
    body = json.dumps(eventbridge(quote_plus("incoming/w.csv", safe="/"), version, bucket))
    settings = service.Settings(limits=Limits(max_input_mb=len(data) / 2 / MiB))
    assert watch.handle(body, settings) == 2
    (m,) = manifests(s3, bucket).values()
    assert (m["status"], m["reason"]["code"]) == ("failed", "TOO_LARGE")
