"""dropscore scorer: batch scoring of CSV files with PyCaret models from a registry."""

__version__ = "0.1.0"

import os as _os

# PyCaret writes a 'logs.log' into the working directory on import unless told otherwise.
_os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", _os.devnull)
