"""Every error dropscore raises on purpose: one root, subclasses by what the user can do about it.

Each class carries a stable ``code`` (used in manifests, logs and exit decisions) and a message
that says what went wrong *and what to do*. Foreign exceptions (botocore, OSError, pandas) are
translated at the adapter boundary (see ``storage.map_storage_errors``), so callers only ever see
these. Codes are members of ``scorer.codes.Code`` (a StrEnum: each is its own string).
"""

from __future__ import annotations

from typing import Any

from scorer.codes import Code


class DropscoreError(Exception):
    """Base class: something dropscore detected and can explain in one line."""

    code: str = Code.ERROR
    #: 2 = the input was refused as a whole (terminal); 1 = anything else (retryable).
    exit_code: int = 1

    def __init_subclass__(cls, **kw: Any) -> None:
        """Every class's code is a Code member, checked when the class is defined (here or in
        any module), so an unlisted code fails at import instead of reaching a manifest."""
        super().__init_subclass__(**kw)
        try:
            cls.code = Code(cls.code)
        except ValueError as exc:
            raise TypeError(
                f"{cls.__name__}.code {cls.code!r} is not in scorer.codes.Code: add it there "
                "and to the README's table of its kind"
            ) from exc

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = Code(code)  # ValueError for a code that is not a member: a bug

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


# --- input files -------------------------------------------------------------------------------
class FileRefused(DropscoreError):
    """The file cannot be scored at all (not UTF-8, not CSV, missing columns, empty, bomb …)."""

    code: str = Code.FILE_REFUSED  # str: subclasses elsewhere may spell theirs as text
    exit_code = 2


class ModelRequestInvalid(FileRefused):
    """The input's ``dropscore-model`` metadata is not a NAME@VERSION reference."""

    code = Code.MODEL_REQUEST_INVALID


class ModelRequestNotFound(FileRefused):
    """The input's ``dropscore-model`` metadata names a version the registry does not hold."""

    code = Code.MODEL_REQUEST_NOT_FOUND


class SourceGone(DropscoreError):
    """The input object (or that version of it) no longer exists."""

    code = Code.SOURCE_GONE
    exit_code = 2


class DestinationInUse(DropscoreError):
    """The output folder already holds a run of another input or another model version."""

    code = Code.DESTINATION_IN_USE
    exit_code = 2


class InputNotFound(DropscoreError):
    """A local file or training data path does not exist."""

    code = Code.INPUT_NOT_FOUND


class BadArgument(DropscoreError):
    """A command-line value is malformed (model reference, URL, number …): nothing ran."""

    code: str = Code.BAD_ARGUMENT  # str: subclasses elsewhere may spell theirs as text
    exit_code = 2  # the command itself is wrong: retrying it would fail the same way


# --- models and the registry -------------------------------------------------------------------
class ModelNotFound(DropscoreError):
    """The registry has no such model, version or alias."""

    code = Code.MODEL_NOT_FOUND


class ModelIntegrityError(DropscoreError):
    """model.pkl does not match the sha256 in its card: it was changed after publishing."""

    code = Code.MODEL_TAMPERED


class CardTampered(ModelIntegrityError):
    """card.json differs from the card recorded when its version was promoted."""

    code = Code.CARD_TAMPERED


class ModelVersionMismatch(DropscoreError):
    """The model was pickled with library versions this process does not have."""

    code = Code.MODEL_LIBRARY_MISMATCH


class ModelFailed(DropscoreError):
    """The model raised on most rows of a batch: the model is broken, not the rows."""

    code = Code.MODEL_FAILED


class CardInvalid(DropscoreError):
    """card.json is missing fields or is not valid JSON."""

    code = Code.CARD_INVALID


class PlanUnsupported(DropscoreError):
    """The pipeline holds something a scoring plan cannot reproduce exactly (score with it)."""

    code = Code.PLAN_UNSUPPORTED

    @property
    def reason(self) -> str:
        return self.message


class PlanInvalid(DropscoreError):
    """plan.json is unreadable, inconsistent or of a format this scorer does not know."""

    code = Code.PLAN_INVALID


class PlanUnavailable(DropscoreError):
    """A scoring plan was asked for but the model was published without one."""

    code = Code.PLAN_UNAVAILABLE


class VersionExists(DropscoreError):
    """Something tried to overwrite an immutable object (a model version, a manifest)."""

    code = Code.ALREADY_EXISTS


# --- storage -----------------------------------------------------------------------------------
class StorageUnavailable(DropscoreError):
    """The bucket or directory cannot be reached (endpoint down, credentials, permissions)."""

    code = Code.STORAGE_UNAVAILABLE


class EventsUnavailable(DropscoreError):
    """A run event could not be put on the EventBridge bus; the committed run stands and the
    sweep sends it again."""

    code = Code.EVENTS_UNAVAILABLE


class WorkersUnavailable(DropscoreError):
    """Dask worker tasks could not be started or did not reach RUNNING in time (capacity,
    quota, image pull, network); the run stops and the input stays pending."""

    code = Code.WORKERS_UNAVAILABLE


class Interrupted(DropscoreError):
    """The run was stopped by a signal before it committed; the input stays pending."""

    code = Code.INTERRUPTED
    exit_code = 1


class ObjectMissing(DropscoreError):
    """A storage object (or the asked-for version of it) does not exist."""

    code = Code.NOT_FOUND


class ObjectChanged(DropscoreError):
    """A conditional write found the object changed since it was read (someone else wrote it)."""

    code = Code.CHANGED


class PromotionConflict(ObjectChanged):
    """Someone else moved the alias while this promotion was being made; nothing was changed."""

    code = Code.PROMOTION_CONFLICT


# --- scheduled jobs ----------------------------------------------------------------------------
class JobNotFound(DropscoreError):
    """No job of that name in the bucket (removed, or never added)."""

    code = Code.JOB_NOT_FOUND
    exit_code = 2


class JobExists(DropscoreError):
    """``jobs add`` of a name that is taken, without --replace."""

    code = Code.JOB_EXISTS
    exit_code = 2


class JobChanged(DropscoreError):
    """The job was changed or removed by someone else between reading and writing it."""

    code = Code.JOB_CHANGED


class JobNotMirrored(DropscoreError):
    """EventBridge Scheduler refused the job's schedule; the job was rolled back."""

    code = Code.JOB_NOT_MIRRORED
