"""Training's own errors; all are DropscoreErrors so the CLI reports them the same way."""

from __future__ import annotations

from scorer.codes import Code
from scorer.errors import DropscoreError


class TrainingDataError(DropscoreError):
    """The training CSV cannot be used as it is (missing target, too few rows, constant …)."""

    code = Code.TRAINING_DATA
    exit_code = 2


class TrainingFailed(DropscoreError):
    """PyCaret could not fit any model on the data."""

    code = Code.TRAINING_FAILED
