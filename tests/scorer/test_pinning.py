"""An input that names its model in its metadata (``x-amz-meta-dropscore-model``) is scored by
exactly that version — by the event path and the sweep alike — and the checker agrees."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scorer import check, pinning, service, sweep
from scorer.errors import ModelRequestInvalid, ModelRequestNotFound
from scorer.layout import ObjectVersion
from scorer.registry import Registry
from tests.scorer.test_s3_runs import manifests

PUBLISHED = {"claims": {1, 2}, "income": {1}}
META = "object-metadata"


@pytest.mark.parametrize(
    ("metadata", "expected", "refusal"),
    [
        (None, ("claims", 2, "configured"), None),
        ({}, ("claims", 2, "configured"), None),
        ({"dropscore-model": "claims@1"}, ("claims", 1, "object-metadata"), None),
        ({"Dropscore-Model": "claims@1"}, ("claims", 1, "object-metadata"), None),
        ({"dropscore-model": "income@1"}, ("income", 1, "object-metadata"), None),
        ({"dropscore-model": "claims:staging"}, ("claims", 2, META), ModelRequestInvalid),
        ({"dropscore-model": "claims"}, ("claims", 2, META), ModelRequestInvalid),
        ({"dropscore-model": "../x@1"}, ("claims", 2, META), ModelRequestInvalid),
        ({"dropscore-model": "claims@9"}, ("claims", 2, META), ModelRequestNotFound),
        ({"dropscore-model": "nobody@1"}, ("claims", 2, META), ModelRequestNotFound),
    ],
    ids=[
        "no metadata: the configured model",
        "empty metadata: the configured model",
        "an exact version is honoured",
        "the metadata name is case-insensitive",
        "another published model is honoured",
        "an alias is refused: it can move",
        "a bare name is refused",
        "a bad name is refused",
        "an unpublished version is refused",
        "an unknown model is refused",
    ],
)
def test_the_model_an_input_asks_for(
    metadata: dict[str, str] | None, expected: tuple[str, int, str], refusal: type | None
) -> None:
    choice = pinning.choose(metadata, ("claims", 2), lambda n: PUBLISHED.get(n, set()))
    assert (choice.name, choice.version, choice.source) == expected
    if refusal is None:
        assert choice.refusal is None
    else:
        assert isinstance(choice.refusal, refusal)
        assert "dropscore-model" in choice.refusal.message


def _publish_v2(s3: Any, bucket: str, registry: str) -> None:
    """claims@2 (the same fitted model, republished) becomes production."""
    reg = Registry(registry)
    card = reg.resolve("claims")
    blob = s3.get_object(Bucket=bucket, Key="models/claims/1/model.pkl")["Body"].read()
    plan = s3.get_object(Bucket=bucket, Key="models/claims/1/plan.json")["Body"].read()
    reg.publish(
        "claims",
        blob,
        lambda v, sha: dataclasses.replace(card, version=v, model_sha256=sha),
        alias="production",
        extras={"plan.json": plan},
    )
    assert reg.resolve("claims").version == 2


def _put(s3: Any, bucket: str, key: str, model: str | None) -> ObjectVersion:
    from training.sample_data import generate

    body = generate(25, 3).drop(columns=["charges"]).to_csv(index=False).encode()
    extra = {"Metadata": {pinning.METADATA_KEY: model}} if model else {}
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return ObjectVersion(bucket, key, resp["VersionId"])


def test_an_input_pinned_to_v1_is_scored_by_v1_while_production_is_v2(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    _publish_v2(s3, bucket, s3_registry)
    settings = service.Settings(registry=s3_registry)
    ref = _put(s3, bucket, "incoming/uploads/pinned.csv", "claims@1")
    result = service.score_object(ref, settings)
    assert result is not None
    m = result.manifest
    assert m.status == "ok"
    assert (m.model.name, m.model.version) == ("claims", 1)
    assert m.model.extra["requested"] == "claims@1"
    assert m.model.extra["source"] == "object-metadata"
    assert m.run_id.startswith("claims-v1-")
    # the folder the UI links to is the one the run landed in
    path = service.run_path(ref, "claims", 1, settings)
    assert f"scored/{path}/manifest.json" in manifests(s3, bucket)
    # the sweep, even asked to rescore stale inputs, and the checker agree that it is done
    assert sweep.sweep(bucket, settings, rescore_stale=True) == 0
    assert len(manifests(s3, bucket)) == 1
    assert check.check(bucket, settings) == []


def test_an_unpinned_input_is_still_scored_by_production(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    _publish_v2(s3, bucket, s3_registry)
    settings = service.Settings(registry=s3_registry)
    result = service.score_object(_put(s3, bucket, "incoming/plain.csv", None), settings)
    assert result is not None
    assert result.manifest.model.version == 2
    assert result.manifest.model.extra["source"] == "configured"
    assert "requested" not in result.manifest.model.to_dict()
    assert check.check(bucket, settings) == []


def test_the_sweep_scores_a_lost_pinned_input_with_its_version(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    _publish_v2(s3, bucket, s3_registry)
    settings = service.Settings(registry=s3_registry)
    _put(s3, bucket, "incoming/lost.csv", "claims@1")
    pending = check.check(bucket, settings)
    assert [(v.code, v.message) for v in pending] == [
        ("INPUT_PENDING", "no terminal manifest from the model its metadata asks for, claims@1")
    ]
    assert sweep.sweep(bucket, settings) == 0
    [m] = manifests(s3, bucket).values()
    assert (m["model"]["version"], m["model"]["requested"]) == (1, "claims@1")
    assert check.check(bucket, settings) == []


@pytest.mark.parametrize(
    ("asked", "code"),
    [("claims@9", "MODEL_REQUEST_NOT_FOUND"), ("claims:staging", "MODEL_REQUEST_INVALID")],
    ids=["a version that does not exist", "an alias"],
)
def test_a_request_that_cannot_be_honoured_ends_in_one_failed_manifest(
    s3: Any, bucket: str, s3_registry: str, asked: str, code: str
) -> None:
    settings = service.Settings(registry=s3_registry)
    ref = _put(s3, bucket, "incoming/asks.csv", asked)
    first = service.score_object(ref, settings)
    assert first is not None
    m = first.manifest
    assert m.status == "failed"
    assert m.reason is not None
    assert m.reason.code == code
    assert asked in m.reason.message
    assert m.model.extra["requested"] == asked
    again = service.score_object(ref, settings)  # a duplicate event: no retry loop, no 2nd run
    assert again is not None
    assert again.already_done
    assert sweep.sweep(bucket, settings, rescore_stale=True) == 0
    assert len(manifests(s3, bucket)) == 1
    assert check.check(bucket, settings) == []
