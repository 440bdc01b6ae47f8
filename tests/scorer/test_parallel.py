"""Scoring with forked workers gives the same bytes as scoring in one process: predictions,
rejected rows, manifest counts and refusals, on files that span many batches."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from scorer import runs, storage
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from scorer.reader import CsvStream
from scorer.units import parse_unit

BATCH = 64  # small batches, so that a few thousand rows make dozens of them
TIMINGS = {  # and how the run was executed
    "started_at", "finished_at", "duration_s", "rows_per_s", "peak_memory_mb", "workers",
    "workers_peak_memory_mb",
}  # fmt: skip


def messy_csv(rows: int, seed: int) -> bytes:
    """Sample rows with bad rows, quoted cells, blank lines, CRLF and risky cells mixed in."""
    from training.sample_data import generate

    rnd = random.Random(seed)
    frame = generate(rows, seed=seed).drop(columns=["charges"])
    lines = [",".join(frame.columns) + ",note\n"]
    for rec in frame.astype(str).itertuples(index=False):
        cells = [*rec, rnd.choice(["", "ok", "=1+1", '"a, b"', '"two\nlines"', "-5", "@x"])]
        k = rnd.random()
        if k < 0.02:
            cells[0] = "forty"  # wrong type
        elif k < 0.03:
            cells[2] = "inf"  # non-finite
        elif k < 0.04:
            cells = cells[:-2]  # too few fields
        elif k < 0.05:
            cells[5] = "atlantis"  # unseen category
        elif k < 0.06:
            lines.append("\n")  # a blank line is no record
        end = "\r\n" if rnd.random() < 0.1 else "\n"
        lines.append(",".join(cells) + end)
    return "".join(lines).encode()


def score(tmp: Path, data: bytes, model: LoadedModel, workers: int) -> dict[str, object]:
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / f"out-{workers}"
    result = runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        "claims-v1-parallel",
        info=storage.head(str(src)),
        batch_rows=BATCH,
        workers=workers,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"}
    for entry in manifest.get("outputs", {}).values():
        entry.pop("url")
    assert result.manifest.workers == workers
    peak = result.manifest.workers_peak_memory_mb
    assert peak is None if not workers else peak > 10
    return {
        "status": result.manifest.status,
        "manifest": {k: v for k, v in manifest.items() if k not in TIMINGS},
        "files": files,
    }


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_workers_write_the_same_bytes_as_one_process(
    tmp_path: Path, claims_model: LoadedModel, workers: int
) -> None:
    data = messy_csv(3000, seed=11)
    serial = score(tmp_path, data, claims_model, workers=0)
    parallel = score(tmp_path, data, claims_model, workers=workers)
    assert serial["status"] == "partial"
    assert serial["manifest"]["rows_in"] > 40 * BATCH  # type: ignore[index]
    assert set(serial["files"]) == {"predictions.csv", "rejected.csv"}  # type: ignore[arg-type]
    assert parallel == serial


@pytest.mark.parametrize(
    ("name", "tail", "code"),
    [
        ("quote-left-open-late", b'40,male,"30.5,2,no,southeast,x\n', "MALFORMED_CSV"),
        ("invalid-utf8-late", b"40,m\xe4nnlich,30.5,2,no,southeast,x\n", "NOT_UTF8"),
    ],
    ids=["quote-left-open-late", "invalid-utf8-late"],
)
def test_a_file_refused_late_is_refused_the_same_way_with_workers(
    tmp_path: Path, claims_model: LoadedModel, name: str, tail: bytes, code: str
) -> None:
    data = messy_csv(1500, seed=3) + tail + messy_csv(200, seed=4).split(b"\n", 1)[1]
    serial = score(tmp_path, data, claims_model, workers=0)
    parallel = score(tmp_path, data, claims_model, workers=2)
    assert serial["status"] == "failed"
    assert serial["manifest"]["reason"]["code"] == code  # type: ignore[index]
    assert parallel == serial


def test_units_hold_the_batches_that_batches_gives() -> None:
    """Cutting a file into unparsed batches and parsing them elsewhere changes nothing."""
    rnd = random.Random(7)
    pieces = ["a", "1", "2.5", "", " ", '"q,1"', '"multi\nline"', '"x""y"', '"bad"x', 'a"b', "é"]
    seps = [",", ",", "\n", "\r\n", "\r", "\n\n"]
    for _ in range(500):
        text = "h1,h2,h3\n" + "".join(
            rnd.choice(pieces) + rnd.choice(seps) for _ in range(rnd.randint(0, 40))
        )
        data = text.encode()
        if rnd.random() < 0.1:
            at = rnd.randint(0, len(data))
            data = data[:at] + b"\xff" + data[at:]
        for size in (1, 3, 50):
            assert _read(data, size, units=True) == _read(data, size, units=False), data


def _read(data: bytes, size: int, *, units: bool) -> object:
    try:
        stream = CsvStream(io.BytesIO(data), batch_size=size)
        batches = map(parse_unit, stream.units()) if units else stream.batches()
        got = [(b.records, b.row_numbers, b.lines) for b in batches]
        return got, stream.rows_read, stream.drain()
    except Exception as exc:  # the refusal, compared by type and message
        return type(exc).__name__, str(exc)


def test_no_workers_for_small_files_or_from_a_thread_pool() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from scorer.workers import PARALLEL_MIN_BYTES, auto_workers

    assert auto_workers(PARALLEL_MIN_BYTES - 1) == 0
    assert auto_workers(None) == 0
    with ThreadPoolExecutor(1) as pool:  # like ``sweep``: forking there is not safe
        assert pool.submit(auto_workers, 10 * PARALLEL_MIN_BYTES).result() == 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["plan", "pipeline"])
def test_a_model_whose_library_is_not_fork_safe_is_scored_in_one_process(
    tmp_path: Path, nonlinear_registry: str, engine: str
) -> None:
    """LightGBM starts an OpenMP thread pool when it is loaded; a process forked after that
    hangs in its first prediction. Such a model is scored without workers, even when asked."""
    from scorer.registry import Registry

    reg = Registry(nonlinear_registry)
    model = reg.load(reg.resolve("boost"), engine=engine)
    data = messy_csv(600, seed=2)
    for asked in (2, None):
        out = tmp_path / f"out-{engine}-{asked}"
        src = tmp_path / "in.csv"
        src.write_bytes(data)
        result = runs.score(
            ObjectVersion("", str(src)), str(out), model, f"boost-v1-{asked}",
            info=storage.head(str(src)), batch_rows=BATCH, workers=asked,
        )  # fmt: skip
        assert result.manifest.status == "partial"
        assert result.manifest.workers == 0


def test_counts_sent_back_by_a_worker_keep_their_card() -> None:
    """A worker's distribution counts cross back pickled; the copy keeps its card, so it can
    count further batches and be merged into like the original (it used to lose its card)."""
    import pickle

    import numpy as np

    from scorer.card import ModelCard
    from scorer.drift import Distributions
    from tests.conftest import make_classification_frame

    card = ModelCard.from_json((Path(__file__).parent / "data/card_from_main.json").read_bytes())
    rng = np.random.default_rng(3)
    batches = [
        (frame.drop(columns=[card.target]), rng.choice(np.asarray(card.classes), len(frame)))
        for frame in (make_classification_frame(120, seed=s) for s in (7, 8, 9))
    ]
    whole = Distributions(card)
    for frame, values in batches:
        whole.add(frame, values)
    first = Distributions(card)
    first.add(*batches[0])
    sent = pickle.loads(pickle.dumps(first))
    sent.add(*batches[1])
    last = Distributions(card)
    last.add(*batches[2])
    sent.merge(pickle.loads(pickle.dumps(last)))
    assert sent.as_dict() == whole.as_dict()
    assert sum(whole.as_dict()["prediction"]["counts"]) == 360


@pytest.mark.timeout(120)
def test_a_run_ending_on_one_thread_leaves_the_heap_frozen_for_a_run_on_another(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    """A run freezes the cyclic collector's view of the heap (so the model and the libraries
    are not rescanned every few batches); the UI and watch run runs on threads, so a run that
    ends must not thaw the heap under another one still scoring."""
    import gc
    import threading

    data = messy_csv(400, seed=4)
    before = gc.get_freeze_count()
    a_scoring, b_done = threading.Event(), threading.Event()
    frozen_in_a: list[int] = []

    def progress(_bytes: int, _rows: int) -> None:
        if not a_scoring.is_set():  # A's first batch: wait for B to run whole, then look
            a_scoring.set()
            b_done.wait(60)
            frozen_in_a.append(gc.get_freeze_count())

    def run(name: str, watch: runs.Progress | None) -> runs.RunResult:
        src = tmp_path / f"{name}.csv"
        src.write_bytes(data)
        return runs.score(
            ObjectVersion("", str(src)), str(tmp_path / f"out-{name}"), claims_model,
            f"claims-v1-{name}", info=storage.head(str(src)), batch_rows=BATCH, workers=0,
            progress=watch,
        )  # fmt: skip

    results: dict[str, runs.RunResult] = {}
    a = threading.Thread(target=lambda: results.update(a=run("a", progress)))
    a.start()
    assert a_scoring.wait(60)
    b = threading.Thread(target=lambda: results.update(b=run("b", None)))
    b.start()
    b.join(60)
    b_done.set()
    a.join(60)
    assert results["a"].manifest.status == results["b"].manifest.status == "partial"
    assert frozen_in_a[0] > before  # B's end did not thaw A's heap
    assert gc.get_freeze_count() == before  # the last run to end thawed it
