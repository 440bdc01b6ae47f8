"""One BLAS thread wherever scorer is imported, so a prediction's last digit does not depend on
which process computed it (the batch CLI, a Dask worker, the UI, a notebook)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import numpy, threadpoolctl\n"  # numpy first: too late for OPENBLAS_NUM_THREADS alone
    "import scorer\n"
    "print(max(i['num_threads'] for i in threadpoolctl.threadpool_info() "
    "if i['user_api'] == 'blas'))\n"
)


def _blas_threads(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def test_numpy_imported_before_scorer_still_gets_one_blas_thread() -> None:
    assert _blas_threads() == 1


def test_an_explicit_setting_wins() -> None:
    assert _blas_threads(OPENBLAS_NUM_THREADS="2") == 2
