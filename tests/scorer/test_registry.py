"""The model registry: immutable numbered versions, aliases, and loading only what the card vouches
for. Local directories and S3 (a real moto server over HTTP) behave the same."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pathlib
import pickle
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from scorer import storage
from scorer.card import (
    DataDialect,
    Feature,
    ModelCard,
    Notes,
    PlanCheck,
    PlanEntry,
    PlanEstimator,
    PredictionBaseline,
    TrainingData,
)
from scorer.errors import (
    BadArgument,
    CardInvalid,
    ModelIntegrityError,
    ModelNotFound,
    ModelVersionMismatch,
    PlanInvalid,
    PlanUnavailable,
    VersionExists,
)
from scorer.registry import Registry
from training.sample_data import generate

CardFactory = Callable[[int, str], ModelCard]


def card_factory(name: str, *, sha_override: str | None = None) -> CardFactory:
    """A minimal valid card; ``sha_override`` makes the card vouch for other bytes."""

    def make(version: int, sha: str) -> ModelCard:
        return ModelCard(
            name=name,
            version=version,
            task="regression",
            target="y",
            created_at="2026-01-01T00:00:00+00:00",
            features=(Feature(name="x", kind="number", min=0.0, max=1.0),),
            metrics={"r2": 0.5},
            estimator="Dummy",
            training_data=TrainingData(sha256="0" * 64, rows=100),
            prediction_baseline=PredictionBaseline(bins=(0.0, 1.0), shares=(1.0,)),
            model_sha256=sha_override or sha,
            libraries={"python": "3.11"},
        )

    return make


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) → sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class _TouchOnLoad:
    """Unpickling this creates ``path``: a harmless stand-in for code a pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def stale_sklearn_pickle() -> bytes:
    """A fitted StandardScaler whose pickle says it was saved by scikit-learn 0.0.1."""
    import sklearn
    from sklearn.preprocessing import StandardScaler

    blob = pickle.dumps(StandardScaler().fit(np.array([[1.0], [2.0], [4.0]])))
    current = sklearn.__version__.encode()
    assert blob.count(current) == 1
    assert len(current) == len(b"0.0.1")
    return blob.replace(current, b"0.0.1")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(str(tmp_path / "models"))


@pytest.fixture
def trained_copy(trained_registry: str, tmp_path: Path) -> Registry:
    """A private copy of the session's trained registry (claims@1, income@1, both production)."""
    dest = tmp_path / "models"
    shutil.copytree(trained_registry, dest)
    return Registry(str(dest))


# --- publishing ---------------------------------------------------------------------------------
def test_versions_are_numbered_1_2_3_and_each_keeps_its_own_files(registry: Registry) -> None:
    cards = [registry.publish("m", f"model {i}".encode(), card_factory("m")) for i in range(3)]
    assert [c.version for c in cards] == [1, 2, 3]
    assert registry.versions("m") == [1, 2, 3]
    assert registry.models() == ["m"]
    root = Path(registry.url)
    for i, card in enumerate(cards):
        assert (root / "m" / str(card.version) / "model.pkl").read_bytes() == f"model {i}".encode()
        on_disk = ModelCard.from_json((root / "m" / str(card.version) / "card.json").read_bytes())
        assert on_disk == card
        assert card.model_sha256 == hashlib.sha256(f"model {i}".encode()).hexdigest()
    assert sorted(snapshot(root)) == [
        f"m/{v}/{f}" for v in (1, 2, 3) for f in ("card.json", "model.pkl")
    ]


@pytest.mark.parametrize(
    "url", ["./models", "models/", "sub/../models", "."], ids=["./models", "models/", "a/../b", "."]
)
def test_a_relative_registry_path_lists_models_and_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    reg = Registry(url)
    assert [reg.publish("claims", f"m{i}".encode(), card_factory("claims")).version
            for i in range(2)] == [1, 2]  # fmt: skip
    assert reg.models() == ["claims"]
    assert reg.versions("claims") == [1, 2]
    with pytest.raises(ModelNotFound, match=r"known versions: 1, 2"):
        reg.promote("claims", 3)


def test_publishing_never_changes_an_existing_version(registry: Registry) -> None:
    registry.publish("m", b"first", card_factory("m"))
    before = snapshot(Path(registry.url) / "m" / "1")
    registry.publish("m", b"second", card_factory("m"))
    assert snapshot(Path(registry.url) / "m" / "1") == before


@pytest.mark.parametrize("filename", ["model.pkl", "card.json"], ids=["model file", "card file"])
def test_a_published_file_cannot_be_overwritten(registry: Registry, filename: str) -> None:
    registry.publish("m", b"first", card_factory("m"))
    target = Path(registry.url) / "m" / "1" / filename
    before = snapshot(Path(registry.url))
    with pytest.raises(VersionExists, match="never overwritten"):
        storage.write_bytes(str(target), b"evil", create_only=True)
    assert snapshot(Path(registry.url)) == before


def test_a_version_left_half_published_is_skipped_not_reused(registry: Registry) -> None:
    registry.publish("m", b"one", card_factory("m"))
    orphan = Path(registry.url) / "m" / "2" / "model.pkl"  # a publisher died before its card
    orphan.parent.mkdir()
    orphan.write_bytes(b"orphan")
    assert registry.versions("m") == [1]
    card = registry.publish("m", b"three", card_factory("m"))
    assert card.version == 3
    assert orphan.read_bytes() == b"orphan"


def test_a_failing_card_leaves_the_registry_as_it_was(registry: Registry) -> None:
    registry.publish("m", b"one", card_factory("m"))
    before = snapshot(Path(registry.url))

    def broken(version: int, sha: str) -> ModelCard:
        raise RuntimeError("card could not be built")

    with pytest.raises(RuntimeError):
        registry.publish("m", b"two", broken)
    nan_card = card_factory("m")

    def unserialisable(version: int, sha: str) -> ModelCard:
        card = nan_card(version, sha)
        card.metrics["r2"] = float("nan")  # allow_nan=False refuses it when written
        return card

    with pytest.raises(ValueError, match="JSON"):
        registry.publish("m", b"two", unserialisable)
    assert snapshot(Path(registry.url)) == before


def test_concurrent_publishes_get_distinct_versions(registry: Registry) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, ModelCard] = {}
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            barrier.wait()
            results[i] = registry.publish("m", f"model {i}".encode(), card_factory("m"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(c.version for c in results.values()) == list(range(1, n + 1))
    root = Path(registry.url)
    for i, card in results.items():
        assert (root / "m" / str(card.version) / "model.pkl").read_bytes() == f"model {i}".encode()
    assert not [p for p in root.rglob("*") if p.name.startswith(".")], "temp files left behind"


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "", "x" * 65], ids=["traversal", "slash", "empty", "too long"]
)
def test_publish_refuses_names_that_are_not_path_safe(registry: Registry, name: str) -> None:
    with pytest.raises(BadArgument, match="is not allowed"):
        registry.publish(name, b"x", card_factory(name))
    assert not Path(registry.url).exists()


# --- resolving ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "version"),
    [("claims", 1), ("claims@1", 1), ("claims:production", 1), ("income", 1)],
    ids=["bare name → production", "pinned version", "explicit alias", "another model"],
)
def test_resolve_finds_the_card(trained_registry: str, ref: str, version: int) -> None:
    card = Registry(trained_registry).resolve(ref)
    assert (card.name, card.version) == (ref.split("@")[0].split(":")[0], version)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "no model 'nope' in .* \\(models there: claims, income\\); train one"),
        ("nope@1", "no model 'nope' in .* \\(models there: claims, income\\)"),
        ("claims@9", "model 'claims' has no version 9 in .* \\(known versions: 1\\)"),
        (
            "claims:staging",
            "has no alias 'staging'; promote a version with 'python -m training "
            "promote claims VERSION --alias staging'",
        ),
    ],
    ids=["unknown model", "unknown model with a version", "unknown version", "unknown alias"],
)
def test_resolve_unknown_says_what_exists(trained_registry: str, ref: str, message: str) -> None:
    with pytest.raises(ModelNotFound, match=message):
        Registry(trained_registry).resolve(ref)


def test_resolve_in_an_empty_registry_says_so(registry: Registry) -> None:
    with pytest.raises(ModelNotFound, match="models there: none yet"):
        registry.resolve("claims")


def test_promote_moves_the_alias_and_resolve_follows(trained_copy: Registry) -> None:
    trained_copy.publish("claims", b"v2", card_factory("claims"))
    assert trained_copy.resolve("claims").version == 1
    trained_copy.promote("claims", 2)
    trained_copy.promote("claims", 1, "staging")
    assert trained_copy.resolve("claims").version == 2
    assert trained_copy.resolve("claims:staging").version == 1
    assert trained_copy.aliases("claims") == {"production": 2, "staging": 1}


def test_promote_refuses_unknown_version_and_writes_nothing(trained_copy: Registry) -> None:
    before = snapshot(Path(trained_copy.url))
    with pytest.raises(ModelNotFound, match="known versions: 1"):
        trained_copy.promote("claims", 5)
    with pytest.raises(BadArgument, match=re.escape("alias '../x' is not allowed")):
        trained_copy.promote("claims", 1, "../x")
    assert snapshot(Path(trained_copy.url)) == before


@pytest.mark.parametrize(
    ("body", "error"),
    [(b"{not json", CardInvalid), (b'{"name": "claims"}', CardInvalid)],
    ids=["card that is not JSON", "card missing fields"],
)
def test_an_unreadable_card_is_a_typed_error(
    trained_copy: Registry, body: bytes, error: type[Exception]
) -> None:
    (Path(trained_copy.url) / "claims" / "1" / "card.json").write_bytes(body)
    with pytest.raises(error, match="republish"):
        trained_copy.resolve("claims")


# --- loading only what the card vouches for -------------------------------------------------------
def test_a_pickle_that_runs_code_is_never_unpickled_when_its_sha_does_not_match(
    registry: Registry, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_TouchOnLoad(marker), protocol=4)
    # Control: with a matching sha256 the same bytes really do run code when loaded.
    control = Registry(str(tmp_path / "control"))
    control.load(control.publish("evil", evil, card_factory("evil")))
    assert marker.exists()
    marker.unlink()

    card = registry.publish("evil", evil, card_factory("evil", sha_override="ab" * 32))
    with pytest.raises(ModelIntegrityError, match=r"evil@1: model.pkl sha256 .* does not match"):
        registry.load(card)
    assert not marker.exists()


def test_a_model_replaced_after_publishing_is_refused_before_unpickling(
    trained_copy: Registry, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    card = trained_copy.resolve("claims")
    (Path(trained_copy.url) / "claims" / "1" / "model.pkl").write_bytes(
        pickle.dumps(_TouchOnLoad(marker), protocol=4)
    )
    with pytest.raises(ModelIntegrityError, match=r"changed after publishing\. Not loaded\."):
        trained_copy.load(card)
    assert not marker.exists()


def test_a_tampered_real_model_is_refused_and_the_untouched_one_loads(
    trained_copy: Registry,
) -> None:
    income = trained_copy.load(trained_copy.resolve("income"))
    assert income.card.classes == ("<=50K", ">50K")
    pkl = Path(trained_copy.url) / "claims" / "1" / "model.pkl"
    blob = bytearray(pkl.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    pkl.write_bytes(bytes(blob))
    with pytest.raises(ModelIntegrityError, match="claims@1"):
        trained_copy.load(trained_copy.resolve("claims"))


def test_a_missing_model_file_is_model_not_found(trained_copy: Registry) -> None:
    (Path(trained_copy.url) / "claims" / "1" / "model.pkl").unlink()
    with pytest.raises(ModelNotFound, match=r"model\.pkl is missing"):
        trained_copy.load(trained_copy.resolve("claims"))


def test_a_loaded_model_predicts_and_is_cached_per_process(trained_copy: Registry) -> None:
    card = trained_copy.resolve("claims")
    first = trained_copy.load(card)
    assert Registry(trained_copy.url).load(card).pipeline is first.pipeline
    rows = generate(5, seed=1).drop(columns=["charges"])
    assert np.isfinite(np.asarray(first.pipeline.predict(rows), dtype=float)).all()


def test_a_long_lived_process_keeps_the_engines_of_the_last_few_versions_only(
    trained_copy: Registry,
) -> None:
    """watch and the UI load every version promoted while they run: the per-process cache keeps
    the last few engines, a model still in use keeps its own, a cached one is reused."""
    import gc
    import weakref

    from scorer.predict import predict

    first = trained_copy.resolve("claims")
    base = Path(trained_copy.url) / "claims" / "1"
    plan = {"plan.json": (base / "plan.json").read_bytes()}
    cards = [first] + [
        trained_copy.publish(
            "claims",
            (base / "model.pkl").read_bytes(),
            lambda v, _sha: dataclasses.replace(first, version=v),
            extras=plan,
        )
        for _ in range(11)
    ]
    rows = generate(5, seed=2).drop(columns=["charges"])
    in_use = trained_copy.load(cards[0], engine="plan")  # say, a run still scoring with v1
    engines = [weakref.ref(trained_copy.load(c, engine="plan").engine) for c in cards[1:]]
    gc.collect()
    alive = [c.version for c, e in zip(cards[1:], engines, strict=True) if e() is not None]
    assert alive == [9, 10, 11, 12], "only the last versions loaded stay in memory"
    again = trained_copy.load(cards[-1], engine="plan")
    assert again.engine is engines[-1](), "a cached engine is reused, not built again"
    # the version in use was pushed out of the cache but its engine lives on and predicts
    assert np.array_equal(predict(in_use, rows).values, predict(again, rows).values)
    assert trained_copy.load(cards[0], engine="plan").engine is not in_use.engine


def test_a_model_from_another_scikit_learn_is_refused_naming_both_versions(
    registry: Registry,
) -> None:
    import sklearn

    card = registry.publish("old", stale_sklearn_pickle(), card_factory("old"))
    with pytest.raises(ModelVersionMismatch) as info:
        registry.load(card)
    message = str(info.value)
    assert "old@1 was saved with scikit-learn 0.0.1" in message
    assert f"this process has {sklearn.__version__}" in message


def test_a_model_needing_a_missing_module_is_a_version_mismatch(registry: Registry) -> None:
    blob = b"\x80\x04cdropscore_no_such_module\nThing\n."
    card = registry.publish("alien", blob, card_factory("alien"))
    with pytest.raises(ModelVersionMismatch, match="cannot be loaded with this process's"):
        registry.load(card)


# --- the same over S3 (moto server, HTTP) ---------------------------------------------------------
def test_s3_registry_resolves_loads_and_predicts(s3_registry: str) -> None:
    reg = Registry(s3_registry)
    assert reg.models() == ["claims", "income"]
    model = reg.load(reg.resolve("claims:production"))
    rows = generate(5, seed=2).drop(columns=["charges"])
    assert len(model.pipeline.predict(rows)) == 5
    with pytest.raises(ModelNotFound, match="models there: claims, income"):
        reg.resolve("nope")


def test_s3_publish_numbers_versions_and_never_overwrites(
    s3_registry: str, s3, bucket: str
) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(s3_registry)
    assert reg.publish("claims", b"v2", card_factory("claims")).version == 2
    with pytest.raises(VersionExists):
        storage.write_bytes(f"{s3_registry}/claims/2/model.pkl", b"evil", create_only=True)
    body = s3.get_object(Bucket=bucket, Key="models/claims/2/model.pkl")["Body"].read()
    assert body == b"v2"
    reg.promote("claims", 2)
    assert reg.resolve("claims").version == 2


def test_s3_concurrent_publishes_get_distinct_versions(bucket: str) -> None:
    reg = Registry(f"s3://{bucket}/models")
    n = 6
    barrier = threading.Barrier(n)
    versions: list[int] = []
    errors: list[BaseException] = []

    def publish(i: int) -> None:
        try:
            barrier.wait()
            versions.append(reg.publish("m", f"model {i}".encode(), card_factory("m")).version)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(versions) == list(range(1, n + 1))
    assert reg.versions("m") == list(range(1, n + 1))


def test_s3_tampered_model_is_refused(s3_registry: str, s3, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    reg = Registry(s3_registry)
    card = reg.resolve("income")
    evil = pickle.dumps(_TouchOnLoad(marker), protocol=4)
    s3.put_object(Bucket=bucket, Key="models/income/1/model.pkl", Body=evil)
    with pytest.raises(ModelIntegrityError, match="income@1"):
        reg.load(card)
    assert not marker.exists()


def test_alias_file_is_small_json_naming_the_version(trained_registry: str) -> None:
    raw = json.loads(
        (Path(trained_registry) / "claims" / "aliases" / "production.json").read_text()
    )
    assert raw["version"] == 1
    assert "promoted_at" in raw


# --- scoring plans beside model.pkl ---------------------------------------------------------------
def test_extras_are_published_create_only_beside_the_model(registry: Registry) -> None:
    card = registry.publish("m", b"model", card_factory("m"), extras={"plan.json": b"{}"})
    root = Path(registry.url)
    assert sorted(snapshot(root)) == ["m/1/card.json", "m/1/model.pkl", "m/1/plan.json"]
    assert (root / "m" / "1" / "plan.json").read_bytes() == b"{}"
    assert card.plan is None  # the caller's card says what the extra is
    with pytest.raises(VersionExists):
        storage.write_bytes(str(root / "m" / "1" / "plan.json"), b"evil", create_only=True)


@pytest.mark.parametrize("name", ["model.pkl", "card.json", "../x", "a/b", ".hidden", ""])
def test_extras_cannot_replace_the_model_or_leave_the_version(
    registry: Registry, name: str
) -> None:
    with pytest.raises(BadArgument, match="cannot be published as an extra"):
        registry.publish("m", b"model", card_factory("m"), extras={name: b"x"})
    assert not Path(registry.url).exists() or snapshot(Path(registry.url)) == {}


def test_a_failing_card_removes_the_extras_too(registry: Registry) -> None:
    registry.publish("m", b"one", card_factory("m"))
    before = snapshot(Path(registry.url))

    def broken(version: int, sha: str) -> ModelCard:
        raise RuntimeError("card could not be built")

    with pytest.raises(RuntimeError):
        registry.publish("m", b"two", broken, extras={"plan.json": b"{}"})
    assert snapshot(Path(registry.url)) == before


def test_engine_plan_checks_model_pkl_but_never_unpickles_it(
    trained_copy: Registry, tmp_path: Path
) -> None:
    from scorer.predict import predict

    card = trained_copy.resolve("claims")
    rows = generate(20, seed=4).drop(columns=["charges"])
    want = predict(trained_copy.load(card), rows).values
    marker = tmp_path / "pwned"
    pkl = Path(trained_copy.url) / "claims" / "1" / "model.pkl"
    good = pkl.read_bytes()
    pkl.write_bytes(pickle.dumps(_TouchOnLoad(marker), protocol=4))
    # a published version is checked whole, even though the plan does not need the pickle
    with pytest.raises(ModelIntegrityError, match=r"claims@1: model\.pkl sha256"):
        Registry(trained_copy.url).load(card, engine="plan")
    assert not marker.exists()
    pkl.write_bytes(good)
    model = Registry(trained_copy.url).load(card, engine="plan")
    assert model.pipeline is None
    assert np.array_equal(predict(model, rows).values, want)
    assert Registry(trained_copy.url).load(card, engine="auto").plan is model.plan  # cached


def test_a_tampered_plan_is_refused(trained_copy: Registry) -> None:
    path = Path(trained_copy.url) / "income" / "1" / "plan.json"
    text = path.read_text()
    path.write_text(text.replace('"ovr"', '"softmax"'))  # still a valid plan, other numbers
    with pytest.raises(ModelIntegrityError, match=r"income@1: plan\.json sha256 .* Not loaded"):
        trained_copy.load(trained_copy.resolve("income"), engine="plan")
    path.unlink()
    with pytest.raises(ModelNotFound, match=r"plan\.json is missing"):
        trained_copy.load(trained_copy.resolve("income"), engine="plan")


def _republish_plan(root: Path, name: str, estimator_bytes: bytes) -> ModelCard:
    """Replace ``name@1``'s estimator.pkl and make plan.json and the card vouch for it, as a
    publisher with other libraries would have written them."""
    version = root / name / "1"
    (version / "estimator.pkl").write_bytes(estimator_bytes)
    plan = json.loads((version / "plan.json").read_text())
    plan["head"]["sha256"] = hashlib.sha256(estimator_bytes).hexdigest()
    blob = (json.dumps(plan, indent=1, sort_keys=True) + "\n").encode()
    (version / "plan.json").write_bytes(blob)
    card = json.loads((version / "card.json").read_text())
    card["plan"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (version / "card.json").write_text(json.dumps(card))
    return ModelCard.from_json((version / "card.json").read_text())


@pytest.fixture
def nonlinear_copy(nonlinear_registry: str, tmp_path: Path) -> Registry:
    dest = tmp_path / "nonlinear"
    shutil.copytree(nonlinear_registry, dest)
    return Registry(str(dest))


def test_a_tampered_estimator_pkl_is_refused_before_unpickling(
    nonlinear_copy: Registry, tmp_path: Path
) -> None:
    from scorer.predict import predict

    card = nonlinear_copy.resolve("boost")
    assert sorted(p.name for p in (Path(nonlinear_copy.url) / "boost" / "1").iterdir()) == [
        "card.json", "estimator.pkl", "model.pkl", "plan.json",
    ]  # fmt: skip
    pkl = Path(nonlinear_copy.url) / "boost" / "1" / "estimator.pkl"
    good = pkl.read_bytes()
    marker = tmp_path / "pwned"
    pkl.write_bytes(pickle.dumps(_TouchOnLoad(marker), protocol=4))
    with pytest.raises(
        ModelIntegrityError,
        match=r"boost@1: estimator\.pkl sha256 .* does not match plan\.json's .* Not loaded",
    ):
        Registry(nonlinear_copy.url).load(card, engine="plan")
    assert not marker.exists()
    pkl.unlink()
    with pytest.raises(ModelNotFound, match=r"plan\.json lists estimator\.pkl but .* is missing"):
        Registry(nonlinear_copy.url).load(card, engine="auto")
    pkl.write_bytes(good)
    model = Registry(nonlinear_copy.url).load(card, engine="auto")
    assert model.pipeline is None
    assert model.plan is not None
    rows = generate(20, seed=4).drop(columns=["charges"])
    assert np.array_equal(
        predict(model, rows).values, predict(nonlinear_copy.load(card), rows).values
    )
    assert Registry(nonlinear_copy.url).load(card, engine="plan").plan is model.plan  # cached


def test_an_estimator_pickled_by_another_sklearn_is_a_version_mismatch(
    nonlinear_copy: Registry,
) -> None:
    card = _republish_plan(Path(nonlinear_copy.url), "gbr", stale_sklearn_pickle())
    with pytest.raises(ModelVersionMismatch, match=r"gbr@1 was saved with scikit-learn 0\.0\.1"):
        nonlinear_copy.load(card, engine="plan")


def test_an_estimator_pkl_of_another_class_is_refused(nonlinear_copy: Registry) -> None:
    import joblib
    from sklearn.tree import DecisionTreeRegressor

    buf = io.BytesIO()
    joblib.dump(DecisionTreeRegressor().fit([[0.0], [1.0]], [0.0, 1.0]), buf)
    card = _republish_plan(Path(nonlinear_copy.url), "boost", buf.getvalue())
    with pytest.raises(
        PlanInvalid, match=r"holds a sklearn\.tree\._classes\.DecisionTreeRegressor"
    ):
        nonlinear_copy.load(card, engine="plan")


def test_an_old_card_without_a_plan_loads_and_says_why_engine_plan_cannot(
    trained_copy: Registry,
) -> None:
    path = Path(trained_copy.url) / "claims" / "1" / "card.json"
    raw = json.loads(path.read_text())
    del raw["plan"]
    del raw["notes"]["plan"]
    path.write_text(json.dumps(raw))
    # an old card came with an old alias record, which recorded no card hash
    alias = Path(trained_copy.url) / "claims" / "aliases" / "production.json"
    alias.write_text(json.dumps({"version": 1}))
    card = trained_copy.resolve("claims")
    assert card.plan is None
    assert trained_copy.load(card, engine="auto").pipeline is not None
    assert trained_copy.load(card).plan is None
    with pytest.raises(PlanUnavailable, match="claims@1 was published without a scoring plan; "):
        trained_copy.load(card, engine="plan")


def test_engine_plan_on_a_model_published_without_one_gives_the_reason(registry: Registry) -> None:
    card = registry.publish(
        "m", b"model", lambda v, s: dataclasses.replace(
            card_factory("m")(v, s), notes=Notes(plan="not exported: no linear model")
        ),
    )  # fmt: skip
    with pytest.raises(PlanUnavailable, match=r"\(not exported: no linear model\)") as info:
        registry.load(card, engine="plan")
    assert info.value.code == "PLAN_UNAVAILABLE"
    with pytest.raises(BadArgument, match="engine must be one of pipeline, plan, auto"):
        registry.load(card, engine="fast")


def test_a_card_without_a_plan_is_written_as_before(registry: Registry) -> None:
    card = registry.publish("m", b"model", card_factory("m"))
    raw = json.loads((Path(registry.url) / "m" / "1" / "card.json").read_text())
    assert "plan" not in raw  # older scorers refuse unknown card fields
    assert ModelCard.from_json(card.to_json()) == card


# --- the card's sections: typed, and card.json's shape unchanged ---------------------------------
CARD_FROM_MAIN = Path(__file__).parent / "data" / "card_from_main.json"


@pytest.mark.parametrize("which", ["trained_registry", "nonlinear_registry", "labelled_registry"])
def test_every_card_training_writes_reads_back_to_the_same_bytes(
    request: pytest.FixtureRequest, which: str
) -> None:
    cards = sorted(Path(request.getfixturevalue(which)).glob("*/*/card.json"))
    assert len(cards) >= 2
    for path in cards:
        blob = path.read_bytes()
        card = ModelCard.from_json(blob)
        assert card.to_json().encode() == blob, path
        assert card.training_data.rows == card.training_data.rows_used  # every row had a target
        assert card.training_data.dialect == DataDialect(",", ".")
        assert card.plan is not None
        assert card.plan.verified is not None
        assert (card.notes.plan or "").startswith("exported")


def test_a_card_written_by_the_previous_scorer_loads_with_typed_sections() -> None:
    """card_from_main.json: a LightGBM classifier's card written by main before the sections
    were typed (aa5dafd), every section present."""
    blob = CARD_FROM_MAIN.read_bytes()
    card = ModelCard.from_json(blob)
    assert card.to_json().encode() == blob
    assert card.json_sha256 == hashlib.sha256(blob).hexdigest()
    assert card.training_data.holdout_rows == 60
    assert card.training_data.estimators_compared == ("lightgbm",)
    assert card.plan == PlanEntry(
        format=2,
        sha256="522a7fce337ba537372df1f395cbe5633784d5a739c58a253dee033490d04f77",
        verified=PlanCheck(rows=585, max_abs_diff=0.0, max_rel_diff=0.0),
        estimator=PlanEstimator(
            "lightgbm.sklearn.LGBMClassifier",
            "estimator.pkl",
            "03016bd057555c8e0f77b07d94b581904eb9f2f4fe6b95e26b77514a09830f11",
        ),
    )
    assert (card.notes.metrics_on or "").startswith("hold-out rows")


def test_an_older_card_without_the_later_keys_loads_and_reads_back_the_same() -> None:
    """Cards from before the dialect, the scoring plan and the category rule were recorded:
    what was not recorded is None, and is not written back."""
    raw = json.loads(CARD_FROM_MAIN.read_bytes())
    del raw["training_data"]["dialect"], raw["plan"]
    raw["notes"] = {"metrics_on": raw["notes"]["metrics_on"]}
    blob = (json.dumps(raw, indent=2) + "\n").encode()
    card = ModelCard.from_json(blob)
    assert card.to_json().encode() == blob
    assert (card.training_data.dialect, card.plan, card.notes.plan) == (None, None, None)


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("training_data", {"rows": 3, "colour": "blue"}),
        ("notes", {"mood": "good"}),
        ("plan", {"format": 1}),
        ("plan", {"format": 2, "sha256": "0" * 64, "estimator": {"file": "e.pkl"}}),
    ],
    ids=["unknown training_data key", "unknown note", "plan without sha256", "estimator no class"],
)
def test_a_card_section_it_does_not_know_is_refused_as_an_invalid_card(
    trained_copy: Registry, section: str, value: object
) -> None:
    path = Path(trained_copy.url) / "claims" / "1" / "card.json"
    raw = json.loads(path.read_text())
    raw[section] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(CardInvalid, match="republish"):
        trained_copy.card("claims", 1)
