"""Every reason code dropscore writes: in manifests, rejected.csv, warnings, alerts, logs and the
CLI's ``error [CODE]`` lines. One enum, so a code is spelt once; the README's tables list exactly
these (tests/scorer/test_codes_documented.py).

A ``StrEnum``: a member *is* its string (``Code.EMPTY == "EMPTY"``, ``str()``, f-strings and
``json.dumps`` give ``EMPTY``), so manifests and outputs hold the same bytes as plain strings.
The ledger checker's violation codes are another vocabulary (scorer/check.py, docs/guarantees.md).
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Code(StrEnum):
    # --- a file refused as a whole: manifest ``failed``, exit 2 ----------------------------------
    FILE_REFUSED = "FILE_REFUSED"  # the generic refusal; the specific ones follow
    EMPTY = "EMPTY"
    HEADER_ONLY = "HEADER_ONLY"
    NOT_UTF8 = "NOT_UTF8"
    WRONG_DELIMITER = "WRONG_DELIMITER"
    MIXED_DECIMAL_MARKS = "MIXED_DECIMAL_MARKS"
    NOT_CSV = "NOT_CSV"
    BINARY_CONTENT = "BINARY_CONTENT"
    DUPLICATE_HEADER = "DUPLICATE_HEADER"
    BLANK_HEADER = "BLANK_HEADER"
    RESERVED_COLUMN = "RESERVED_COLUMN"
    MISSING_COLUMNS = "MISSING_COLUMNS"
    GZIP_CORRUPT = "GZIP_CORRUPT"
    DECOMPRESSION_BOMB = "DECOMPRESSION_BOMB"
    MALFORMED_CSV = "MALFORMED_CSV"
    FIELD_TOO_LARGE = "FIELD_TOO_LARGE"
    ALL_ROWS_REJECTED = "ALL_ROWS_REJECTED"
    TOO_LARGE = "TOO_LARGE"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"  # its outputs would not fit one S3 object
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    TOO_MANY_REJECTED = "TOO_MANY_REJECTED"
    SOURCE_GONE = "SOURCE_GONE"
    UNSUPPORTED_EXTENSION = "UNSUPPORTED_EXTENSION"
    DESTINATION_IN_USE = "DESTINATION_IN_USE"
    MODEL_REQUEST_INVALID = "MODEL_REQUEST_INVALID"
    MODEL_REQUEST_NOT_FOUND = "MODEL_REQUEST_NOT_FOUND"
    TOO_MANY_ROWS = "TOO_MANY_ROWS"  # the UI's upload limit

    # --- a row rejected: rejected.csv ------------------------------------------------------------
    WRONG_TYPE = "WRONG_TYPE"
    NON_FINITE = "NON_FINITE"
    MISSING_VALUE = "MISSING_VALUE"
    TOO_FEW_FIELDS = "TOO_FEW_FIELDS"
    TOO_MANY_FIELDS = "TOO_MANY_FIELDS"
    MODEL_REFUSED = "MODEL_REFUSED"
    NON_FINITE_PREDICTION = "NON_FINITE_PREDICTION"

    # --- scored, with a warning counted in the manifest ------------------------------------------
    UNSEEN_CATEGORY = "UNSEEN_CATEGORY"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    EXTRA_COLUMNS = "EXTRA_COLUMNS"
    CATEGORY_NORMALISED = "CATEGORY_NORMALISED"
    SEMICOLON_DIALECT = "SEMICOLON_DIALECT"
    DECIMAL_COMMA = "DECIMAL_COMMA"
    GZIP_TRAILING_ZEROS = "GZIP_TRAILING_ZEROS"

    # --- alerts (the manifest's ``alerts``) ------------------------------------------------------
    DRIFT_PREDICTION = "DRIFT_PREDICTION"
    DRIFT_FEATURE = "DRIFT_FEATURE"
    UNSEEN_SHARE = "UNSEEN_SHARE"
    OUT_OF_RANGE_SHARE = "OUT_OF_RANGE_SHARE"
    REJECTED_SHARE = "REJECTED_SHARE"

    # --- errors of a command (one stderr line; exit 1 unless the class says 2) -------------------
    ERROR = "ERROR"  # DropscoreError's own: any error without a more specific code
    INTERNAL = "INTERNAL"  # a bug: an exception dropscore did not expect
    USAGE = "USAGE"  # the command line itself is wrong (argparse)
    BAD_ARGUMENT = "BAD_ARGUMENT"
    INPUT_NOT_FOUND = "INPUT_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    MODEL_TAMPERED = "MODEL_TAMPERED"
    CARD_TAMPERED = "CARD_TAMPERED"
    CARD_INVALID = "CARD_INVALID"
    PLAN_INVALID = "PLAN_INVALID"
    MODEL_LIBRARY_MISMATCH = "MODEL_LIBRARY_MISMATCH"
    PLAN_UNAVAILABLE = "PLAN_UNAVAILABLE"
    PLAN_UNSUPPORTED = "PLAN_UNSUPPORTED"
    MODEL_FAILED = "MODEL_FAILED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    PROMOTION_CONFLICT = "PROMOTION_CONFLICT"
    CHANGED = "CHANGED"
    EVENTS_UNAVAILABLE = "EVENTS_UNAVAILABLE"
    INTERRUPTED = "INTERRUPTED"
    WORKER_FAILED = "WORKER_FAILED"
    WORKERS_UNAVAILABLE = "WORKERS_UNAVAILABLE"  # Dask worker tasks on Fargate (scorer.fargate)
    CLUSTER_UNAVAILABLE = "CLUSTER_UNAVAILABLE"  # a Dask cluster (scorer.cluster)
    NOT_AN_EVENT = "NOT_AN_EVENT"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    JOB_EXISTS = "JOB_EXISTS"
    JOB_CHANGED = "JOB_CHANGED"
    JOB_NOT_MIRRORED = "JOB_NOT_MIRRORED"
    TRAINING_DATA = "TRAINING_DATA"
    TRAINING_FAILED = "TRAINING_FAILED"
