"""dropscore scorer: batch scoring of CSV files with PyCaret models from a registry."""

__version__ = "0.1.0"

import os as _os

# PyCaret writes a 'logs.log' into the working directory on import unless told otherwise.
_os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", _os.devnull)
# One BLAS thread. Scoring multiplies a batch by a coefficient vector: far too little work to
# share, and OpenBLAS's idle threads spin on sched_yield meanwhile (measured: 2+ s of system
# time per million rows on 2 cores). Set before numpy is imported; an explicit setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_API = ("LoadedModel", "Scored", "ScoredFile", "load_model", "score_file", "score_frame")


def __getattr__(name: str) -> object:
    """``scorer.load_model``, ``scorer.score_frame`` …: the Python API (scorer/api.py), imported
    on first use so that ``python -m scorer`` does not pay for it."""
    if name in _API:
        from scorer import api

        return getattr(api, name)
    raise AttributeError(f"module 'scorer' has no attribute '{name}'")
