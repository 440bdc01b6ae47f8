"""Decompression benchmark: the scorer's gunzip against Python's, measured in the same run.

    python -m bench.decompress [--rows 1500000] [--repeat 3] [--no-check]

1. Throughput (decompressed MB/s, best of ``--repeat``) on a normal gzip CSV (the sample data,
   ``gzip -6``, 50–100 MB of text) and on the poison file (24,000 tiny members of 20 rows):
     ours         ``scorer.gunzip.Gunzip`` read in 1 MiB pieces (what the reader does)
     gzip.decompress / zlib   Python's one-shot ``gzip.decompress(data)`` and one
                  ``zlib.decompressobj(wbits=31)`` over the whole bytes (single member only)
     GzipFile     ``gzip.GzipFile(...).read(1 MiB)`` in a loop (streaming)
   ratios are ours / baseline (above 1: ours is faster).
2. Peak memory while refusing a bomb: ``python -m scorer score`` of a 5 GiB bomb (~13 MB),
   the process's peak RSS, beside the same command on a 50-row file (the floor).
3. ``scorer check`` on a bucket (a local moto server) holding two poison files, the bomb, a zero
   padded file and a plain one, after ``scorer sweep`` scored them: wall time and peak RSS.
Generated files live in bench/out/ (gitignored); the model is bench.scoring's, reused.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from bench.scoring import OUT, PY, ROOT, _model, _sample
from scorer.gunzip import Gunzip
from scorer.layout import MODELS, Prefixes
from tests.reliability.gzipfiles import bomb, members, padded

MB = 1e6
MiB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decompress", description=__doc__)
    p.add_argument("--rows", type=int, default=1_500_000, help="rows of the normal file")
    p.add_argument("--repeat", type=int, default=3, help="best of N for throughput")
    p.add_argument("--no-check", action="store_true", help="skip the moto/check part")
    args = p.parse_args(argv)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    registry = _model(env, "lr", retrain=False)
    work = OUT / "decompress"
    work.mkdir(parents=True, exist_ok=True)

    normal = work / f"sample-{args.rows}.csv.gz"
    if not normal.exists():
        normal.write_bytes(gzip.compress(_sample(args.rows).read_bytes(), compresslevel=6))
    poison_bytes, poison_rows = members(24_000, 20)
    poison = work / "poison.csv.gz"
    poison.write_bytes(poison_bytes)
    version = sys.version.split()[0]
    print(f"python {version}, zlib {zlib.ZLIB_RUNTIME_VERSION}, {os.cpu_count()} cores")
    print(f"\n1. decompressed MB/s (best of {args.repeat}); ratio = ours / baseline")
    for label, path, single in (
        ("normal", normal, True),
        (f"poison ({poison_rows:,} rows in 24,000 members)", poison, False),
    ):
        _throughput(label, path.read_bytes(), args.repeat, single)

    print("\n2. peak RSS of `python -m scorer score` (one process, workers 0)")
    the_bomb = work / "bomb.csv.gz"
    if not the_bomb.exists():
        the_bomb.write_bytes(bomb(5 * 1024 * MiB))
    small = work / "small.csv"
    small.write_bytes(_sample(100_000).read_bytes()[:4000].rsplit(b"\n", 1)[0] + b"\n")
    for label, src in (("5 GiB bomb, %.1f MB" % (the_bomb.stat().st_size / MB), the_bomb),
                       ("a 4 KB plain file (the floor)", small)):  # fmt: skip
        wall, rss, code, tail = _run_scorer(
            ["score", str(src), "--registry", str(registry), "--model", "claims",
             "--out", str(work / f"out-{src.name}-{time.time_ns()}"), "--workers", "0"],
            env,
        )  # fmt: skip
        print(f"  {label:32s} exit {code}  {wall:6.2f} s  peak RSS {rss:7.1f} MB  {tail}")

    if not args.no_check:
        print("\n3. `scorer check` on a bucket (moto) after `scorer sweep`")
        _check_bucket(registry, env, poison_bytes, the_bomb.read_bytes(), small.read_bytes())
    return 0


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, out = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _ours(data: bytes) -> int:
    import io

    g = Gunzip(io.BytesIO(data).read)
    n = 0
    while piece := g.read(MiB):
        n += len(piece)
    return n


def _gzipfile(data: bytes) -> int:
    import io

    f = gzip.GzipFile(fileobj=io.BytesIO(data))
    n = 0
    while piece := f.read(MiB):
        n += len(piece)
    return n


def _throughput(label: str, data: bytes, repeat: int, single_member: bool) -> None:
    cells: dict[str, float] = {}
    size = 0
    runs: list[tuple[str, Callable[[], int]]] = [
        ("ours", lambda: _ours(data)),
        ("gzip.decompress", lambda: len(gzip.decompress(data))),
        ("GzipFile", lambda: _gzipfile(data)),
    ]
    if single_member:
        runs.append(("zlib", lambda: len(zlib.decompressobj(wbits=31).decompress(data))))
    for name, fn in runs:
        secs, size = _best(fn, repeat)
        cells[name] = size / MB / secs
    ours = cells["ours"]
    print(f"  {label}: {len(data) / MB:.1f} MB → {size / MB:.1f} MB")
    for name, rate in cells.items():
        ratio = "" if name == "ours" else f"  ours/this {ours / rate:5.2f}"
        print(f"    {name:16s} {rate:8.1f} MB/s{ratio}")


def _run_scorer(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall time, peak RSS (MB) and exit code of ``python -m scorer ARGS`` in its own process."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "said = [x for x in p.stderr.splitlines() if x and not x.startswith('{')]\n"
        "tail = ' | '.join(x for x in said if not x.startswith('manifest:'))[:110]\n"
        "print(w, kb / 1024, p.returncode, tail, sep='\\t')\n"
    )
    out = subprocess.run(
        [PY, "-c", code, PY, "-m", "scorer", "--log-format", "json", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    wall, rss, rc, tail = out.stdout.rstrip("\n").split("\t", 3)
    return float(wall), float(rss), int(rc), tail


def _check_bucket(
    registry: Path, env: dict[str, str], poison: bytes, the_bomb: bytes, small: bytes
) -> None:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    exe = shutil.which("moto_server", path=str(Path(PY).parent)) or "moto_server"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        _fill_and_check(proc, url, registry, env, poison, the_bomb, small)


def _fill_and_check(
    proc: subprocess.Popen[bytes],
    url: str,
    registry: Path,
    env: dict[str, str],
    poison: bytes,
    the_bomb: bytes,
    small: bytes,
) -> None:
    import boto3

    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        env = {**env, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
        bucket = "bench-decompress"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for path in sorted(p for p in registry.rglob("*") if p.is_file()):
            key = f"{MODELS}/{path.relative_to(registry).as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        incoming = Prefixes.from_env(env).incoming  # where the sweep below looks
        inputs = {
            f"{incoming}poison-1.csv.gz": poison,
            f"{incoming}poison-2.csv.gz": poison,
            f"{incoming}bomb.csv.gz": the_bomb,
            f"{incoming}padded.csv.gz": padded(gzip.compress(small), 4096),
            f"{incoming}plain.csv": small,
        }
        for key, body in inputs.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        wall, rss, code, tail = _run_scorer(["sweep", "--bucket", bucket], env)
        print(f"  sweep ({len(inputs)} inputs)            exit {code}  {wall:6.2f} s  "
              f"peak RSS {rss:7.1f} MB  {tail}")  # fmt: skip
        wall, rss, code, tail = _run_scorer(["check", "--bucket", bucket], env)
        print(f"  check                           exit {code}  {wall:6.2f} s  "
              f"peak RSS {rss:7.1f} MB  {tail}")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
