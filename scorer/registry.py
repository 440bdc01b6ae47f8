"""The model registry: ``<registry>/<name>/<version>/{model.pkl,card.json}`` and aliases.

Versions are immutable: every file is written create-only, model.pkl first (it claims the
version number, so two concurrent publishes never collide), then extras such as plan.json, and
card.json last (a version is visible only once its card exists). A model is unpickled only after
its sha256 matches the card, because unpickling runs code; a scoring plan is read only after its
sha256 matches ``card.plan``, and a plan's estimator.pkl only after its sha256 matches plan.json.
What is loaded becomes a ``scorer.model.LoadedModel``: the card and its engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from scorer import storage
from scorer.card import ModelCard
from scorer.errors import (
    BadArgument,
    CardTampered,
    ModelIntegrityError,
    ModelNotFound,
    ModelVersionMismatch,
    ObjectChanged,
    ObjectMissing,
    PlanInvalid,
    PlanUnavailable,
    PromotionConflict,
    VersionExists,
)
from scorer.layout import ALIASES
from scorer.model import Engine, LoadedModel, PipelineEngine, PlanEngine
from scorer.promotion import Promotion
from scorer.refs import DEFAULT_ALIAS, ModelRef, check_name

# engines by (registry, version and sha256): a model is verified and unpickled once per process
# while it is among the last ENGINES_KEPT loaded. watch and the UI live for weeks and load each
# version promoted meanwhile; a LoadedModel still in use keeps its own engine alive.
ENGINES_KEPT = 4
_cache: OrderedDict[tuple[str, str], Engine] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(key: tuple[str, str]) -> Engine | None:
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return found


def _keep(key: tuple[str, str], built: Engine) -> Engine:
    """The engine cached under ``key``: of two threads loading at once, the first engine stays
    (one lock per pipeline); the least recently used beyond ENGINES_KEPT are dropped."""
    with _cache_lock:
        built = _cache.setdefault(key, built)
        _cache.move_to_end(key)
        while len(_cache) > ENGINES_KEPT:
            _cache.popitem(last=False)
        return built


ENGINES = ("pipeline", "plan", "auto")  # what Registry.load(engine=…) accepts
PLAN_FILE = "plan.json"
_RESERVED = frozenset({"model.pkl", "card.json"})
ANY_VERSION = object()  # promote(expected_from=…): whatever the alias points at now


class Registry:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") or url

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

    def _path(self, *parts: str) -> str:
        return storage.join(self.url, *parts)

    # --- reading --------------------------------------------------------------------------------
    def models(self) -> list[str]:
        names = set()
        for obj in storage.list_objects(self.url + "/"):
            parts = _relative_parts(obj.url, self.url)
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == "card.json":
                names.add(parts[0])
        return sorted(names)

    def versions(self, name: str, *, published_only: bool = True) -> list[int]:
        """Version numbers of ``name``; with ``published_only`` only those with a card."""
        check_name(name)
        found = set()
        for obj in storage.list_objects(self._path(name) + "/"):
            rel = _relative_parts(obj.url, self._path(name))
            if len(rel) == 2 and rel[0].isdigit() and (rel[1] == "card.json" or not published_only):
                found.add(int(rel[0]))
        return sorted(found)

    def card(self, name: str, version: int) -> ModelCard:
        url = self._path(name, str(version), "card.json")
        try:
            data = storage.read_bytes(url)
        except ObjectMissing as exc:
            known = self.versions(name)
            if not known:
                models = ", ".join(self.models()) or "none yet"
                raise ModelNotFound(
                    f"no model '{name}' in {self.url} (models there: {models}); "
                    "train one with 'python -m training train'"
                ) from exc
            raise ModelNotFound(
                f"model '{name}' has no version {version} in {self.url} "
                f"(known versions: {', '.join(map(str, known))})"
            ) from exc
        return ModelCard.from_json(data)

    def aliases(self, name: str) -> dict[str, int]:
        out = {}
        for obj in storage.list_objects(self._path(name, ALIASES) + "/"):
            alias = obj.url.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                out[alias] = int(json.loads(storage.read_bytes(obj.url))["version"])
            except (ValueError, KeyError, TypeError, ObjectMissing):
                continue
        return out

    def resolve(self, ref: ModelRef | str) -> ModelCard:
        """The card a reference points at; raises ModelNotFound with what does exist."""
        if isinstance(ref, str):
            ref = ModelRef.parse(ref)
        if ref.version is not None:
            card = self.card(ref.name, ref.version)
            # every alias that vouches for this version vouches for its card too
            for alias, record in self._alias_records(ref.name).items():
                if _version_of(record) == ref.version:
                    _check_card(card, record, alias)
            return card
        alias = ref.alias or DEFAULT_ALIAS
        try:
            raw = json.loads(storage.read_bytes(self._path(ref.name, ALIASES, f"{alias}.json")))
            version = int(raw["version"])
        except ObjectMissing as exc:
            if not self.versions(ref.name):
                models = self.models()
                known = ", ".join(models) if models else "none yet"
                raise ModelNotFound(
                    f"no model '{ref.name}' in {self.url} (models there: {known}); "
                    "train one with 'python -m training train'"
                ) from exc
            raise ModelNotFound(
                f"model '{ref.name}' has no alias '{alias}'; promote a version with "
                f"'python -m training promote {ref.name} VERSION --alias {alias}'"
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelNotFound(f"alias '{ref}' is unreadable; promote a version again") from exc
        card = self.card(ref.name, version)
        _check_card(card, raw, alias)
        return card

    def _alias_records(self, name: str) -> dict[str, Any]:
        """Each alias's record as written by ``promote`` (unreadable ones left out)."""
        out = {}
        for obj in storage.list_objects(self._path(name, ALIASES) + "/"):
            try:
                out[obj.url.rsplit("/", 1)[-1].removesuffix(".json")] = json.loads(
                    storage.read_bytes(obj.url)
                )
            except (ValueError, ObjectMissing):
                continue
        return out

    def load(self, card: ModelCard, engine: str = "pipeline") -> LoadedModel:
        """Verify model.pkl against the card, then unpickle it (cached per process).

        ``engine="plan"`` loads the card's scoring plan instead (model.pkl's sha256 is still
        checked, but it is not unpickled and PyCaret is not imported);
        ``"auto"`` takes the plan when the card has one, else the pipeline.
        """
        if engine not in ENGINES:
            raise BadArgument(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if engine == "plan" or (engine == "auto" and card.plan is not None):
            return self._load_plan(card)
        key = (self.url, f"{card.name}@{card.version}#{card.model_sha256}")
        cached = _cached(key)
        if cached is not None:
            return LoadedModel(card, cached)
        built: Engine = PipelineEngine(unpickle(self._verified_pickle(card), card))
        return LoadedModel(card, _keep(key, built))

    def _verified_pickle(self, card: ModelCard) -> bytes:
        """model.pkl's bytes, checked against the card (never unpickled here)."""
        return self._verified_file(card, "model.pkl", card.model_sha256, "the card")

    def _verified_file(self, card: ModelCard, file: str, sha256: str, listed_in: str) -> bytes:
        """A file of the version, checked against the sha256 ``listed_in`` records."""
        url = self._path(card.name, str(card.version), file)
        try:
            blob = storage.read_bytes(url)
        except ObjectMissing as exc:
            raise ModelNotFound(
                f"{card.ref}: {listed_in} lists {file} but {url} is missing; republish the model"
            ) from exc
        digest = hashlib.sha256(blob).hexdigest()
        if digest != sha256:
            raise ModelIntegrityError(
                f"{card.ref}: {file} sha256 {digest[:12]}… does not match {listed_in}'s "
                f"{sha256[:12]}…; the file was changed after publishing. Not loaded."
            )
        return blob

    def _load_plan(self, card: ModelCard) -> LoadedModel:
        """Verify plan.json against ``card.plan`` and read it, and an estimator head's pickle
        against plan.json (cached per process)."""
        from scorer.evaluator import Evaluator
        from scorer.plan import EstimatorHead, Plan

        info = card.plan
        if info is None:
            why = card.notes.plan
            raise PlanUnavailable(
                f"{card.ref} was published without a scoring plan"
                + (f" ({why})" if why else "")
                + "; score it with the pipeline engine"
            )
        expected = info.sha256
        key = (self.url, f"{card.name}@{card.version}#plan#{expected}")
        cached = _cached(key)
        if cached is not None:
            return LoadedModel(card, cached)
        # a published version is checked whole: a changed or missing model.pkl means the
        # version is not what was published, even though the plan does not need the pickle
        self._verified_pickle(card)
        blob = self._verified_file(card, PLAN_FILE, expected, "the card")
        plan = Plan.from_json(blob)
        if plan.input_names != card.feature_names or plan.classes != card.classes:
            raise PlanInvalid(
                f"{card.ref}: {PLAN_FILE} was compiled for other columns or classes than the "
                "card lists; republish the model"
            )
        estimator = None
        if isinstance(plan.head, EstimatorHead):
            # plan.json (checked above) vouches for the estimator's pickle, as the card for it
            file, sha = plan.head.file, plan.head.sha256
            estimator = unpickle(self._verified_file(card, file, sha, PLAN_FILE), card)
        built: Engine = PlanEngine(Evaluator(plan, estimator))
        return LoadedModel(card, _keep(key, built))

    # --- writing --------------------------------------------------------------------------------
    def publish(
        self,
        name: str,
        model_bytes: bytes,
        make_card: Callable[[int, str], ModelCard],
        *,
        alias: str | None = None,
        extras: dict[str, bytes] | None = None,
        by: str = "",
    ) -> ModelCard:
        """Publish a new immutable version; ``make_card(version, model_sha256)`` builds its card.
        ``extras`` (file name → bytes, e.g. plan.json) are written beside model.pkl before the
        card, create-only, and removed again with model.pkl if the card cannot be written."""
        check_name(name)
        extras = dict(extras or {})
        for extra in extras:
            _check_extra_name(extra)
        sha = hashlib.sha256(model_bytes).hexdigest()
        existing = self.versions(name, published_only=False)
        version = (max(existing) if existing else 0) + 1
        for _ in range(100):
            try:
                storage.write_bytes(
                    self._path(name, str(version), "model.pkl"), model_bytes, create_only=True
                )
                break
            except VersionExists:
                version += 1
        else:  # pragma: no cover - 100 concurrent publishers
            raise VersionExists(f"could not claim a new version of '{name}'; try again")
        written: list[str] = []
        try:
            for extra, data in extras.items():
                storage.write_bytes(self._path(name, str(version), extra), data, create_only=True)
                written.append(extra)
            card = make_card(version, sha)
            storage.write_bytes(
                self._path(name, str(version), "card.json"),
                card.to_json().encode(),
                create_only=True,
            )
        except BaseException:
            for extra in written:
                storage.delete(self._path(name, str(version), extra))
            storage.delete(self._path(name, str(version), "model.pkl"))
            raise
        if alias:
            self.promote(name, version, alias, note=f"published with alias {alias}", by=by)
        return card

    def promote(
        self,
        name: str,
        version: int,
        alias: str = DEFAULT_ALIAS,
        *,
        note: str = "",
        by: str = "",
        warnings: tuple[str, ...] = (),
        expected_from: int | object | None = ANY_VERSION,
    ) -> ModelCard:
        """Point ``alias`` at ``version`` and append a record to the history.

        The alias is replaced only if it is still what was read (S3 ``If-Match``), so of two
        concurrent promotions one wins and the other gets PromotionConflict. ``expected_from``
        (a version, or None for "no alias yet") also refuses when the alias moved since the
        caller looked at it, e.g. since the Models page compared against it."""
        check_name(alias, "alias")
        card = self.card(name, version)  # refuses unknown versions
        url = self._path(name, ALIASES, f"{alias}.json")
        try:
            raw, etag = storage.read_with_etag(url)
            before: int | None = _version_of(_loads(raw))
            seen: str | None = etag
        except ObjectMissing:
            before, seen = None, None
        if expected_from is not ANY_VERSION and before != expected_from:
            was = f"v{expected_from}" if expected_from is not None else "unset"
            now = f"v{before}" if before is not None else "unset"
            raise PromotionConflict(
                f"'{alias}' of {name} is {now} now, not {was} as when you compared; someone "
                "else promoted meanwhile. Look at the comparison again, then promote."
            )
        at = dt.datetime.now(dt.UTC).isoformat()
        # the card as promoted: a card.json edited later is refused (CardTampered) until the
        # version is promoted again, which is how an operator accepts a new card
        body = {
            "version": version,
            "promoted_at": at,
            "promoted_by": by,
            "card_sha256": card.json_sha256,
            "model_sha256": card.model_sha256,
        }
        try:
            storage.replace_if(url, (json.dumps(body) + "\n").encode(), seen)
        except ObjectChanged as exc:
            raise PromotionConflict(
                f"'{alias}' of {name} was moved by someone else while v{version} was being "
                "promoted; nothing was changed. Look at the Models page again, then promote."
            ) from exc
        record = Promotion(
            model=name,
            alias=alias,
            from_version=before,
            to_version=version,
            by=by or "unknown",
            at=at,
            note=note,
            warnings=tuple(warnings),
            card_sha256=card.json_sha256,
            model_sha256=card.model_sha256,
        )
        self._append_history(record)
        return card

    def _append_history(self, record: Promotion) -> None:
        """Create-only: a record is never rewritten; a name already taken gets a suffix."""
        stem = record.file_name.removesuffix(".json")
        for attempt in range(10):
            file = f"{stem}.json" if attempt == 0 else f"{stem}-{attempt}.json"
            try:
                storage.write_bytes(
                    self._path(record.model, "history", file),
                    record.to_json().encode(),
                    create_only=True,
                )
                return
            except VersionExists:
                continue
        raise VersionExists(f"could not name a history record for {record.model}; try again")

    def history(self, name: str) -> list[Promotion]:
        """Every promotion of ``name``, newest first (unreadable records left out)."""
        check_name(name)
        out = []
        for obj in storage.list_objects(self._path(name, "history") + "/"):
            try:
                out.append(Promotion.from_json(storage.read_bytes(obj.url)))
            except (ValueError, KeyError, TypeError, ObjectMissing):
                continue
        return sorted(out, key=lambda p: p.at, reverse=True)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _version_of(record: Any) -> int | None:
    try:
        return int(record["version"])
    except (ValueError, KeyError, TypeError):
        return None


def _check_card(card: ModelCard, record: Any, alias: str) -> None:
    """The card must be the one the alias record was promoted with. A record written before
    promotions recorded cards (no ``card_sha256``) vouches for nothing; the manifest's
    ``card_sha256`` still shows which card validated each run."""
    promoted = record.get("card_sha256") if isinstance(record, dict) else None
    if promoted and promoted != card.json_sha256:
        raise CardTampered(
            f"{card.ref}: card.json changed after it was promoted as '{alias}' (sha256 "
            f"{card.json_sha256[:12]}… is not the promoted {str(promoted)[:12]}…); the card "
            "decides which rows are valid, so nothing is scored with it. Restore the card, or "
            f"promote {card.ref} again to accept the new one."
        )


def _check_extra_name(name: str) -> None:
    """An extra is a plain file name in the version folder, neither model.pkl nor card.json."""
    if name in _RESERVED or not name or name[0] == "." or "/" in name or "\\" in name:
        raise BadArgument(f"'{name}' cannot be published as an extra model file")


def _relative_parts(url: str, base: str) -> list[str]:
    """Path segments of ``url`` below ``base``; local listings come back normalised, so a base
    like './models' cannot be cut off by its length."""
    if "://" in base:
        return url[len(base) :].lstrip("/").split("/")
    return list(PurePath(os.path.relpath(url, base)).parts)


def unpickle(blob: bytes, card: ModelCard) -> Any:
    """Unpickle a verified model; a scikit-learn version mismatch is an error, not a warning."""
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(blob))
        except InconsistentVersionWarning as exc:
            raise ModelVersionMismatch(
                f"{card.ref} was saved with scikit-learn {exc.original_sklearn_version} but this "
                f"process has {exc.current_sklearn_version}; install the versions in the card "
                f"({card.libraries}) or retrain the model"
            ) from exc
        except (ModuleNotFoundError, AttributeError, ImportError) as exc:
            raise ModelVersionMismatch(
                f"{card.ref} cannot be loaded with this process's libraries ({exc}); "
                f"it was saved with {card.libraries}"
            ) from exc
