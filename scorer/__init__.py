"""dropscore scorer: batch scoring of CSV files with PyCaret models from a registry."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# PyCaret writes a 'logs.log' into the working directory on import unless told otherwise.
_os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", _os.devnull)
# One BLAS thread. Scoring multiplies a batch by a coefficient vector: far too little work to
# share, and OpenBLAS's idle threads spin on sched_yield meanwhile (measured: 2+ s of system
# time per million rows on 2 cores). An explicit setting wins. It is also what makes the last
# digit of a prediction the same everywhere: a threaded BLAS sums a row's products in another
# order, so a process with 2 BLAS threads (the UI, a notebook, a test run: numpy imported before
# scorer, too late for the variable) gave predictions a unit in the last place away from the
# batch scorer's and from its own Dask workers'. So when numpy came first, the same limit is
# applied to the BLAS it already loaded — once, here, at import.
if "OPENBLAS_NUM_THREADS" not in _os.environ:
    _os.environ["OPENBLAS_NUM_THREADS"] = "1"
    if "numpy" in _sys.modules:
        from threadpoolctl import threadpool_limits as _limits

        _limits(1, user_api="blas")

_API = ("LoadedModel", "Scored", "ScoredFile", "load_model", "score_file", "score_frame")


def __getattr__(name: str) -> object:
    """``scorer.load_model``, ``scorer.score_frame`` …: the Python API (scorer/api.py), imported
    on first use so that ``python -m scorer`` does not pay for it."""
    if name in _API:
        from scorer import api

        return getattr(api, name)
    raise AttributeError(f"module 'scorer' has no attribute '{name}'")
