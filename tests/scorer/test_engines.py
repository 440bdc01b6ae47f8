"""The two engines through ``python -m scorer score``: a model's scoring plan and its PyCaret
pipeline write the same bytes on a messy file, for regression and classification, whatever the
number of workers; the manifest says which engine ran; bad flags are one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scorer.test_parallel import messy_csv
from tests.scorer.test_s3_runs import cli

TIMINGS = {  # and how the run was executed
    "started_at", "finished_at", "duration_s", "rows_per_s", "peak_memory_mb", "workers",
    "workers_peak_memory_mb",
}  # fmt: skip


def score(src: Path, registry: str, model: str, out: Path, *flags: str) -> dict[str, object]:
    done = cli(
        "score", str(src), "--registry", registry, "--model", model, "--out", str(out), *flags
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    engine = manifest["model"].pop("engine")
    for entry in manifest["outputs"].values():
        entry.pop("url")
    return {
        "engine": engine,
        "manifest": {k: v for k, v in manifest.items() if k not in TIMINGS},
        "files": {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"},
    }


def income_csv(rows: int) -> bytes:
    from tests.conftest import make_classification_frame

    frame = make_classification_frame(rows, seed=21).drop(columns=["income >50K"])
    text = frame.to_csv(index=False)
    lines = text.splitlines(keepends=True)
    lines[5] = "not a number" + lines[5][lines[5].index(",") :]  # one row rejected
    return "".join(lines).encode()


@pytest.mark.parametrize("model", ["claims", "income"])
def test_plan_and_pipeline_write_the_same_bytes(
    tmp_path: Path, trained_registry: str, model: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(messy_csv(2000, seed=5) if model == "claims" else income_csv(2000))
    plan = score(src, trained_registry, model, tmp_path / "plan", "--engine", "plan")
    auto = score(src, trained_registry, model, tmp_path / "auto", "--workers", "2")
    pipeline = score(src, trained_registry, model, tmp_path / "pipe", "--engine", "pipeline")
    assert (plan["engine"], auto["engine"], pipeline["engine"]) == ("plan", "plan", "pipeline")
    assert plan["manifest"]["status"] == "partial"  # type: ignore[index]
    assert set(plan["files"]) == {"predictions.csv", "rejected.csv"}  # type: ignore[arg-type]
    assert plan["files"] == pipeline["files"] == auto["files"]
    assert plan["manifest"] == pipeline["manifest"] == auto["manifest"]


def test_bad_engine_or_workers_is_a_usage_error(tmp_path: Path, trained_registry: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(messy_csv(10, seed=1))
    base = ["score", str(src), "--registry", trained_registry, "--model", "claims"]
    for flags in (["--engine", "fast"], ["--workers", "many"]):
        done = cli(*base, "--out", str(tmp_path / "out"), *flags)
        assert done.returncode == 2  # a usage error: nothing ran
        assert done.stderr.startswith("error ["), done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "out").exists()


def test_prediction_needs_neither_storage_nor_the_registry_nor_pycaret() -> None:
    """scorer.predict and scorer.model are pure: a process that only predicts (a worker, the
    Python API on a loaded model) imports no storage adapter, no registry and no PyCaret."""
    import subprocess
    import sys

    code = (
        "import json, sys, scorer.predict, scorer.model; "
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] in ('scorer', 'boto3', "
        "'pycaret')]))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    loaded = set(json.loads(done.stdout))
    assert loaded == {
        "scorer", "scorer.card", "scorer.codes", "scorer.errors", "scorer.model", "scorer.predict"
    }  # fmt: skip


@pytest.mark.parametrize("engine", ["plan", "pipeline"])
def test_a_model_sent_to_another_process_predicts_the_same(
    trained_registry: str, engine: str
) -> None:
    """A loaded model crosses a process boundary by pickling (a spawned process, a cluster
    worker): the copy predicts the same, and a pipeline copy gets a lock of its own."""
    import pickle

    import numpy as np

    from scorer.predict import predict
    from scorer.registry import Registry
    from training.sample_data import generate

    reg = Registry(trained_registry)
    model = reg.load(reg.resolve("claims"), engine=engine)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.engine.name == model.engine.name == engine
    frame = generate(50, seed=8).drop(columns=["charges"])
    np.testing.assert_array_equal(predict(copy, frame).values, predict(model, frame).values)
