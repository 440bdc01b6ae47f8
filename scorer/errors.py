"""Every error dropscore raises on purpose: one root, subclasses by what the user can do about it.

Each class carries a stable ``code`` (used in manifests, logs and exit decisions) and a message
that says what went wrong *and what to do*. Foreign exceptions (botocore, OSError, pandas) are
translated at the adapter boundary (see ``storage.map_storage_errors``), so callers only ever see
these.
"""

from __future__ import annotations


class DropscoreError(Exception):
    """Base class: something dropscore detected and can explain in one line."""

    code: str = "ERROR"
    #: 2 = the input was refused as a whole (terminal); 1 = anything else (retryable).
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


# --- input files -------------------------------------------------------------------------------
class FileRefused(DropscoreError):
    """The file cannot be scored at all (not UTF-8, not CSV, missing columns, empty, bomb …)."""

    code = "FILE_REFUSED"
    exit_code = 2


class ModelRequestInvalid(FileRefused):
    """The input's ``dropscore-model`` metadata is not a NAME@VERSION reference."""

    code = "MODEL_REQUEST_INVALID"


class ModelRequestNotFound(FileRefused):
    """The input's ``dropscore-model`` metadata names a version the registry does not hold."""

    code = "MODEL_REQUEST_NOT_FOUND"


class SourceGone(DropscoreError):
    """The input object (or that version of it) no longer exists."""

    code = "SOURCE_GONE"
    exit_code = 2


class DestinationInUse(DropscoreError):
    """The output folder already holds a run of another input or another model version."""

    code = "DESTINATION_IN_USE"
    exit_code = 2


class InputNotFound(DropscoreError):
    """A local file or training data path does not exist."""

    code = "INPUT_NOT_FOUND"


class BadArgument(DropscoreError):
    """A command-line value is malformed (model reference, URL, number …)."""

    code = "BAD_ARGUMENT"


# --- models and the registry -------------------------------------------------------------------
class ModelNotFound(DropscoreError):
    """The registry has no such model, version or alias."""

    code = "MODEL_NOT_FOUND"


class ModelIntegrityError(DropscoreError):
    """model.pkl does not match the sha256 in its card: it was changed after publishing."""

    code = "MODEL_TAMPERED"


class CardTampered(ModelIntegrityError):
    """card.json differs from the card recorded when its version was promoted."""

    code = "CARD_TAMPERED"


class ModelVersionMismatch(DropscoreError):
    """The model was pickled with library versions this process does not have."""

    code = "MODEL_LIBRARY_MISMATCH"


class ModelFailed(DropscoreError):
    """The model raised on most rows of a batch: the model is broken, not the rows."""

    code = "MODEL_FAILED"


class CardInvalid(DropscoreError):
    """card.json is missing fields or is not valid JSON."""

    code = "CARD_INVALID"


class PlanUnsupported(DropscoreError):
    """The pipeline holds something a scoring plan cannot reproduce exactly (score with it)."""

    code = "PLAN_UNSUPPORTED"

    @property
    def reason(self) -> str:
        return self.message


class PlanInvalid(DropscoreError):
    """plan.json is unreadable, inconsistent or of a format this scorer does not know."""

    code = "PLAN_INVALID"


class PlanUnavailable(DropscoreError):
    """A scoring plan was asked for but the model was published without one."""

    code = "PLAN_UNAVAILABLE"


class VersionExists(DropscoreError):
    """Something tried to overwrite an immutable object (a model version, a manifest)."""

    code = "ALREADY_EXISTS"


# --- storage -----------------------------------------------------------------------------------
class StorageUnavailable(DropscoreError):
    """The bucket or directory cannot be reached (endpoint down, credentials, permissions)."""

    code = "STORAGE_UNAVAILABLE"


class EventsUnavailable(DropscoreError):
    """A run event could not be put on the EventBridge bus; the committed run stands and the
    sweep sends it again."""

    code = "EVENTS_UNAVAILABLE"


class WorkersUnavailable(DropscoreError):
    """Dask worker tasks could not be started or did not reach RUNNING in time (capacity,
    quota, image pull, network); the run stops and the input stays pending."""

    code = "WORKERS_UNAVAILABLE"


class Interrupted(DropscoreError):
    """The run was stopped by a signal before it committed; the input stays pending."""

    code = "INTERRUPTED"
    exit_code = 1


class ObjectMissing(DropscoreError):
    """A storage object (or the asked-for version of it) does not exist."""

    code = "NOT_FOUND"


class ObjectChanged(DropscoreError):
    """A conditional write found the object changed since it was read (someone else wrote it)."""

    code = "CHANGED"


class PromotionConflict(ObjectChanged):
    """Someone else moved the alias while this promotion was being made; nothing was changed."""

    code = "PROMOTION_CONFLICT"
