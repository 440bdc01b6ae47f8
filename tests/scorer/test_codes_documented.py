"""Every code the code can emit is in the README's tables, and every code there is still emitted.

Codes are free strings (reason codes of failed manifests, rejected-row codes, warnings, alerts,
error classes, the CLI's own): they are collected from the source — class attributes, string
constants shaped like a code, and the CLI's literal ``error [CODE]`` lines — and compared with
the backquoted codes in the README's table rows. The ledger checker's violation codes
(scorer/check.py) are compared with the table in docs/guarantees.md instead.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
CLI_LINE = re.compile(r"error \[([A-Z][A-Z0-9_]+)\]")
TABLE_CODE = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`")
# code-shaped strings that are not codes: environment variables, other names, and the UI's
# placeholder for a failed manifest without a reason (which the ledger checker reports)
NOT_CODES = {"PSI", "PIL", "PAR1", "NUL", "INFO", "DEBUG", "COMMAND", "CODE", "FAILED"}
# an os.sysconf name (scorer/budget.py) and a category spelling the README shows as an example
NOT_CODES |= {"SC_CLK_TCK", "MALE"}
NOT_CODES |= {"ENABLED", "DISABLED", "FARGATE"}  # EventBridge Scheduler / ECS API values (jobs.py)
NOT_CODE_PREFIXES = ("DROPSCORE_", "AWS_", "ECS_", "PYCARET_", "OPENBLAS_")


def _is_code(text: str) -> bool:
    return (
        len(text) >= 4
        and bool(CODE.fullmatch(text))
        and text not in NOT_CODES
        and not text.startswith(NOT_CODE_PREFIXES)
    )


def emitted(files: Iterable[Path]) -> dict[str, str]:
    """code → where it first occurs (path:line)."""
    found: dict[str, str] = {}
    for path in sorted(files):
        source = path.read_text()
        rel = (path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).as_posix()
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _is_code(node.value)
            ):
                found.setdefault(node.value, f"{rel}:{node.lineno}")
        for match in CLI_LINE.finditer(source):
            line = source.count("\n", 0, match.start()) + 1
            found.setdefault(match.group(1), f"{rel}:{line}")
    return found


def documented(doc: Path) -> set[str]:
    rows = [line for line in doc.read_text().splitlines() if line.lstrip().startswith("|")]
    return {c for row in rows for c in TABLE_CODE.findall(row) if _is_code(c)}


def _compare(code_files: list[Path], doc: Path, known: Iterable[str] = ()) -> None:
    """``known``: codes documented elsewhere that these files only read."""
    in_code = {c: where for c, where in emitted(code_files).items() if c not in set(known)}
    in_doc = documented(doc)
    missing = {c: where for c, where in in_code.items() if c not in in_doc}
    stale = sorted(in_doc - set(in_code) - set(known))
    problems = []
    if missing:
        problems.append(
            f"codes the code can emit but no table in {doc.name} lists (add each to the table "
            "of its kind, in backquotes): "
            + ", ".join(f"{c} ({where})" for c, where in sorted(missing.items()))
        )
    if stale:
        problems.append(f"codes {doc.name}'s tables list that nothing emits: {', '.join(stale)}")
    assert not problems, "\n".join(problems)


def _product_files() -> list[Path]:
    files = [p for p in (ROOT / "scorer").rglob("*.py") if p.name != "check.py"]
    return files + list((ROOT / "ui").rglob("*.py"))


def test_the_readme_tables_list_exactly_the_codes_the_code_emits() -> None:
    _compare(_product_files(), ROOT / "README.md")


def test_the_guarantees_table_lists_exactly_the_ledger_checker_codes() -> None:
    # the checker also reads manifest reason codes, which the README documents
    _compare(
        [ROOT / "scorer" / "check.py"], ROOT / "docs" / "guarantees.md", emitted(_product_files())
    )


def test_the_scan_finds_codes_in_every_place_they_are_made(tmp_path: Path) -> None:
    """The collector itself: a class attribute, a keyword, a positional literal, a dict value
    and the CLI's error line all count; an environment variable does not."""
    sample = tmp_path / "probe.py"
    sample.write_text(
        'class A(Exception):\n    code = "ALPHA_ONE"\n'
        'def f(mark):\n    mark("BETA_TWO")\n    x = {"code": "GAMMA"}\n'
        '    y = "DROPSCORE_SOMETHING"\n    print(f"error [DELTA_FOUR]: {x}")\n'
    )
    found = emitted([sample])
    assert set(found) == {"ALPHA_ONE", "BETA_TWO", "GAMMA", "DELTA_FOUR"}
