"""Promotion: the candidate-vs-current comparison and its warnings, the append-only history in the
registry, and conditional alias writes so two concurrent promotions cannot both win. Local
directories and S3 (a real moto server over HTTP) behave the same."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from scorer import storage
from scorer.card import Feature, ModelCard, TrainingData
from scorer.errors import BadArgument, ObjectChanged, PromotionConflict, VersionExists
from scorer.promotion import Promotion, check_note, compare
from scorer.registry import Registry
from tests.scorer.test_registry import card_factory


def card(version: int, **changes: object) -> ModelCard:
    return dataclasses.replace(card_factory("claims")(version, "a" * 64), **changes)  # type: ignore[arg-type]


def publish(reg: Registry, r2: float, sha: str = "0" * 64) -> int:
    def make(version: int, model_sha: str) -> ModelCard:
        base = card_factory("claims")(version, model_sha)
        return dataclasses.replace(base, metrics={"r2": r2}, training_data=TrainingData(sha256=sha))

    return reg.publish("claims", f"model r2={r2} {sha}".encode(), make).version


@pytest.fixture(params=["local", "s3"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry(str(tmp_path / "models"))
    return Registry(f"s3://{request.getfixturevalue('bucket')}/models")


# --- the comparison (pure) ------------------------------------------------------------------------
def test_a_worse_candidate_on_the_same_data_is_named_with_both_numbers() -> None:
    result = compare(card(1, metrics={"r2": 0.836}), card(2, metrics={"r2": 0.715}))
    assert result.warnings == ("v2 is worse than v1 on r2: 0.715 vs 0.836 (-0.121).",)
    rows = {what: (a, b) for what, a, b in result.rows}
    assert rows["r2"] == ("0.836", "0.715")
    assert rows["version"] == ("v1", "v2")
    assert rows["estimator"] == ("Dummy", "Dummy")


def test_a_better_candidate_on_the_same_data_has_no_warning() -> None:
    assert compare(card(1, metrics={"r2": 0.7}), card(2, metrics={"r2": 0.8})).warnings == ()


def test_other_training_data_makes_the_metrics_not_comparable_even_when_better() -> None:
    old = card(1, metrics={"r2": 0.7}, training_data=TrainingData(sha256="1" * 64, rows=100))
    new = card(2, metrics={"r2": 0.9}, training_data=TrainingData(sha256="2" * 64, rows=5000))
    (warning,) = compare(old, new).warnings
    assert warning.startswith("The metrics are not directly comparable")
    assert "training data sha256 differs" in warning
    rows = {what: (a, b) for what, a, b in compare(old, new).rows}
    assert rows["training rows"] == ("100", "5,000")


def test_classification_is_judged_by_auc_and_features_added_and_removed_are_listed() -> None:
    feats = (Feature(name="x", kind="number"), Feature(name="y", kind="number"))
    old = card(1, task="classification", metrics={"auc": 0.9, "accuracy": 0.7}, features=feats)
    new = card(
        2,
        task="classification",
        metrics={"auc": 0.8, "accuracy": 0.9},
        features=(feats[0], Feature(name="z", kind="category")),
    )
    result = compare(old, new)
    assert result.warnings == ("v2 is worse than v1 on auc: 0.8 vs 0.9 (-0.1).",)
    assert (result.added, result.removed) == (("z",), ("y",))


def test_a_first_promotion_compares_with_nothing_and_warns_of_nothing() -> None:
    result = compare(None, card(1))
    assert result.warnings == ()
    assert ("version", "—", "v1") in result.rows


def test_a_missing_main_metric_is_said_not_guessed() -> None:
    (warning,) = compare(card(1, metrics={"r2": float("nan")}), card(2)).warnings
    assert warning == "r2 is missing for v1: cannot tell which is better."


@pytest.mark.parametrize("note", ["", "   ", None], ids=["empty", "blank", "none"])
def test_a_note_is_required(note: str | None) -> None:
    with pytest.raises(BadArgument, match="a promotion needs a note"):
        check_note(note)


# --- the history in the registry ------------------------------------------------------------------
def test_each_promotion_appends_a_record_and_never_rewrites_one(reg: Registry) -> None:
    v1, v2 = publish(reg, 0.836), publish(reg, 0.715)
    reg.promote("claims", v1, note="first model", by="ana@example.com")
    prefix = storage.join(reg.url, "claims", "history") + "/"
    (first,) = storage.list_objects(prefix)
    first_bytes = storage.read_bytes(first.url)
    reg.promote(
        "claims",
        v2,
        note="rollout",
        by="boss@example.com",
        warnings=("v2 is worse",),
        expected_from=v1,
    )
    reg.promote("claims", v1, "staging", note="for testing", by="ana@example.com")
    history = reg.history("claims")
    assert [(p.alias, p.from_version, p.to_version, p.by, p.note, p.warnings) for p in history] == [
        ("staging", None, v1, "ana@example.com", "for testing", ()),
        ("production", v1, v2, "boss@example.com", "rollout", ("v2 is worse",)),
        ("production", None, v1, "ana@example.com", "first model", ()),
    ]
    assert storage.read_bytes(first.url) == first_bytes  # untouched by later promotions
    names = [o.url.rsplit("/", 1)[-1] for o in storage.list_objects(prefix)]
    assert len(names) == 3
    assert any(n.endswith("-production-v1-v2.json") for n in names)
    raw = json.loads(
        storage.read_bytes(next(o.url for o in storage.list_objects(prefix) if "v1-v2" in o.url))
    )
    assert raw["card_sha256"] == reg.card("claims", v2).json_sha256
    assert raw["at"].endswith("+00:00")


def test_a_history_record_is_create_only(reg: Registry) -> None:
    v1 = publish(reg, 0.8)
    reg.promote("claims", v1, note="first", by="ana")
    (obj,) = storage.list_objects(storage.join(reg.url, "claims", "history") + "/")
    with pytest.raises(VersionExists):
        storage.write_bytes(obj.url, b"{}", create_only=True)
    # the registry never overwrites a record whose name is taken: the second gets a suffix
    record = reg.history("claims")[0]
    reg._append_history(dataclasses.replace(record, note="same second, other record"))
    notes = sorted(p.note for p in reg.history("claims"))
    assert notes == ["first", "same second, other record"]


def test_training_publish_with_an_alias_is_recorded_too(reg: Registry) -> None:
    reg.publish("claims", b"m", card_factory("claims"), alias="production", by="trainer")
    (record,) = reg.history("claims")
    assert (record.by, record.note, record.moved) == (
        "trainer", "published with alias production", "nothing → v1",
    )  # fmt: skip


# --- concurrent promotions ------------------------------------------------------------------------
def test_two_admins_cannot_both_win(reg: Registry, faulty_store: Any) -> None:
    """Admin B reads the alias (v1), admin A promotes v2 in between, then B writes v3: B's
    conditional write (If-Match on the ETag B read) fails, and only A's promotion is recorded."""
    v1, v2, v3 = publish(reg, 0.8), publish(reg, 0.81), publish(reg, 0.82)
    reg.promote("claims", v1, note="start", by="ops")
    rival = faulty_store(reg.url).add(
        "read_with_etag",
        "aliases/production.json",
        after=lambda: reg.promote("claims", v2, note="A", by="a@example.com"),
    )
    with pytest.raises(PromotionConflict, match="moved by someone else while v3"):
        reg.promote("claims", v3, note="B", by="b@example.com")
    assert rival.hits == 1
    assert reg.aliases("claims")["production"] == v2
    assert reg.resolve("claims").version == v2
    assert [(p.by, p.moved) for p in reg.history("claims")] == [
        ("a@example.com", f"v{v1} → v{v2}"),
        ("ops", f"nothing → v{v1}"),
    ]


def test_a_promotion_compared_against_an_old_alias_is_refused(reg: Registry) -> None:
    v1, v2, v3 = publish(reg, 0.8), publish(reg, 0.81), publish(reg, 0.82)
    reg.promote("claims", v1, note="start", by="ops")
    reg.promote("claims", v2, note="A", by="a", expected_from=v1)
    with pytest.raises(PromotionConflict, match=f"is v{v2} now, not v{v1} as when you compared"):
        reg.promote("claims", v3, note="B", by="b", expected_from=v1)
    assert reg.aliases("claims")["production"] == v2
    assert len(reg.history("claims")) == 2


def test_a_first_promotion_refuses_when_someone_else_created_the_alias(reg: Registry) -> None:
    v1, v2 = publish(reg, 0.8), publish(reg, 0.81)
    reg.promote("claims", v1, note="A", by="a", expected_from=None)
    with pytest.raises(PromotionConflict, match="not unset"):
        reg.promote("claims", v2, note="B", by="b", expected_from=None)


def test_a_stale_etag_is_refused_by_the_storage_itself(reg: Registry) -> None:
    url = storage.join(reg.url, "claims", "aliases", "production.json")
    storage.replace_if(url, b'{"version": 1}\n', None)
    _, etag = storage.read_with_etag(url)
    storage.replace_if(url, b'{"version": 2}\n', etag)
    with pytest.raises(ObjectChanged):
        storage.replace_if(url, b'{"version": 3}\n', etag)
    with pytest.raises(ObjectChanged):
        storage.replace_if(url, b'{"version": 4}\n', None)  # exists now
    assert json.loads(storage.read_bytes(url)) == {"version": 2}


def test_a_record_round_trips_and_keeps_fields_it_does_not_know() -> None:
    record = Promotion("m", "production", None, 1, "a", "2026-11-29T12:00:00.5+00:00", "why")
    raw = json.loads(record.to_json())
    raw["ticket"] = "OPS-1"
    again = Promotion.from_json(json.dumps(raw))
    assert again.extra == {"ticket": "OPS-1"}
    assert dataclasses.replace(again, extra={}) == record
    assert record.file_name == "20261129T120000-5Z-production-none-v1.json"
