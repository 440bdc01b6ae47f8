"""Scoring benchmark: ``scorer score`` against two baselines, measured in the same run.

    python -m bench.scoring [--rows 100000,1000000,3000000] [--quick] [--repeat N]

For each size a sample file (``training.sample_data``, target column dropped) is scored by
  ours   ``python -m scorer score SRC --registry R --model claims --out DEST`` (defaults: the
         model's scoring plan, workers when the cores are idle); also with ``--workers 2``
         forced and with ``--engine pipeline`` (the unpickled PyCaret pipeline); for a model
         that is not linear (``--estimators lightgbm``) also with ``--workers 0``: one thread,
         the path such models took before they were scored on threads
  (a)    naive: ``pd.read_csv`` → PyCaret ``predict_model`` → ``to_csv``
  (b)    lean loop: ``pd.read_csv(chunksize=32768)`` → ``pipeline.predict`` → append to a CSV
each as its own process (tree). Measured: wall time; CPU time (user+sys of the whole tree);
peak memory of the whole process tree, sampled every 50 ms (sum of RSS over the process and all
its children, and the sum of PSS, which counts pages shared by forked workers once); and cold
start to first row = from process start until the output file shows its first data row (polled
every 50 ms; for ours, the predictions file being uploaded). Ratios are ours / baseline in the
same run. Ours' predictions are checked against (a)'s and (b)'s (1e-6 relative).

Subprocesses get a bytecode cache under bench/out/pycache (as the Docker image compiles one), so
imports cost what they cost in production; ``--no-bytecode-cache`` keeps the environment as is.
Generated files and outputs live in bench/out/ (gitignored); samples and the model are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
MODEL = "claims"
SAMPLE_SEED = 7
SAMPLE_MS = 0.05
TARGETS = {  # issue 4, with a linear pipeline
    "vs_naive_at_1m": 1 / 2.5,
    "vs_lean_at_1m": 0.8,
    "rss_mb": 800.0,
}


@dataclass
class Measure:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float | None
    first_row_s: float | None
    exit_code: int
    load_before: float
    max_procs: int = 1  # most processes seen in the tree at once
    notes: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = [100_000] if args.quick else [int(r) for r in args.rows.split(",") if r.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    env.setdefault("PYTHONHASHSEED", "0")
    # the scorer runs with one BLAS thread (scorer/__init__.py); the baselines get the same, so
    # that the comparison is about the code and not about OpenBLAS spinning on sched_yield
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    registry = _model(env, args.estimators, args.retrain)
    model_pkl = _model_pkl(registry)
    print(_header(args, env, _card(registry)))
    _warm_up(registry, model_pkl, env)
    summary: list[tuple[int, dict[str, Measure], dict[str, str]]] = []
    for rows in sizes:
        src = _sample(rows)
        per: dict[str, list[Measure]] = {}
        checks: dict[str, str] = {}
        for rep in range(args.repeat):
            work = OUT / "run" / f"{rows}-{rep}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            runs = _runs(registry, model_pkl, src, work, one_thread=args.estimators != "lr")
            for name, (cmd, first_row) in runs.items():
                per.setdefault(name, []).append(_measure(name, cmd, first_row, env))
            if rep == 0:
                checks = _check(work)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        best = {name: min(ms, key=lambda m: m.wall_s) for name, ms in per.items()}
        print(_table(rows, src, best, checks, args.repeat))
        summary.append((rows, best, checks))
        sys.stdout.flush()
    print(_summary(summary))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="100000,1000000,3000000", help="comma-separated sizes")
    p.add_argument("--quick", action="store_true", help="100k rows only")
    p.add_argument("--repeat", type=int, default=1, help="runs per approach; the fastest is kept")
    p.add_argument("--keep", action="store_true", help="keep the outputs under bench/out/run/")
    p.add_argument("--no-bytecode-cache", action="store_true", help="do not set a pycache dir")
    p.add_argument(
        "--estimators", default="lr", help="the model to train for the benchmark (default lr)"
    )
    p.add_argument("--retrain", action="store_true", help="train the benchmark model again")
    return p


# --- inputs -------------------------------------------------------------------------------------
def _model(env: dict[str, str], estimators: str, retrain: bool) -> Path:
    """A model trained with ``--estimators ESTIMATORS`` (default lr: the issue's linear
    pipeline) in bench/out/models[-ESTIMATORS], trained once and reused."""
    registry = OUT / ("models" if estimators == "lr" else f"models-{estimators}")
    alias = registry / MODEL / "aliases" / "production.json"
    if alias.exists() and not retrain:
        version = json.loads(alias.read_text())["version"]
        card = json.loads((registry / MODEL / str(version) / "card.json").read_text())
        if card.get("plan") or "plan" in card.get("notes", {}):
            return registry
    shutil.rmtree(registry, ignore_errors=True)  # or trained before scoring plans existed
    train_csv = OUT / "train.csv"
    print(f"training the benchmark model (--estimators {estimators}) …", flush=True)
    for cmd in (
        [PY, "-m", "training", "sample-data", "--rows", "20000", "--out", str(train_csv)],
        [
            PY, "-m", "training", "train", "--data", str(train_csv), "--target", "charges",
            "--name", MODEL, "--registry", str(registry), "--alias", "production",
            "--estimators", estimators,
        ],
    ):  # fmt: skip
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return registry


def _card(registry: Path) -> dict[str, Any]:
    alias = json.loads((registry / MODEL / "aliases" / "production.json").read_text())
    card: dict[str, Any] = json.loads(
        (registry / MODEL / str(alias["version"]) / "card.json").read_text()
    )
    return card


def _model_pkl(registry: Path) -> Path:
    alias = json.loads((registry / MODEL / "aliases" / "production.json").read_text())
    return registry / MODEL / str(alias["version"]) / "model.pkl"


def _sample(rows: int) -> Path:
    from training.sample_data import TARGET, generate

    path = OUT / "data" / f"sample-{rows}-s{SAMPLE_SEED}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        generate(rows, seed=SAMPLE_SEED).drop(columns=[TARGET]).to_csv(tmp, index=False)
        tmp.rename(path)
    return path


def _runs(
    registry: Path, model_pkl: Path, src: Path, work: Path, *, one_thread: bool = False
) -> dict[str, tuple[list[str], Callable[[], bool]]]:
    ours_out = work / "ours"
    ours = [
        PY, "-m", "scorer", "--log-format", "json", "score", str(src),
        "--registry", str(registry), "--model", MODEL, "--out", str(ours_out),
    ]  # fmt: skip
    forced_out = work / "ours2"
    forced = [*ours[:-1], str(forced_out), "--workers", "2"]
    pipe_out = work / "ours_pipe"
    pipe = [*ours[:-1], str(pipe_out), "--engine", "pipeline"]
    naive = [PY, "-m", "bench.baselines", "naive", str(model_pkl), str(src), str(work / "a.csv")]
    lean = [PY, "-m", "bench.baselines", "lean", str(model_pkl), str(src), str(work / "b.csv")]
    one_out = work / "ours1"
    one = [*ours[:-1], str(one_out), "--workers", "0"]
    runs = {
        "ours": (ours, lambda: _has_row(ours_out, ".predictions.csv.*.part", "predictions.csv")),
        "ours2": (
            forced,
            lambda: _has_row(forced_out, ".predictions.csv.*.part", "predictions.csv"),
        ),
        "ours_pipe": (
            pipe,
            lambda: _has_row(pipe_out, ".predictions.csv.*.part", "predictions.csv"),
        ),
        "naive": (naive, lambda: _has_row(work, "a.csv")),
        "lean": (lean, lambda: _has_row(work, "b.csv")),
    }
    if one_thread:
        runs["ours1"] = (
            one,
            lambda: _has_row(one_out, ".predictions.csv.*.part", "predictions.csv"),
        )
    return runs


def _warm_up(registry: Path, model_pkl: Path, env: dict[str, str]) -> None:
    """Run each approach once on a small file: fills the bytecode cache and the page cache."""
    work = OUT / "run" / "warm-up"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for cmd, _ in _runs(registry, model_pkl, _sample(2000), work, one_thread=True).values():
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


# --- measuring ----------------------------------------------------------------------------------
def _has_row(folder: Path, *patterns: str) -> bool:
    """True once a file matching a pattern holds a header line and one data line."""
    for pattern in patterns:
        for path in folder.glob(pattern):
            try:
                with open(path, "rb") as fh:
                    if fh.read(1 << 16).count(b"\n") >= 2:
                        return True
            except OSError:
                continue
    return False


def _measure(
    name: str, cmd: list[str], first_row: Callable[[], bool], env: dict[str, str]
) -> Measure:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = OUT / "run" / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "wb") as err:
        proc = psutil.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        peak = {"rss": 0.0, "pss": 0.0, "pss_ok": 1.0, "first": -1.0, "procs": 1.0}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(proc, peak, first_row, t0, stop))
        sampler.start()
        code = proc.wait()
        wall = time.monotonic() - t0
        stop.set()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = Measure(
        name=name,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=peak["rss"] / 1e6,
        peak_pss_mb=peak["pss"] / 1e6 if peak["pss_ok"] else None,
        first_row_s=peak["first"] if peak["first"] >= 0 else None,
        exit_code=code,
        load_before=load,
        max_procs=int(peak["procs"]),
    )
    if code != 0:
        m.notes.append(f"exit code {code}: see {log}")
    return m


def _sample_tree(
    proc: psutil.Popen,
    peak: dict[str, float],
    first_row: Callable[[], bool],
    t0: float,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            tree = []
        rss = pss = 0
        for p in tree:
            try:
                rss += p.memory_info().rss
                if peak["pss_ok"]:
                    pss += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except (psutil.AccessDenied, AttributeError):
                peak["pss_ok"] = 0.0
        peak["procs"] = max(peak["procs"], len(tree))
        peak["rss"] = max(peak["rss"], rss)
        peak["pss"] = max(peak["pss"], pss)
        if peak["first"] < 0 and first_row():
            peak["first"] = time.monotonic() - t0
        stop.wait(SAMPLE_MS)


def _check(work: Path) -> dict[str, str]:
    """Ours' predictions against (a)'s and (b)'s, row by row, 1e-6 relative."""
    pred = work / "ours" / "predictions.csv"
    if not pred.exists():
        return {"naive": "no predictions.csv from ours", "lean": "no predictions.csv from ours"}
    ours = pd.read_csv(pred, usecols=["row_number", "prediction"])
    out: dict[str, str] = {}
    for variant in ("ours2", "ours_pipe", "ours1"):
        if not (work / variant).exists() and variant == "ours1":
            continue  # a linear model: not run
        other = work / variant / "predictions.csv"
        if not other.exists():
            out[variant] = f"no predictions.csv from {variant}"
        elif other.read_bytes() == pred.read_bytes():
            out[variant] = "byte-identical"
        else:
            theirs = pd.read_csv(other, usecols=["row_number", "prediction"])
            same_rows = theirs["row_number"].equals(ours["row_number"])
            rel = np.abs(ours["prediction"] - theirs["prediction"]) / np.maximum(
                np.abs(theirs["prediction"]), np.finfo(float).tiny
            )
            worst = float(rel.max())
            ok = same_rows and worst <= 1e-9
            out[variant] = (
                f"{'OK' if ok else 'FAIL'}: same rows {same_rows}, max relative difference "
                f"{worst:.1e} ({int((rel > 0).sum()):,} rows differ in the last digits)"
            )
    baselines = (("naive", "a.csv", "prediction_label"), ("lean", "b.csv", "prediction"))
    for name, file, col in baselines:
        path = work / file
        if not path.exists():
            out[name] = f"no output from {name}"
            continue
        theirs = pd.read_csv(path, usecols=[col])[col].to_numpy(dtype=float)
        mine = ours["prediction"].to_numpy(dtype=float)
        if len(theirs) != len(mine):
            out[name] = f"FAIL: {len(mine)} rows vs {len(theirs)}"
            continue
        diff = np.abs(mine - theirs)
        rel = diff / np.maximum(np.abs(theirs), np.finfo(float).tiny)
        worst = float(rel.max()) if len(rel) else 0.0
        scale = float(diff.max() / np.abs(theirs).mean()) if len(rel) else 0.0
        off = int((rel > 1e-6).sum())
        if worst <= 1e-6:
            out[name] = f"OK: max relative difference {worst:.1e} over {len(mine):,} rows"
        elif scale <= 1e-6:
            # predict_model casts numeric features to float32 before the pipeline runs
            out[name] = (
                f"OK at the predictions' scale: max |difference| / mean |prediction| = "
                f"{scale:.1e}; {off:,} of {len(mine):,} rows differ by more than 1e-6 "
                f"relative (max {worst:.1e}), all with |prediction| ≤ "
                f"{float(np.abs(theirs[rel > 1e-6]).max()):.3g} (float32 features there)"
            )
        elif name == "naive":
            # trees: a float32-rounded feature can fall on the other side of a split threshold
            out[name] = (
                f"differs on {off:,} of {len(mine):,} rows (max relative {worst:.1e}): "
                "predict_model rounds numeric features to float32 first; (b) calls the "
                "pipeline itself"
            )
        else:
            out[name] = f"FAIL: max relative difference {worst:.1e} ({off:,} rows > 1e-6)"
    return out


# --- printing -----------------------------------------------------------------------------------
LABELS = {
    "ours": "ours (scorer score)",
    "ours2": "ours, --workers 2",
    "ours_pipe": "ours, --engine pipeline",
    "naive": "(a) naive predict_model",
    "lean": "(b) lean loop",
    "ours1": "ours, --workers 0",
}
OURS = ("ours", "ours2", "ours_pipe", "ours1")


def _header(args: argparse.Namespace, env: dict[str, str], card: dict[str, Any]) -> str:
    plan = "with its scoring plan" if card.get("plan") else "no scoring plan"
    targets = "" if args.estimators == "lr" else " (the targets are for a linear pipeline)"
    cache = env.get("PYTHONPYCACHEPREFIX", "off (PYTHONDONTWRITEBYTECODE as set)")
    return (
        f"dropscore scoring benchmark — {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        f"machine: {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews wall times; "
        "CPU s is less sensitive)\n"
        f"model: {MODEL} ({card.get('estimator')} pipeline, {plan}){targets}; "
        f"bytecode cache: {cache}; OPENBLAS_NUM_THREADS={env.get('OPENBLAS_NUM_THREADS')}; "
        f"repeat: {args.repeat} (fastest kept)\n"
        "first row: from process start until the output file shows its first data row "
        "(polled every 50 ms)\n"
        "peak RSS: sum over the process tree (forked workers count shared pages again); "
        "PSS counts them once; procs: most processes seen in the tree (1 + workers)"
    )


def _table(
    rows: int, src: Path, best: dict[str, Measure], checks: dict[str, str], repeat: int
) -> str:
    ours = best["ours"]
    lines = [
        "",
        f"== {rows:,} rows ({src.stat().st_size / 1e6:.1f} MB CSV) ==",
        f"{'approach':<26}{'wall s':>8}{'ours/x':>8}{'rows/s':>11}{'CPU s':>8}"
        f"{'RSS MB':>8}{'PSS MB':>8}{'1st row s':>10}{'procs':>6}{'load':>6}",
    ]
    for name, m in best.items():
        ratio = ours.wall_s / m.wall_s if m.wall_s else float("nan")
        pss, first = _optional(m)
        lines.append(
            f"{LABELS[name]:<26}{m.wall_s:>8.2f}{ratio:>8.2f}{rows / m.wall_s:>11,.0f}"
            f"{m.cpu_s:>8.2f}{m.peak_rss_mb:>8.0f}{pss:>8}{first:>10}{m.max_procs:>6}"
            f"{m.load_before:>6.1f}"
        )
        lines.extend(f"    {note}" for note in m.notes)
    a, b = best["naive"], best["lean"]
    before = best.get("ours1")  # one thread: how a non-linear model was scored before
    for key in (k for k in OURS if k in best):
        m = best[key]
        lines.append(
            f"{LABELS[key]}: /(a) = {m.wall_s / a.wall_s:.2f}, /(b) = {m.wall_s / b.wall_s:.2f}"
            + (f", /(--workers 0) = {m.wall_s / before.wall_s:.2f}" if before else "")
            + f"   (CPU: /(a) = {m.cpu_s / a.cpu_s:.2f}, /(b) = {m.cpu_s / b.cpu_s:.2f}"
            + (f", /(--workers 0) = {m.cpu_s / before.cpu_s:.2f}" if before else "")
            + ")"
        )
    if rows == 1_000_000:
        for key in ("ours", "ours2", "ours_pipe"):
            m = best[key]
            lines.append(
                f"target at 1M, {LABELS[key]}: /(a) ≤ {TARGETS['vs_naive_at_1m']:.2f} → "
                f"{_verdict(m.wall_s / a.wall_s <= TARGETS['vs_naive_at_1m'])}; "
                f"/(b) ≤ {TARGETS['vs_lean_at_1m']:.2f} → "
                f"{_verdict(m.wall_s / b.wall_s <= TARGETS['vs_lean_at_1m'])}"
            )
    if rows >= 1_000_000:
        for key in ("ours", "ours2", "ours_pipe"):
            m = best[key]
            lines.append(
                f"target: peak RSS of the tree ≤ {TARGETS['rss_mb']:.0f} MB, {LABELS[key]} → "
                f"{_verdict(m.peak_rss_mb <= TARGETS['rss_mb'])} ({m.peak_rss_mb:.0f} MB)"
            )
    for name, verdict in checks.items():
        lines.append(f"predictions of ours vs {LABELS[name]}: {verdict}")
    return "\n".join(lines)


def _optional(m: Measure) -> tuple[str, str]:
    """PSS and first-row time as printed ("n/a" when they could not be measured)."""
    pss = f"{m.peak_pss_mb:.0f}" if m.peak_pss_mb is not None else "n/a"
    first = f"{m.first_row_s:.2f}" if m.first_row_s is not None else "n/a"
    return pss, first


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _summary(summary: list[tuple[int, dict[str, Measure], dict[str, str]]]) -> str:
    lines = [
        "",
        "== summary (wall s; ratios ours/baseline, same run) ==",
        f"{'rows':>10}  {'approach':<24}{'wall s':>8}{'/(a)':>7}{'/(b)':>7}{'CPU s':>8}"
        f"{'RSS MB':>8}{'PSS MB':>8}{'1st row':>8}{'procs':>6}",
    ]
    for rows, best, _ in summary:
        a, b = best["naive"], best["lean"]
        for key, m in best.items():
            pss, first = _optional(m)
            lines.append(
                f"{rows:>10,}  {LABELS[key]:<24}{m.wall_s:>8.2f}{m.wall_s / a.wall_s:>7.2f}"
                f"{m.wall_s / b.wall_s:>7.2f}{m.cpu_s:>8.2f}{m.peak_rss_mb:>8.0f}{pss:>8}"
                f"{first:>8}{m.max_procs:>6}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
