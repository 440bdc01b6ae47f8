"""Byte identity of scoring between two trees: BASE (a git ref) and a working tree.

    make identity [BASE=<git ref>]    # this worktree vs BASE (default: merge-base with main)
    python -m bench.identity --base REF [--tree PATH] [--rows N] [--jobs N] [--keep]

Another helper compares their worktree against BASE from here, without merging anything:

    cd /work/wt/r-golden && .venv/bin/python -m bench.identity --base aa5dafd --tree /work/wt/<you>

Both trees are driven through the public CLI contract only (``python -m scorer score SRC --registry
R --model M --out DEST``, ``python -m training train …``), each with ``cwd`` and ``PYTHONPATH`` set
to its own tree and the same interpreter (this one, so the same venv). BASE is checked out with
``git worktree add --detach`` into a temporary folder that is removed afterwards, so BASE need not
contain this script; ``--tree`` (default: the tree holding this script, uncommitted changes
included) is scored as it is on disk.

Models are trained once per run by one tree's training CLI (``--train-with tree``, the default, or
``base``) into one local registry that both trees score with: ``claims`` (linear regression: a
format-1 plan), ``smoker`` (a classifier: labels and per-class probabilities) and ``boost``
(LightGBM regression: a format-2 plan whose head is the estimator). The corpus (written once,
scored by both): the benchmark's sample file (``training sample-data``, target dropped) at
``--rows`` rows, scored in-process and with two workers; a quoted/CRLF/multi-line variant; a few
shapes of messy real data; and every case of the hostile corpus (tests/reliability/hostile.py).

Compared for every (model, input): the exit code, the set of files written (hidden ones too),
predictions.csv, rejected.csv and any other file byte for byte, and manifest.json byte for byte
after masking the values of the keys in ``VOLATILE`` (and nothing else). Exit 0 only if every
case is identical; otherwise a table, then a short diff for the first differences. Work files
live in bench/out/identity/<tree folder name>/ (gitignored; ``--work`` elsewhere), locked while a
run uses them; ``--keep`` keeps the outputs there for a look.

It can fail: tests/bench/test_identity.py changes one digit, one count, one file and one exit
code in a copy of real outputs and sees each reported; and by hand, a scratch worktree whose
scorer/output.py wrote ``np.round(score, 12)`` for prediction_score (``--tree`` that worktree,
``--no-hostile --rows 20000``) reported exactly the 8 classifier cases of 24 as different, exit 1.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import fcntl
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from scorer.layout import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEFAULT_BASE = "aa5dafd"  # main when issue 13 started; `make identity` passes the merge-base

# Manifest keys whose values legitimately differ between two runs of the same code on the same
# input (found by scoring this corpus twice with one tree and diffing): the clock, the speed and
# memory measured, what the time taken is billed, and the version string of the code itself.
# Masked by key name wherever they occur (no feature or column is named like these); only scalar
# values are masked, so a key that turns into an object shows up as a difference.
VOLATILE = (
    "started_at",
    "finished_at",
    "duration_s",
    "rows_per_s",
    "peak_memory_mb",
    "workers_peak_memory_mb",
    "billed_s",
    "scorer_version",
)
_SCALAR = r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null'
_MASK = re.compile(r'("(?:' + "|".join(VOLATILE) + r')"\s*:\s*)(?:' + _SCALAR + ")")
MASKED = '"<masked>"'


@dataclass(frozen=True)
class Model:
    """A model trained for the run: name, training data, target, estimator."""

    name: str
    data: str  # "full" (with the target 'charges') or "features" (without it)
    target: str
    estimator: str


MODELS = (
    Model("claims", "full", "charges", "lr"),
    Model("smoker", "features", "smoker", "lr"),
    Model("boost", "full", "charges", "lightgbm"),
)


@dataclass(frozen=True)
class Case:
    """One scoring: input file, model, extra CLI options; ``slug`` names its DEST folder."""

    slug: str
    title: str
    src: Path
    model: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ran:
    """What one CLI call returned."""

    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Outcome:
    """One case compared: ``problems`` is empty when identical; ``diff`` shows the first one."""

    case: Case
    problems: tuple[str, ...]
    diff: str = ""
    notes: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return not self.problems


# --- the comparison (pure over two folders) ------------------------------------------------------
def mask_manifest(text: str) -> str:
    """The manifest's text with the values of the ``VOLATILE`` keys replaced, nothing else."""
    return _MASK.sub(lambda m: m.group(1) + MASKED, text)


def files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden ones too), as sorted relative POSIX paths."""
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def compare_case(case: Case, base: Path, tree: Path, ran_base: Ran, ran_tree: Ran) -> Outcome:
    """Compare one case's outputs: exit code, file set, every file's bytes (manifest masked)."""
    problems: list[str] = []
    diff = ""
    if ran_base.code != ran_tree.code:
        problems.append(f"exit code {ran_base.code} → {ran_tree.code}")
        diff = _text_diff(ran_base.stderr[-2000:], ran_tree.stderr[-2000:], "stderr")
    names_base, names_tree = files_under(base), files_under(tree)
    if names_base != names_tree:
        only_b = sorted(set(names_base) - set(names_tree))
        only_t = sorted(set(names_tree) - set(names_base))
        problems.append(f"files: only in base {only_b}, only in tree {only_t}")
    # the manifest last (as it is written): the diff shown is then the data's, when both differ
    for name in sorted(set(names_base) & set(names_tree), key=lambda n: (n.endswith(MANIFEST), n)):
        a, b = (base / name).read_bytes(), (tree / name).read_bytes()
        if name.endswith(MANIFEST):
            a, b = (_masked_bytes(x) for x in (a, b))
        if a != b:
            problems.append(f"{name} differs ({len(a):,} vs {len(b):,} bytes)")
            diff = diff or _bytes_diff(a, b, name)
    notes = []
    if ran_base.stdout != ran_tree.stdout:
        notes.append("stdout differs")
    if _error_lines(ran_base.stderr) != _error_lines(ran_tree.stderr):
        notes.append("stderr's error line differs")
    return Outcome(case, tuple(problems), diff, tuple(notes))


def _masked_bytes(raw: bytes) -> bytes:
    # surrogateescape: any byte that is not UTF-8 survives the round trip and is compared
    return mask_manifest(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error")]


def _bytes_diff(a: bytes, b: bytes, name: str, context: int = 3, width: int = 160) -> str:
    """A unified diff of a few lines around the first differing line (files may be large), cut
    to ``width`` characters around the first differing character of that line."""
    la, lb = a.split(b"\n"), b.split(b"\n")
    first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), None)
    if first is None:
        first = min(len(la), len(lb))  # one is a prefix of the other
    lo = max(0, first - context)
    hi = first + context + 1
    x, y = (la[first] if first < len(la) else b""), (lb[first] if first < len(lb) else b"")
    col = next(
        (j for j, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y))
    )
    start = max(0, col - width // 2)

    def cut(lines: list[bytes]) -> list[str]:
        return [line[start : start + width].decode("utf-8", "replace") for line in lines[lo:hi]]

    where = f"{name} (from line {lo + 1}" + (f", column {start + 1})" if start else ")")
    return _text_diff("\n".join(cut(la)), "\n".join(cut(lb)), where)


def _text_diff(a: str, b: str, name: str) -> str:
    lines = difflib.unified_diff(
        a.splitlines(), b.splitlines(), f"base/{name}", f"tree/{name}", lineterm="", n=3
    )
    return "\n".join(list(lines)[:40])


# --- running a tree ------------------------------------------------------------------------------
def tree_env(tree: Path) -> dict[str, str]:
    """The environment a tree's CLI runs in: its own code first, no DROPSCORE_* settings from
    the caller's shell (they would change what is compared), one BLAS thread like production."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSCORE_")}
    env["PYTHONPATH"] = str(tree)
    env["PYTHONHASHSEED"] = "0"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def cli(tree: Path, *args: str, timeout: float = 900) -> Ran:
    proc = subprocess.run(
        [PY, "-m", *args],
        cwd=tree,
        env=tree_env(tree),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def score_all(
    tree: Path, cases: Sequence[Case], registry: Path, dest: Path, jobs: int = 1
) -> dict[str, Ran]:
    """Score every case with ``tree``'s CLI into ``dest/<slug>``; returns each call's result."""

    def one(case: Case) -> tuple[str, Ran]:
        out = dest / case.slug
        out.parent.mkdir(parents=True, exist_ok=True)
        ran = cli(
            tree, "scorer", "score", str(case.src), "--registry", str(registry),
            "--model", case.model, "--out", str(out), *case.args,
        )  # fmt: skip
        return case.slug, ran

    done: dict[str, Ran] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for slug, ran in pool.map(one, cases):
            done[slug] = ran
            if len(done) % 50 == 0:  # a long run says it is alive
                print(f"    {len(done)}/{len(cases)}")
    return done


def run_twice(
    trees: dict[str, Path], cases: Sequence[Case], registry: Path, work: Path, jobs: int
) -> dict[str, dict[str, Ran]]:
    """Score the cases with each tree into the SAME dest path (paths are written into the
    manifests), moving each tree's results aside to ``work/<label>`` before the next."""
    dest = work / "dest"
    results: dict[str, dict[str, Ran]] = {}
    for label, tree in trees.items():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(work / label, ignore_errors=True)
        t0 = time.monotonic()
        results[label] = score_all(tree, cases, registry, dest, jobs)
        print(f"  scored {len(cases)} cases with {label} ({tree}) in {time.monotonic() - t0:.0f} s")
        dest.mkdir(parents=True, exist_ok=True)
        dest.rename(work / label)
    return results


def compare_all(
    cases: Sequence[Case], work: Path, results: dict[str, dict[str, Ran]], a: str, b: str
) -> list[Outcome]:
    return [
        compare_case(case, work / a / case.slug, work / b / case.slug,
                     results[a][case.slug], results[b][case.slug])
        for case in cases
    ]  # fmt: skip


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """``ref`` checked out (detached) in a temporary worktree, removed afterwards."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="identity-base-"))
    path = tmp / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), sha],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False
        )
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


# --- models and corpus ---------------------------------------------------------------------------
def train_models(tree: Path, work: Path, models: Iterable[Model], jobs: int) -> Path:
    """Train the run's models with ``tree``'s training CLI into ``work/models``."""
    registry = work / "models"
    shutil.rmtree(registry, ignore_errors=True)
    full = work / "train-full.csv"
    ran = cli(tree, "training", "sample-data", "--rows", "800", "--seed", "11", "--out", str(full))
    _must(ran, "training sample-data")
    features = work / "train-features.csv"
    drop_last_column(full, features, "charges")
    data = {"full": full, "features": features}

    def one(m: Model) -> None:
        ran = cli(
            tree, "training", "train", "--data", str(data[m.data]), "--target", m.target,
            "--name", m.name, "--registry", str(registry), "--estimators", m.estimator,
            "--alias", "production",
        )  # fmt: skip
        _must(ran, f"training train {m.name}")

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, models))
    return registry


def _must(ran: Ran, what: str) -> None:
    if ran.code != 0:
        raise SystemExit(f"{what} failed (exit {ran.code}):\n{ran.stderr[-3000:]}")


def drop_last_column(src: Path, dest: Path, name: str) -> None:
    """Copy a plain CSV (no quoting, as sample-data writes it) without its last column."""
    with open(src, encoding="utf-8", newline="") as fin, open(dest, "w", encoding="utf-8") as out:
        header = fin.readline().rstrip("\n")
        if not header.endswith("," + name):
            raise SystemExit(f"{src}: expected the last column to be {name!r}: {header}")
        out.write(header.rsplit(",", 1)[0] + "\n")
        for line in fin:
            out.write(line.rstrip("\n").rsplit(",", 1)[0] + "\n")


def corpus(
    work: Path, rows: int, hostile: bool = True
) -> list[tuple[str, str, Path, tuple[str, ...]]]:
    """Write the inputs under ``work/corpus``: (slug, title, path, extra CLI options) each."""
    root = work / "corpus"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    out: list[tuple[str, str, Path, tuple[str, ...]]] = []
    full = root / "sample-full.csv"
    _must(
        cli(
            ROOT, "training", "sample-data", "--rows", str(rows), "--seed", "7", "--out", str(full)
        ),
        "training sample-data",
    )
    bench = root / f"bench-{rows}.csv"
    drop_last_column(full, bench, "charges")
    full.unlink()
    out.append(("bench", f"benchmark sample, {rows:,} rows", bench, ("--workers", "0")))
    out.append(
        ("bench-w2", f"benchmark sample, {rows:,} rows, 2 workers", bench, ("--workers", "2"))
    )
    lines = bench.read_text(encoding="utf-8").splitlines()
    header, body = lines[0].split(","), [r.split(",") for r in lines[1 : 1 + min(rows, 20_000)]]
    for slug, title, path in messy(root, header, body):
        out.append((slug, title, path, ()))
    if hostile:
        for i, (title, name, data, _expect) in enumerate(hostile_cases()):
            path = root / "hostile" / f"{i:02d}" / name
            os.makedirs(path.parent, exist_ok=True)
            path.write_bytes(data)
            out.append((f"hostile-{i:02d}", f"hostile: {title}", path, ()))
    return out


def hostile_cases() -> list[tuple[str, str, bytes, object]]:
    from tests.reliability.hostile import CASES

    return list(CASES)


def messy(root: Path, header: list[str], body: list[list[str]]) -> Iterator[tuple[str, str, Path]]:
    """Quoted cells, CRLF and multi-line notes; shapes real exports take; bad rows to reject."""
    notes = ["a note, with a comma", "two\nlines", 'say "hi"', "=1+1", "", "café ☕", "\ttab"]
    path = root / "quoted-crlf-multiline.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow([*header, "note"])
        for i, r in enumerate(body):
            w.writerow([*r, notes[i % len(notes)]])
    yield "quoted", "quoted cells, CRLF, multi-line notes", path

    def text(rows: list[list[str]], sep: str = ",", nl: str = "\n") -> str:
        return nl.join(sep.join(r) for r in [header, *rows]) + nl

    small = body[:5000]
    european = [[c.replace(".", ",") for c in r] for r in small]
    path = root / "european.csv"
    path.write_text(text(european, ";"), encoding="utf-8")
    yield "european", "semicolons and decimal commas", path
    path = root / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text(small, nl="\r\n").encode())
    yield "excel", "Excel: BOM and CRLF", path
    odd = []
    for i, r in enumerate(small):
        r = list(r)
        k = i % 6
        if k == 0:
            r[1] = " " + r[1].upper()  # stray space, other case
        elif k == 1:
            r[-1] = r[-1].title() + " "
        elif k == 2:
            r[4] = r[4].capitalize()
        odd.append(r)
    path = root / "categories.csv"
    path.write_text(text(odd), encoding="utf-8")
    yield "categories", "stray spaces and case in categories", path
    bad = []
    breakers = [("0", "abc"), ("2", "inf"), ("0", ""), ("3", "1.5"), ("2", "-1e309"), ("0", "-5")]
    for i, r in enumerate(small):
        r = list(r)
        if i % 97 == 0:
            col, value = breakers[(i // 97) % len(breakers)]
            r[int(col)] = value
        if i % 331 == 0:
            r = r[:-2]  # too few fields
        bad.append(r)
    path = root / "rejections.csv"
    path.write_text(text(bad), encoding="utf-8")
    yield "rejections", "bad values and short rows among good ones", path
    path = root / "rejections.csv.gz"
    path.write_bytes(gzip.compress(text(bad).encode(), mtime=0))
    yield "rejections-gz", "the same, gzip", path


def build_cases(
    entries: Sequence[tuple[str, str, Path, tuple[str, ...]]], models: Iterable[Model]
) -> list[Case]:
    return [
        Case(f"{m.name}/{slug}", title, path, m.name, args)
        for m in models
        for slug, title, path, args in entries
    ]


# --- report --------------------------------------------------------------------------------------
def report(outcomes: Sequence[Outcome], shown: int = 5) -> str:
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kind = o.case.slug.split("/", 1)[1].split("-", 1)[0]
        groups.setdefault(f"{o.case.model} × {kind}", []).append(o)
    lines = [f"{'model × input':<28}{'cases':>7}{'identical':>11}{'different':>11}"]
    for name, group in groups.items():
        same = sum(o.identical for o in group)
        lines.append(f"{name:<28}{len(group):>7}{same:>11}{len(group) - same:>11}")
    same = sum(o.identical for o in outcomes)
    lines.append(f"{'total':<28}{len(outcomes):>7}{same:>11}{len(outcomes) - same:>11}")
    noted = [o for o in outcomes if o.notes]
    if noted:
        lines.append(f"notes (not counted): {len(noted)} cases whose messages differ, e.g.")
        lines.extend(f"  {o.case.slug}: {', '.join(o.notes)}" for o in noted[:5])
    for o in [o for o in outcomes if not o.identical][:shown]:
        lines.append("")
        lines.append(f"DIFFERENT {o.case.slug} ({o.case.title}): " + "; ".join(o.problems))
        if o.diff:
            lines.append(o.diff)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up in logs, too
    # a kill (timeout, Ctrl-C's cousin) still removes the BASE worktree: the finally blocks run
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tree = Path(args.tree).resolve()
    # one work folder per compared tree: several helpers may run this script from one checkout
    work = (
        Path(args.work).resolve() if args.work else ROOT / "bench" / "out" / "identity" / tree.name
    )
    work.mkdir(parents=True, exist_ok=True)
    lock = open(work / ".lock", "w")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another comparison is using {work}; pass --work DIR", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    with nullcontext(tree) if args.against_self else checkout(args.base) as base:
        trees = {"base": base, "tree": tree}
        print(f"identity: base {args.base} ({base}) vs tree {tree}; work in {work}")
        if args.registry:
            registry = Path(args.registry).resolve()
            print(f"  models from {registry} (not trained)")
        else:
            registry = train_models(trees[args.train_with], work, MODELS, args.jobs)
            took = time.monotonic() - t0
            print(f"  trained {len(MODELS)} models with {args.train_with} in {took:.0f} s")
        cases = build_cases(corpus(work, args.rows, hostile=not args.no_hostile), MODELS)
        results = run_twice(trees, cases, registry, work, args.jobs)
    outcomes = compare_all(cases, work, results, "base", "tree")
    print(report(outcomes))
    if not args.keep:
        for name in ("base", "tree", "dest", "corpus"):
            shutil.rmtree(work / name, ignore_errors=True)
    same = all(o.identical for o in outcomes)
    print(
        f"{'IDENTICAL' if same else 'DIFFERENT'}: {sum(o.identical for o in outcomes)} of "
        f"{len(outcomes)} cases identical; {time.monotonic() - t0:.0f} s"
    )
    return 0 if same else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.split("\n")[0])
    p.add_argument(
        "--base", default=DEFAULT_BASE, help=f"git ref to compare with (default {DEFAULT_BASE})"
    )
    p.add_argument("--tree", default=str(ROOT), help="the tree to compare (default: this one)")
    p.add_argument("--rows", type=int, default=200_000, help="rows of the benchmark sample")
    p.add_argument("--jobs", type=int, default=2, help="CLI calls at once")
    p.add_argument(
        "--train-with", choices=("tree", "base"), default="tree",
        help="whose training CLI writes the shared registry (default: tree)",
    )  # fmt: skip
    p.add_argument(
        "--registry",
        help="score with this registry's claims, smoker and boost models instead of training",
    )
    p.add_argument(
        "--against-self", action="store_true",
        help="compare the tree with itself (two runs): what must be masked, and nothing more",
    )  # fmt: skip
    p.add_argument("--no-hostile", action="store_true", help="leave out the hostile corpus")
    p.add_argument(
        "--work", help="work folder (default: bench/out/identity/<tree folder name> here)"
    )
    p.add_argument("--keep", action="store_true", help="keep outputs and corpus under --work")
    return p


if __name__ == "__main__":
    sys.exit(main())
