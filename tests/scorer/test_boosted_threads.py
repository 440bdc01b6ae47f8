"""A model that must not be forked (LightGBM) is scored on threads of the run's process: the
same bytes as one thread — predictions, rejected rows, manifest counts and refusals — and no
thread left behind when a run stops early (issue 14)."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path

import pytest

from scorer import runs, storage
from scorer.batches import scored_on_threads, threads_help
from scorer.dialect import plan_file
from scorer.errors import FileRefused
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from scorer.reader import CsvStream
from scorer.registry import Registry
from tests.conftest import make_classification_frame
from tests.scorer.test_parallel import BATCH, TIMINGS, messy_csv


@pytest.fixture(scope="module")
def boosted(nonlinear_registry: str) -> dict[str, LoadedModel]:
    reg = Registry(nonlinear_registry)
    return {
        name: reg.load(reg.resolve(name), engine="plan") for name in ("boost", "boosted-income")
    }


def income_csv(rows: int, seed: int) -> bytes:
    """Classification rows with a bad number, a short row and a blank line mixed in."""
    frame = make_classification_frame(rows, seed=seed).drop(columns=["income >50K"])
    lines = frame.to_csv(index=False).splitlines(keepends=True)
    for i in range(7, len(lines), 97):
        lines[i] = "many," + lines[i].split(",", 1)[1]
    for i in range(11, len(lines), 131):
        lines[i] = ",".join(lines[i].split(",")[:2]) + "\n"
    lines.insert(len(lines) // 2, "\n")
    return "".join(lines).encode()


def run(
    tmp: Path, data: bytes, model: LoadedModel, workers: int, caplog: pytest.LogCaptureFixture
) -> dict[str, object]:
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / f"out-{workers}"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="dropscore.scorer"):
        result = runs.score(
            ObjectVersion("", str(src)), str(out), model, "boost-v1-threads",
            info=storage.head(str(src)), batch_rows=BATCH, workers=workers,
        )  # fmt: skip
    scoring = [r for r in caplog.records if r.getMessage() == "scoring"]
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest.get("outputs", {}).values():
        entry.pop("url")
    return {
        "threads": [getattr(r, "threads", None) for r in scoring],
        "workers": result.manifest.workers,
        "manifest": {k: v for k, v in manifest.items() if k not in TIMINGS},
        "files": {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"},
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["boost", "boosted-income"])
def test_a_lightgbm_model_on_threads_writes_the_bytes_of_one_thread(
    tmp_path: Path, boosted: dict[str, LoadedModel], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = boosted[name]
    assert threads_help(model)
    data = messy_csv(3000, seed=4) if name == "boost" else income_csv(3000, seed=9)
    one = run(tmp_path, data, model, 0, caplog)
    two = run(tmp_path, data, model, 2, caplog)
    assert one["threads"] == [0]  # the paths asked for were taken
    assert two["threads"] == [2]
    assert one["workers"] == two["workers"] == 0  # no process was forked
    assert two["manifest"] == one["manifest"]
    assert two["files"] == one["files"]
    manifest = one["manifest"]
    assert isinstance(manifest, dict)
    assert manifest["status"] == "partial"
    assert manifest["rows_scored"] > 2500
    assert manifest["rows_rejected"] > 20
    assert not [t for t in threading.enumerate() if t.name.startswith("score")]


@pytest.mark.timeout(180)
def test_a_file_refused_midway_fails_alike_on_threads(
    tmp_path: Path, boosted: dict[str, LoadedModel], caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid byte near the end: the batches before it are scored and the file is refused
    with the same manifest, whether one thread or two scored it."""
    data = messy_csv(2000, seed=5)
    cut = data.rindex(b"\n", 0, len(data) - 500)
    data = data[:cut] + b"\n\xff" + data[cut + 1 :]
    one = run(tmp_path, data, boosted["boost"], 0, caplog)
    two = run(tmp_path, data, boosted["boost"], 2, caplog)
    assert two["threads"] == [2]
    assert two["manifest"] == one["manifest"]
    assert two["files"] == one["files"]
    manifest = one["manifest"]
    assert isinstance(manifest, dict)
    assert manifest["status"] == "failed"
    assert "NOT_UTF8" in json.dumps(manifest)


def test_threads_yield_every_batch_before_a_read_error_and_stop_when_closed(
    boosted: dict[str, LoadedModel],
) -> None:
    model = boosted["boost"]
    stream = CsvStream(io.BytesIO(messy_csv(1000, seed=6)), batch_size=BATCH)
    plan = plan_file(stream, model.card)
    batches = list(stream.batches())

    def failing():  # type: ignore[no-untyped-def]
        yield from batches[:5]
        raise FileRefused("unreadable from here on")

    got: list[bytes] = []

    def consume() -> None:
        for result in scored_on_threads(failing(), model, plan, 2):
            got.append(result.predictions)

    with pytest.raises(FileRefused, match="unreadable"):
        consume()
    one = [r.predictions for r in scored_on_threads(batches, model, plan, 1)]
    assert got == one[:5]
    # a consumer that stops early (a stop request, the budget) leaves no thread running
    results = scored_on_threads(batches, model, plan, 2)
    assert next(results).predictions == one[0]
    results.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("score")]
