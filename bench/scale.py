"""Scale-out benchmark: one file scored by one process and by a local Dask cluster, same run.

    python -m bench.scale [--rows 10000000] [--shard-over-mb 64] [--model lr|lightgbm] [--keep]
                          [--registry DIR] [--out DIR]
    python -m bench.scale --plan-only [--rows N] [--shard-over-mb S] [--profile]

A sample file (``training.sample_data``, target dropped, plus a free-text ``note`` column in which
about one row in 40 holds a quoted cell with commas and an embedded newline; one row in 997 has
an age that is not a number, so rejected.csv is compared too) is generated in
chunks, so memory stays flat at any size. It is scored twice, each as its own process:
  none    ``python -m scorer score SRC … --cluster none``
  local   ``python -m scorer score SRC … --cluster local:2 --shard-over-mb S``
and the outputs are checked byte for byte (sha256 of predictions.csv / rejected.csv; the
manifests' counts). Figures, each measured in this run, never compared with a stopwatch figure
from elsewhere:
  wall time of each run, and the overhead ratio local / none (issue 14's target: ≤ 1.25× on 2 cores,
  where no speed-up is possible); CPU of each process tree; shards (from the manifest);
  cluster start-up — ``LocalCluster`` with 2 workers started and stopped in this process;
  planning pass — the run's own reader cutting the file into shards (``scorer.shards.plan_shards``),
  in this process, in MB of input per second and per CPU-second;
  per-shard throughput — one middle shard scored by ``scorer.shards.score_shard`` in this process
  (what one single-threaded Dask worker does with it), rows per second and per CPU-second;
  coordinator composing — MB of output the coordinator writes, divided by the coordinator's own
  CPU seconds (its children, the Dask workers, excluded) less the planning pass's CPU: the rate
  at which one process can take scored batches back and stream them into the outputs. Its own
  CPU also holds imports, the model load and Dask's bookkeeping, so the rate is a lower bound.
``--plan-only`` times the planning pass alone (no model, no runs), in this process, and with
``--profile`` prints where its time goes (cProfile, by own time).
Generated files live in bench/out/scale/ (gitignored) and are reused; outputs are removed unless
``--keep``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.scoring import MODEL, OUT, PY, ROOT, _model

SCALE = OUT / "scale"
CHUNK_ROWS = 250_000
NOTE_EVERY = 40  # one row in NOTE_EVERY has a quoted cell with a comma and a newline
TARGET_RATIO = 1.25  # issue 14
BAD_EVERY = 997  # one row in BAD_EVERY has an age that is not a number: rejected.csv has rows
MB = 1_000_000
# what must be equal between the two manifests (timings, workers and shards may differ)
COMPARED = (
    "status", "reason", "rows_in", "rows_scored", "rows_rejected", "rejected_by_code",
    "warnings_by_code", "warnings_by_column", "extra_columns", "alerts", "distributions",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    name: str
    wall_s: float
    coordinator_cpu_s: float  # the scorer process itself, its children excluded
    tree_cpu_s: float  # the scorer and every process under it (the Dask workers)
    exit_code: int
    out: Path
    stderr: str


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.out) if args.out else SCALE
    root.mkdir(parents=True, exist_ok=True)
    if args.plan_only:
        src = sample(args.rows, root / "data")
        return plan_only(src, args.rows, args.shard_over_mb, profile=args.profile)
    env = _env()
    registry = Path(args.registry) if args.registry else _model(env, args.model, retrain=False)
    src = sample(args.rows, root / "data")
    size = src.stat().st_size
    print(
        f"# bench.scale: {args.rows:,} rows, {size / MB:.1f} MB ({src.name}), model "
        f"--estimators {args.model}, shards over {args.shard_over_mb} MB, cores "
        f"{len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    work = root / "run" / f"{args.rows}-{args.model}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base = [
        PY, "-m", "scorer", "--log-format", "json", "score", str(src),
        "--registry", str(registry), "--model", MODEL,
    ]  # fmt: skip
    none = _measure("none", [*base, "--out", str(work / "none"), "--cluster", "none"], env)
    local = _measure(
        "local:2",
        [
            *base, "--out", str(work / "local"), "--cluster", "local:2",
            "--shard-over-mb", str(args.shard_over_mb),
        ],
        env,
    )  # fmt: skip
    parts = in_process(src, registry, args.shard_over_mb)
    same, why = identical(none.out, local.out)
    print(report(args.rows, size, none, local, parts, same, why), flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same and none.exit_code == 0 and local.exit_code == 0 else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--shard-over-mb", type=float, default=64.0, help="the run's shard size (MB)")
    p.add_argument(
        "--model", default="lr", help="--estimators of the benchmark model: lr (a linear scoring "
        "plan, the default) or lightgbm",
    )  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the outputs under bench/out/scale/")
    p.add_argument(
        "--registry", help="score with this registry's claims:production instead of training one"
    )
    p.add_argument("--out", help="folder for the sample and the outputs (default bench/out/scale)")
    p.add_argument(
        "--plan-only", action="store_true", help="time the planning pass alone, in this process"
    )
    p.add_argument("--profile", action="store_true", help="with --plan-only: where the time goes")
    return p


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


# --- the input ----------------------------------------------------------------------------------
def sample(rows: int, folder: Path, seed: int = 7) -> Path:
    """A sample file of ``rows`` rows with quoted multi-line cells, written chunk by chunk."""
    from training.sample_data import TARGET, generate

    path = folder / f"quoted-{rows}-s{seed}.csv"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")  # QUOTE_MINIMAL: quotes only where needed
        first = 0
        for i in range((rows + CHUNK_ROWS - 1) // CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - first)
            frame = generate(n, seed=seed + i).drop(columns=[TARGET])
            if i == 0:
                writer.writerow([*frame.columns, "note"])
            notes = [
                f'called {r}, asked "why"\nsecond line' if r % NOTE_EVERY == 0 else ""
                for r in range(first + 1, first + n + 1)
            ]
            frame["note"] = notes
            ages = frame["age"].astype(str).to_numpy(dtype=object)
            ages[[r - first - 1 for r in range(first + 1, first + n + 1) if r % BAD_EVERY == 0]] = (
                "n/a"
            )
            frame["age"] = ages
            writer.writerows(frame.itertuples(index=False, name=None))
            first += n
    tmp.rename(path)
    return path


# --- the runs -----------------------------------------------------------------------------------
def _measure(name: str, cmd: list[str], env: dict[str, str]) -> Run:
    print(f"  running {name} …", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu = [0.0, 0.0]
    done = threading.Event()

    def poll() -> None:  # CPU seconds last seen: the coordinator's own, and its whole tree
        try:
            me = psutil.Process(proc.pid)
            while not done.is_set():
                t = me.cpu_times()
                tree = t.user + t.system + t.children_user + t.children_system
                for child in me.children(recursive=True):
                    try:
                        c = child.cpu_times()
                        tree += c.user + c.system
                    except psutil.Error:
                        pass
                cpu[0], cpu[1] = t.user + t.system, max(cpu[1], tree)
                done.wait(0.05)
        except psutil.Error:
            pass

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    out = Path(cmd[cmd.index("--out") + 1])
    if proc.returncode != 0:
        print(f"  {name} exited {proc.returncode}:\n{err.decode()[-2000:]}", flush=True)
    # printed now: a run of 10 M rows takes minutes, its figure must survive a later failure
    print(
        f"  {name}: exit {proc.returncode}, wall {wall:.1f} s, CPU {cpu[0]:.1f} s coordinator / "
        f"{cpu[1]:.1f} s whole tree",
        flush=True,
    )
    return Run(name, wall, cpu[0], cpu[1], proc.returncode, out, err.decode(errors="replace"))


def identical(a: Path, b: Path) -> tuple[bool, str]:
    """Whether two run folders hold the same outputs and the same counts."""
    for name in ("predictions.csv", "rejected.csv"):
        ha, hb = _sha256(a / name), _sha256(b / name)
        if ha != hb:
            return False, f"{name} differs ({ha} vs {hb})"
    ma, mb = _manifest(a), _manifest(b)
    if not ma or not mb:
        return False, "a manifest is missing"
    for key in COMPARED:
        if ma.get(key) != mb.get(key):
            return False, f"manifest '{key}' differs"
    for name, out in ma.get("outputs", {}).items():  # the URLs differ (two folders), not the bytes
        other = mb.get("outputs", {}).get(name, {})
        if (out.get("sha256"), out.get("bytes")) != (other.get("sha256"), other.get("bytes")):
            return False, f"manifest outputs.{name} differs"
    return True, "predictions.csv, rejected.csv and the manifests' counts identical"


def _sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


# --- the parts, in this process -----------------------------------------------------------------
@dataclass(frozen=True)
class Parts:
    cluster_start_s: float
    plan_s: float
    plan_cpu_s: float  # CPU seconds: the figure that does not depend on the machine's load
    shards: int
    shard_rows: int
    shard_s: float
    shard_cpu_s: float


def in_process(src: Path, registry: Path, shard_over_mb: float) -> Parts:
    from scorer import cluster, dialect, shards
    from scorer.reader import CsvStream
    from scorer.registry import Registry
    from scorer.runs import BATCH_ROWS

    reg = Registry(str(registry))
    card = reg.resolve(f"{MODEL}:production")
    model = reg.load(card, "plan" if card.plan else "pipeline")
    size = src.stat().st_size
    url = str(src)
    t0, c0 = time.perf_counter(), time.process_time()
    with src.open("rb") as fh:
        stream = CsvStream(fh, size, batch_size=BATCH_ROWS, delimiter=dialect.delimiter_rule(card))
        plan = dialect.plan_file(stream, card)
        header_end, header_lines = shards.header_of(url, None, None, stream.delimiter)
        cut = shards.plan_shards(stream, int(shard_over_mb * MB), header_end, header_lines, size)
    plan_s, plan_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    source = shards.Source(url, None, None, header_end, stream.delimiter)
    middle = max(cut, key=lambda s: sum(u.records for u in s.units))  # a full one, not the tail
    t0, c0 = time.perf_counter(), time.process_time()
    results = shards.score_shard(shards.ShardJob(source, middle, plan, BATCH_ROWS), model)
    shard_s, shard_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    rows = sum(u.records for u in middle.units)
    del results
    t0 = time.perf_counter()
    made = cluster.client(cluster.parse("local:2"))
    made.wait_for_workers(2)
    start_s = time.perf_counter() - t0
    cluster.close_all()
    return Parts(start_s, plan_s, plan_cpu_s, len(cut), rows, shard_s, shard_cpu_s)


def plan_pass(src: Path, shard_over_mb: float) -> tuple[list[Any], float, float]:
    """The coordinator's planning pass over ``src`` as a run makes it (the reader with the run's
    batch size, default comma dialect): (shards, wall s, CPU s)."""
    from scorer import shards
    from scorer.reader import CsvStream
    from scorer.runs import BATCH_ROWS

    size = src.stat().st_size
    t0, c0 = time.perf_counter(), time.process_time()
    with src.open("rb") as fh:
        stream = CsvStream(fh, size, batch_size=BATCH_ROWS)
        header_end, header_lines = stream.handed_out, stream.lines_out
        cut = shards.plan_shards(stream, int(shard_over_mb * MB), header_end, header_lines, size)
    return cut, time.perf_counter() - t0, time.process_time() - c0


def plan_only(src: Path, rows: int, shard_over_mb: float, *, profile: bool) -> int:
    size = src.stat().st_size
    plan_pass(src, shard_over_mb)  # imports and the page cache warm
    cut, wall, cpu = plan_pass(src, shard_over_mb)
    print(
        f"planning pass, {rows:,} rows, {size / MB:.1f} MB: {len(cut)} shards, {wall:.2f} s, "
        f"{cpu:.2f} s CPU ({size / MB / wall:.0f} MB/s in wall, {size / MB / cpu:.0f} MB per "
        f"CPU-s); load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(plan_pass, src, shard_over_mb)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(14)
    return 0


# --- the report ---------------------------------------------------------------------------------
def report(rows: int, size: int, none: Run, local: Run, parts: Parts, same: bool, why: str) -> str:
    out_mb = sum(
        (local.out / n).stat().st_size for n in ("predictions.csv", "rejected.csv")
        if (local.out / n).exists()
    ) / MB  # fmt: skip
    shards_run = _manifest(local.out).get("shards")
    ratio = local.wall_s / none.wall_s
    composing_s = max(local.coordinator_cpu_s - parts.plan_cpu_s, 1e-9)
    lines = [
        "",
        f"| figure ({rows:,} rows, {size / MB:.0f} MB in, {out_mb:.0f} MB out) | value |",
        "| --- | --- |",
        f"| wall, --cluster none | {none.wall_s:.1f} s ({rows / none.wall_s:,.0f} rows/s) |",
        f"| wall, --cluster local:2 | {local.wall_s:.1f} s ({rows / local.wall_s:,.0f} rows/s) |",
        f"| overhead local:2 / none | {ratio:.2f}x (target <= {TARGET_RATIO}x) |",
        f"| CPU, whole process tree, none / local:2 | {none.tree_cpu_s:.1f} s / "
        f"{local.tree_cpu_s:.1f} s ({local.tree_cpu_s / max(none.tree_cpu_s, 1e-9):.2f}x) |",
        f"| shards (manifest) | {shards_run} |",
        f"| per-shard throughput (1 worker, 1 thread) | {parts.shard_rows / parts.shard_s:,.0f} "
        f"rows/s wall, {parts.shard_rows / parts.shard_cpu_s:,.0f} rows per CPU-s "
        f"({parts.shard_rows:,} rows in {parts.shard_s:.2f} s, {parts.shard_cpu_s:.2f} s CPU) |",
        f"| cluster start-up (LocalCluster, 2 workers) | {parts.cluster_start_s:.2f} s |",
        f"| planning pass | {parts.plan_s:.2f} s, {parts.plan_cpu_s:.2f} s CPU "
        f"({size / MB / parts.plan_s:.0f} MB/s in wall, {size / MB / parts.plan_cpu_s:.0f} per "
        "CPU-s) |",
        f"| coordinator CPU, none / local:2 | {none.coordinator_cpu_s:.1f} s / "
        f"{local.coordinator_cpu_s:.1f} s |",
        f"| coordinator composing (lower bound) | {out_mb / composing_s:.0f} MB/s out "
        f"({out_mb:.0f} MB / {composing_s:.1f} s CPU) |",
        "",
        "(wall figures depend on the machine's load; CPU figures much less)",
        f"ratio local:2 / none: {ratio:.2f}x",
        f"outputs: {'IDENTICAL' if same else 'DIFFERENT'} ({why})",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
