"""``python -m training``: sample-data, train, promote. Run with --help for details."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scorer import cliutil, logs, storage
from scorer.cliutil import os_user
from scorer.errors import BadArgument
from scorer.promotion import NO_NOTE, check_note, compare
from scorer.refs import DEFAULT_ALIAS, check_name
from scorer.registry import Registry

EPILOG = """exit codes: 0 done
            2 the training data was refused (TRAINING_DATA), or the command itself was wrong
              (nothing ran)
            1 anything else (storage unreachable, training failed …)

examples:
  python -m training sample-data --rows 5000 --out claims.csv --seed 1
  python -m training train --data claims.csv --target charges --name claims \
      --registry ./models --alias production
  python -m training train --data oj.csv --target Purchase --name oj --registry ./models \
      --categorical STORE --keep WeekofPurchase
  python -m training promote claims 2 --registry s3://dropscore/models \
      --note "retrained on October data"
"""


def build_parser() -> cliutil.EnvDefaultsParser:
    parser = cliutil.EnvDefaultsParser(
        prog="python -m training",
        description="Make sample data, train PyCaret models and publish them to a registry.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "sample-data", help="write a synthetic insurance-like CSV (target 'charges')"
    )
    p.add_argument("--rows", type=int, required=True, help="number of data rows")
    p.add_argument("--out", required=True, help="output path (local or s3://…); .gz compresses")
    p.add_argument("--seed", type=int, default=42, help="random seed (same seed → same file)")

    p = sub.add_parser("train", help="train on a CSV and publish a new model version")
    p.add_argument("--data", required=True, help="training CSV (local path or s3://…)")
    p.add_argument("--target", required=True, help="column to predict")
    p.add_argument("--name", required=True, help="model name in the registry")
    p.add_argument("--registry", required=True, help="registry URL (directory or s3://…/models)")
    p.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        default="auto",
        help="what kind of target (default: detect from the target column)",
    )
    p.add_argument(
        "--estimators",
        default="",
        help="comma-separated PyCaret estimator ids to compare, e.g. 'lr' or 'lr,lightgbm' "
        "(default: regression lr,ridge,lightgbm,gbr; classification lr,lightgbm,rf)",
    )
    p.add_argument("--alias", default=None, help="also point this alias at the new version")
    p.add_argument(
        "--ignore",
        default="",
        metavar="COL[,COL]",
        help="columns that are not features (passed through at scoring); ids are left out "
        "without asking",
    )
    p.add_argument(
        "--keep",
        default="",
        metavar="COL[,COL]",
        help="columns to use as features even though they look like ids",
    )
    p.add_argument(
        "--categorical",
        default="",
        metavar="COL[,COL]",
        help="columns that are categories even though they hold numbers (codes like 1/2)",
    )
    p.add_argument(
        "--numeric",
        default="",
        metavar="COL[,COL]",
        help="columns that are numbers (the default for numeric columns; silences the codes hint)",
    )

    p = sub.add_parser("promote", help="point an alias (default production) at a version")
    p.add_argument("name", help="model name")
    p.add_argument("version", type=int, help="version number")
    p.add_argument("--registry", required=True, help="registry URL")
    p.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to set (default production)")
    p.add_argument(
        "--note",
        default=None,
        help="why this version is promoted, kept in the registry's promotion history (the UI "
        "requires one; here a promotion without it still works, as before, and is recorded as "
        "'(no note given)' with a warning)",
    )
    p.add_argument(
        "--by", default=None, help="who promotes, for the history (default: the OS user name)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logs.setup("human" if logs.is_terminal() else "json")
    if args.command == "sample-data":
        return _sample_data(args.rows, args.out, args.seed)
    if args.command == "train":
        return _train(args)
    return _promote(args)


def _promote(args: object) -> int:
    """Compare with what the alias points at now, say what is worse, then move it and record
    who, why and what was shown."""
    registry = Registry(args.registry)  # type: ignore[attr-defined]
    name, alias = check_name(args.name), check_name(args.alias, "alias")  # type: ignore[attr-defined]
    if args.note is None:  # type: ignore[attr-defined]
        # the command's contract predates notes: scripts that promote without one keep working
        print(f"warning: no --note given; the history records '{NO_NOTE}'", file=sys.stderr)
    note = check_note(args.note if args.note is not None else NO_NOTE)  # type: ignore[attr-defined]
    candidate = registry.card(name, args.version)  # type: ignore[attr-defined]
    current_version = registry.aliases(name).get(alias)
    current = registry.card(name, current_version) if current_version is not None else None
    comparison = compare(current, candidate)
    for warning in comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    card = registry.promote(
        name,
        candidate.version,
        alias,
        note=note,
        by=args.by or os_user(),  # type: ignore[attr-defined]
        warnings=comparison.warnings,
        expected_from=current_version,
    )
    print(f"{card.name}:{alias} → version {card.version} ({_metrics(card.metrics)})")
    return 0


def _sample_data(rows: int, out: str, seed: int) -> int:
    from training.sample_data import generate

    if rows < 1:
        raise BadArgument("--rows must be at least 1")
    frame = generate(rows, seed)
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    if out.endswith(".gz"):
        import gzip

        data = gzip.compress(data, mtime=0)
    if not storage.is_s3(out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    storage.write_bytes(out, data)
    print(f"wrote {rows} rows to {out}", file=sys.stderr)
    return 0


def _train(args: object) -> int:
    from tqdm import tqdm

    from training.columns import ColumnChoices, split_names
    from training.train import train_and_publish

    name = check_name(args.name)  # type: ignore[attr-defined]
    estimators = tuple(e.strip() for e in args.estimators.split(",") if e.strip())  # type: ignore[attr-defined]
    t0 = time.monotonic()
    bar = tqdm(total=5, desc="train", unit="step", disable=not logs.is_terminal(), leave=False)

    def progress(msg: str) -> None:
        bar.set_postfix_str(msg[:60])
        bar.update(1)
        if not logs.is_terminal():
            print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr)

    def notice(msg: str) -> None:  # kept on screen, not only in the bar's passing status
        if logs.is_terminal():
            bar.write(msg, file=sys.stderr)
        else:
            print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr)

    columns = ColumnChoices(
        ignore=split_names(args.ignore),  # type: ignore[attr-defined]
        keep=split_names(args.keep),  # type: ignore[attr-defined]
        categorical=split_names(args.categorical),  # type: ignore[attr-defined]
        numeric=split_names(args.numeric),  # type: ignore[attr-defined]
    )
    try:
        card = train_and_publish(
            data_url=args.data,  # type: ignore[attr-defined]
            target=args.target,  # type: ignore[attr-defined]
            name=name,
            registry=Registry(args.registry),  # type: ignore[attr-defined]
            task=args.task,  # type: ignore[attr-defined]
            estimators=estimators,
            alias=args.alias,  # type: ignore[attr-defined]
            progress=progress,
            columns=columns,
            notice=notice,
            by=os_user(),
        )
    finally:
        bar.close()
    alias = f", alias {args.alias}" if args.alias else ""  # type: ignore[attr-defined]
    print(
        f"published {card.name}@{card.version} ({card.task}, {card.estimator}{alias}) in "
        f"{time.monotonic() - t0:.0f}s: {_metrics(card.metrics)}"
    )
    print(f"card: {storage.join(args.registry, card.name, str(card.version), 'card.json')}")  # type: ignore[attr-defined]
    return 0


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())


if __name__ == "__main__":
    sys.exit(cliutil.run(main, parser=build_parser))
