"""Model artefacts on the S3 path: a fresh task (subprocess, no model cache) refuses a tampered
or mismatched model before scoring anything, and a sweep scores every file with the one model
version it resolved at its start even when the alias moves under it."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from scorer import service, sweep
from scorer.errors import CardTampered, ModelNotFound
from scorer.registry import Registry
from tests.reliability.conftest import ledger, manifests, put, run_event, sample_csv
from tests.scorer.test_registry import _TouchOnLoad, stale_sklearn_pickle


def _publish_raw(reg: Registry, blob: bytes, *, plan: bytes | None = None) -> int:
    """A new claims version whose card vouches for ``blob`` (sha256 right), promoted; with
    ``plan``, that scoring plan (the card's own plan entry), else none."""
    card = reg.resolve("claims")
    new = reg.publish(
        "claims",
        blob,
        lambda v, sha: dataclasses.replace(
            card, version=v, model_sha256=sha, plan=card.plan if plan else None
        ),
        alias="production",
        extras={"plan.json": plan} if plan else None,
    )
    return new.version


def _tampered(s3: Any, bucket: str, reg: Registry, tmp_path: Path) -> str:
    marker = tmp_path / "pwned"
    s3.put_object(
        Bucket=bucket,
        Key="models/claims/1/model.pkl",
        Body=pickle.dumps(_TouchOnLoad(marker), protocol=4),
    )
    return "MODEL_TAMPERED"


def _missing_version(s3: Any, bucket: str, reg: Registry, tmp_path: Path) -> str:
    s3.put_object(
        Bucket=bucket,
        Key="models/claims/aliases/production.json",
        Body=json.dumps({"version": 7}).encode(),
    )
    return "MODEL_NOT_FOUND"


def _missing_pickle(s3: Any, bucket: str, reg: Registry, tmp_path: Path) -> str:
    s3.delete_object(Bucket=bucket, Key="models/claims/1/model.pkl")
    return "MODEL_NOT_FOUND"


def _old_sklearn(s3: Any, bucket: str, reg: Registry, tmp_path: Path) -> str:
    _publish_raw(reg, stale_sklearn_pickle())  # no scoring plan: the pipeline is unpickled
    return "MODEL_LIBRARY_MISMATCH"


def _edited_card(s3: Any, bucket: str, reg: Registry, tmp_path: Path) -> str:
    """The card decides which rows are valid: relaxing it (here: 'smoker' may be empty and
    'bmi' any size) must not score with the same run id under the same model block."""
    key = "models/claims/1/card.json"
    card = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    for feat in card["features"]:
        feat["nullable"] = True
        feat["min"] = feat["max"] = None
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(card, indent=2).encode())
    return "CARD_TAMPERED"


BAD_MODELS = [
    ("a model.pkl replaced by a code-running pickle", _tampered),
    ("a card.json edited after its version was promoted", _edited_card),
    ("the production alias names a version that does not exist", _missing_version),
    ("a card whose model.pkl is gone", _missing_pickle),
    ("a model pickled by another scikit-learn", _old_sklearn),
]


@pytest.mark.slow
@pytest.mark.parametrize("damage", [b[1] for b in BAD_MODELS], ids=[b[0] for b in BAD_MODELS])
def test_a_bad_model_stops_the_task_before_scoring_and_the_input_stays_pending(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path, damage: Any
) -> None:
    version = put(s3, bucket, "incoming/m.csv", sample_csv(20))
    code = damage(s3, bucket, Registry(s3_registry), tmp_path)
    done = run_event(bucket, "incoming/m.csv", version)
    assert done.returncode == 1, done.stderr
    assert f"error [{code}]" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "pwned").exists()  # refused before unpickling
    assert manifests(s3, bucket) == {}
    if code == "MODEL_NOT_FOUND" and "version 7" in done.stderr:
        with pytest.raises(ModelNotFound):
            ledger(bucket)
    elif code == "CARD_TAMPERED":  # the checker names the edited card too
        with pytest.raises(CardTampered):
            ledger(bucket, model="claims@1")
    else:
        assert [v.split()[0] for v in ledger(bucket, model="claims@1")] == ["INPUT_PENDING"]


def test_an_alias_moved_during_a_sweep_each_file_is_scored_by_one_recorded_version(
    s3: Any, bucket: str, s3_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        put(s3, bucket, f"incoming/alias/{i}.csv", sample_csv(15, seed=i))
    reg = Registry(s3_registry)
    original = service.score_object
    moved: list[int] = []

    def score_then_promote(*args: Any, **kw: Any) -> Any:
        result = original(*args, **kw)
        if not moved:  # after the first file, a data scientist promotes a new version
            blob = s3.get_object(Bucket=bucket, Key="models/claims/1/model.pkl")["Body"].read()
            plan = s3.get_object(Bucket=bucket, Key="models/claims/1/plan.json")["Body"].read()
            moved.append(_publish_raw(reg, blob, plan=plan))
        return result

    monkeypatch.setattr(service, "score_object", score_then_promote)
    assert sweep.sweep(bucket, service.Settings(), concurrency=1) == 0
    assert moved == [2]
    done = list(manifests(s3, bucket).values())
    assert len(done) == 5
    assert {m["model"]["version"] for m in done} == {1}  # the version the sweep resolved
    assert all(m["run_id"].startswith("claims-v1-") for m in done)
    assert ledger(bucket, model="claims@1") == []
    # production is now v2: by the strict rule every input is pending until it is rescored
    assert len(ledger(bucket)) == 5
    monkeypatch.setattr(service, "score_object", original)
    assert sweep.sweep(bucket, service.Settings(), rescore_stale=True) == 0
    versions = sorted(m["model"]["version"] for m in manifests(s3, bucket).values())
    assert versions == [1] * 5 + [2] * 5
    assert ledger(bucket) == []


def test_every_manifest_records_the_sha256_of_the_card_that_validated_it(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    import hashlib

    version = put(s3, bucket, "incoming/card.csv", sample_csv(10))
    done = run_event(bucket, "incoming/card.csv", version)
    assert done.returncode == 0, done.stderr
    [m] = manifests(s3, bucket).values()
    card = s3.get_object(Bucket=bucket, Key="models/claims/1/card.json")["Body"].read()
    alias = json.loads(
        s3.get_object(Bucket=bucket, Key="models/claims/aliases/production.json")["Body"].read()
    )
    assert m["model"]["card_sha256"] == hashlib.sha256(card).hexdigest() == alias["card_sha256"]


def test_an_edited_card_is_refused_by_version_too_while_an_alias_vouches_for_it(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path
) -> None:
    _edited_card(s3, bucket, Registry(s3_registry), tmp_path)
    with pytest.raises(CardTampered, match="changed after it was promoted"):
        Registry(s3_registry).resolve("claims@1")
    # promoting again is how an operator accepts the new card
    Registry(s3_registry).promote("claims", 1)
    assert Registry(s3_registry).resolve("claims@1").features[0].nullable
