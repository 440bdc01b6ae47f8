"""The bucket layout and run identity, in one place (pure).

Where inputs, results and models live (``incoming/``, ``scored/<folder>/<run id>/``,
``models/<name>/aliases/``), what one version of one object is (``ObjectVersion``: listings,
events and HEADs all become one), and which run a model version makes of it (``RunId``).
Everything else asks this module rather than spelling a prefix or parsing a key itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scorer.errors import BadArgument
from scorer.refs import check_name

INCOMING = "incoming/"
SCORED = "scored/"
MODELS = "models"  # the registry's default folder in a bucket: s3://<bucket>/models
ALIASES = "aliases"  # models/<name>/aliases/<alias>.json
MANIFEST = "manifest.json"
PREDICTIONS = "predictions.csv"
REJECTED = "rejected.csv"
OUTPUT_FILES = (PREDICTIONS, REJECTED)
SUFFIXES = (".csv.gz", ".csv")  # matched case-insensitively: "a.CSV" is an input too

#: What a key under incoming/ is (``classify``): scored, refused by its name, or not a file.
INPUT, UNSUPPORTED, IGNORED = "input", "unsupported", "ignored"

#: S3 refuses keys longer than this many UTF-8 bytes (moto does not enforce it).
S3_KEY_LIMIT = 1024
#: Results of inputs whose readable folder S3 or the UI could not hold live here, by hash.
HASHED = "_hashed/"
#: Results of a job's sources outside incoming/ (another prefix or bucket): _sources/<bucket>/…
SOURCES = "_sources/"
#: Results of one occurrence of an ``all`` job: _jobs/<job>/<occurrence>/<folder of the input>
JOBS = "_jobs/"
_RESERVED = (HASHED, SOURCES, JOBS)
# RunId: a name of at most 64 characters, "-v", at most 9 digits, "-", 16 hex digits
_LONGEST_RUN_ID = 64 + 2 + 9 + 1 + 16
_LONGEST_OUTPUT_NAME = max(len(n) for n in OUTPUT_FILES)
#: One segment of a readable result folder: no separators, no '..', no control characters
#: (the UI's run links use the same rule, see ``check_run_path``).
SEGMENT = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,255}$")
RUN_ID_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})-v([0-9]+)-([0-9a-f]{16})$")


# --- one version of one object ------------------------------------------------------------------
def version_id(value: Any) -> str | None:
    """S3 says "null" (or nothing) for an object of an unversioned bucket: None here."""
    text = str(value or "").strip()
    return None if text in ("", "null") else text


def etag(value: Any) -> str:
    """S3 quotes ETags in headers and listings; they are compared unquoted."""
    return str(value or "").strip().strip('"')


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of one object, however it was learnt (event, listing, HEAD). ``key`` is
    always decoded (S3 events URL-encode it); an empty ``bucket`` means a local file whose
    path is ``key``."""

    bucket: str
    key: str
    version_id: str | None = None  # None for unversioned buckets ("null" is normalised away)
    etag: str = ""
    size: int | None = field(default=None, compare=False)  # bytes, when the source said
    #: the key exactly as an event carried it, when that differs from ``key``: checked before
    #: the object is called gone, in case a bridge delivered it unencoded
    key_as_given: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        bucket: Any,
        key: Any,
        version: Any = None,
        tag: Any = "",
        size: Any = None,
        key_as_given: str | None = None,
    ) -> ObjectVersion:
        """From raw values as S3 gives them: the one place "null" and ETag quotes go away."""
        return cls(
            bucket=str(bucket),
            key=str(key),
            version_id=version_id(version),
            etag=etag(tag),
            size=None if size is None else int(size),
            key_as_given=key_as_given,
        )

    @classmethod
    def listed(cls, bucket: str, entry: dict[str, Any]) -> ObjectVersion:
        """An entry of ListObjectVersions / ListObjectsV2 (``Key``, ``VersionId``, ``ETag``…)."""
        return cls.of(
            bucket, entry["Key"], entry.get("VersionId"), entry.get("ETag"), entry.get("Size")
        )

    @classmethod
    def at(cls, url: str, version: Any = None, tag: Any = "") -> ObjectVersion:
        """``s3://bucket/key`` or a local path."""
        if url.startswith("s3://"):
            bucket, _, key = url[len("s3://") :].partition("/")
            return cls.of(bucket, key, version, tag)
        return cls.of("", url, version, tag)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.bucket else self.key

    @property
    def identity(self) -> str:
        """What makes this version unique: its version id, else its ETag (for a local file:
        its content sha256, which the caller puts in ``etag``)."""
        return f"v:{self.version_id}" if self.version_id else f"e:{self.etag}"

    def __str__(self) -> str:
        return self.url + (f"?versionId={self.version_id}" if self.version_id else "")


# --- run identity -------------------------------------------------------------------------------
def identity_digest(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True, order=True)
class RunId:
    """A run: one input version scored by one model version. ``str()`` is the folder name;
    the same input version and model always give the same id, which makes duplicates
    harmless."""

    model: str
    version: int
    digest: str  # 16 hex digits of the input version's identity

    @classmethod
    def of(cls, model: str, version: int, obj: ObjectVersion | str) -> RunId:
        """``obj``: the input version, or its identity (``ObjectVersion.identity``)."""
        check_name(model)  # the id becomes an S3 prefix / directory: never '/' or '..'
        if version < 1:
            raise BadArgument(f"model version {version} is not a version; versions start at 1")
        identity = obj.identity if isinstance(obj, ObjectVersion) else obj
        return cls(model, version, identity_digest(identity))

    @classmethod
    def parse(cls, text: str) -> RunId | None:
        """The run a folder name names, None when it is not one ``of`` could make."""
        found = RUN_ID_RE.fullmatch(text)
        if found is None:
            return None
        return cls(found[1], int(found[2]), found[3])

    def same_input(self, other: RunId) -> bool:
        """Whether both runs scored the same input version (by any model)."""
        return self.digest == other.digest

    def __str__(self) -> str:
        return f"{self.model}-v{self.version}-{self.digest}"


def is_run_id(text: str) -> bool:
    return RunId.parse(text) is not None


# --- where a deployment keeps inputs and results -----------------------------------------------
#: The variables that move incoming/ and scored/: the scorer's commands and the UI read the
#: same two, so the UI lists the runs where the scorer writes them.
INCOMING_ENV = "DROPSCORE_INCOMING"
SCORED_ENV = "DROPSCORE_SCORED"


@dataclass(frozen=True, slots=True)
class Prefixes:
    """Where inputs are dropped and where their results are written, in one bucket."""

    incoming: str = INCOMING
    scored: str = SCORED

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Prefixes:
        """The defaults unless ``DROPSCORE_INCOMING`` / ``DROPSCORE_SCORED`` say otherwise; a
        prefix that could not hold runs apart from inputs is refused, never guessed at."""
        found = cls(_prefix(env, INCOMING_ENV, INCOMING), _prefix(env, SCORED_ENV, SCORED))
        if found.incoming.startswith(found.scored) or found.scored.startswith(found.incoming):
            raise BadArgument(
                f"{INCOMING_ENV} '{found.incoming}' and {SCORED_ENV} '{found.scored}' overlap; "
                "results under the inputs' prefix would be scored again (or inputs read as "
                "runs): give them separate prefixes"
            )
        return found


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = raw.removesuffix("/").split("/")
    if not raw.endswith("/") or not all(SEGMENT.match(p) for p in parts):
        raise BadArgument(
            f"{name} is '{raw}'; use a folder of the bucket ending in '/', such as '{default}' "
            "(no leading '/', no empty or '..' parts)"
        )
    return raw


# --- inputs and their result folders ------------------------------------------------------------
def classify(key: str, incoming: str = INCOMING) -> str:
    """INPUT (``.csv``/``.csv.gz`` in any case: scored), UNSUPPORTED (any other name under
    incoming/: refused with a terminal manifest) or IGNORED (outside incoming/, or a folder
    marker: a key ending in '/')."""
    if not key.startswith(incoming) or key.endswith("/") or len(key) == len(incoming):
        return IGNORED
    return INPUT if key.lower().endswith(SUFFIXES) else UNSUPPORTED


def is_input_key(key: str, incoming: str = INCOMING) -> bool:
    return classify(key, incoming) == INPUT


def relative_name(key: str, incoming: str = INCOMING) -> str:
    """``incoming/a/b.csv.gz`` → ``a/b``: an input's name under ``scored/``."""
    rel = key[len(incoming) :] if key.startswith(incoming) else key
    for suffix in SUFFIXES:
        if rel.lower().endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def result_folder(
    key: str,
    incoming: str = INCOMING,
    scored: str = SCORED,
    *,
    bucket: str | None = None,
    home: str | None = None,
    occurrence: str | None = None,
) -> str:
    """The folder under ``scored/`` that holds every run of ``key``: its relative name when
    that is a readable path whose outputs fit S3's key limit, else ``_hashed/<sha256>`` of the
    key (the manifest inside names the full key). The one place that decides it.

    A job's source outside ``incoming/`` of the ``home`` bucket (another prefix, or ``bucket``
    elsewhere) lives under ``_sources/<bucket>/<key>``; ``occurrence`` (``<job>/<id>``, from an
    ``all`` job) puts the folder under ``_jobs/<job>/<id>/`` so each occurrence scores anew."""
    base = f"{JOBS}{occurrence}/" if occurrence else ""
    own = bucket is None or (bucket == home and key.startswith(incoming))
    if own:
        rel = relative_name(key, incoming)
        whole = key[len(incoming) :] if key.startswith(incoming) else key
    else:
        rel = SOURCES + f"{bucket}/" + relative_name(key, "")
        whole = f"s3://{bucket}/{key}"  # never the hash of an input under incoming/
    segments = rel.split("/")
    longest = f"{scored}{base}{rel}/{'r' * _LONGEST_RUN_ID}/{'o' * _LONGEST_OUTPUT_NAME}"
    readable = (
        all(SEGMENT.fullmatch(s) and s.strip() == s for s in segments)
        # those names are reserved for hashed, job-source and job-occurrence folders
        and (not own or f"{segments[0]}/" not in _RESERVED)
        and len(longest.encode()) <= S3_KEY_LIMIT
    )
    if readable:
        return base + rel
    return base + HASHED + hashlib.sha256(whole.encode()).hexdigest()


def job_occurrence(folder: str) -> tuple[str, str, str] | None:
    """``_jobs/<job>/<id>/<rest>`` → (job, occurrence id, rest); None for any other folder."""
    if not folder.startswith(JOBS):
        return None
    parts = folder[len(JOBS) :].split("/", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def output_prefix(
    bucket: str, key: str, run_id: RunId | str, incoming: str = INCOMING, scored: str = SCORED
) -> str:
    """``s3://<bucket>/scored/<result folder>/<run id>``: where a run of ``key`` writes."""
    return f"s3://{bucket}/{scored}{result_folder(key, incoming, scored)}/{run_id}"


def run_key(key: str, run_id: RunId | str, incoming: str = INCOMING, scored: str = SCORED) -> str:
    """``<result folder>/<run id>``: how the UI names (and links to) a run."""
    return f"{result_folder(key, incoming, scored)}/{run_id}"


# --- runs found under scored/ --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunPath:
    """Where one run lives: ``scored/<rel>/<run_id>/`` in ``bucket``."""

    bucket: str
    rel: str  # the input's result folder, e.g. "2024/claims"
    run_id: str

    @property
    def key(self) -> str:
        """``<rel>/<run_id>``: how a run is named in links."""
        return f"{self.rel}/{self.run_id}"

    def url(self, scored: str = SCORED, name: str = "") -> str:
        base = f"s3://{self.bucket}/{scored}{self.rel}/{self.run_id}"
        return f"{base}/{name}" if name else base

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class RunFile:
    """A key under ``scored/`` that sits in a run folder: ``<rel>/<run id>/<name>``."""

    rel: str
    run_id: str
    name: str

    @property
    def folder(self) -> str:
        """``<rel>/<run id>``."""
        return f"{self.rel}/{self.run_id}"


def run_file(key: str, scored: str = SCORED) -> RunFile | None:
    """A bucket key under ``scored/`` read as ``<rel>/<run id>/<name>``; None when it is not
    inside a run folder (a stray object). The one place a run folder is parsed from a key."""
    if not key.startswith(scored):
        return None
    rest, _, name = key[len(scored) :].rpartition("/")
    rel, _, run = rest.rpartition("/")
    if not rel or not is_run_id(run):
        return None
    return RunFile(rel, run, name)


def check_run_path(bucket: str, key: str) -> RunPath:
    """Parse ``<rel>/<run_id>`` from a link; refuses anything that could leave ``scored/``."""
    rel, sep, run = key.strip().rpartition("/")
    if not sep or not is_run_id(run):
        raise BadArgument(f"'{_clip(key)}' is not a run; a run is named <input path>/<run id>")
    segments = rel.split("/")
    if not all(SEGMENT.fullmatch(s) for s in segments) or any(s.strip() != s for s in segments):
        raise BadArgument(f"'{_clip(key)}' is not a valid input path")
    return RunPath(bucket, rel, run)


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
