"""dropscore training: sample data, train, publish, promote."""

import os as _os

# PyCaret writes a 'logs.log' into the working directory on import unless told otherwise.
_os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", _os.devnull)
