"""The reason codes are one enum, ``scorer.codes.Code``: the README's tables list exactly its
members, every code the code spells is a member, and every member is used.

"Listed" means: in backquotes in the ``code`` column of a README table (the bad-input, alerts and
command-line error tables). "Spelt" means: a code-shaped string constant (a class attribute, a
``code=`` keyword, a dict value …), a ``Code.X`` reference, or a CLI ``error [X]`` line in
scorer/, training/, ui/ or devstack/. The ledger checker's violation codes (scorer/check.py) are
another vocabulary, compared with the table in docs/guarantees.md.
"""

from __future__ import annotations

import ast
import csv
import importlib
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from scorer.codes import Code
from scorer.errors import BadArgument, DropscoreError, FileRefused

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
CLI_LINE = re.compile(r"error \[([A-Z][A-Z0-9_]+)\]")
TABLE_CODE = re.compile(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`")
# code-shaped strings that are not codes: environment variables, other names, and the UI's
# placeholder for a failed manifest without a reason (which the ledger checker reports)
NOT_CODES = {"PSI", "PIL", "PAR1", "NUL", "INFO", "DEBUG", "COMMAND", "CODE", "FAILED"}
NOT_CODES |= {"SC_CLK_TCK"}  # an os.sysconf name (scorer/budget.py)
NOT_CODES |= {"ENABLED", "DISABLED", "FARGATE"}  # EventBridge Scheduler / ECS API values (jobs.py)
NOT_CODES |= {"CLIENT_OVERRIDES", "MIN_PART_SIZE"}  # constant names in scorer/storage's __all__
NOT_CODE_PREFIXES = ("DROPSCORE_", "AWS_", "ECS_", "PYCARET_", "OPENBLAS_")
MEMBERS = {c.value for c in Code}


def _is_code(text: str) -> bool:
    return (
        len(text) >= 4
        and bool(CODE.fullmatch(text))
        and text not in NOT_CODES
        and not text.startswith(NOT_CODE_PREFIXES)
    )


def emitted(files: Iterable[Path]) -> dict[str, str]:
    """code → where it first occurs (path:line): literals, ``Code.X`` and CLI lines."""
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
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Code"
            ):
                found.setdefault(node.attr, f"{rel}:{node.lineno}")
        for match in CLI_LINE.finditer(source):
            line = source.count("\n", 0, match.start()) + 1
            found.setdefault(match.group(1), f"{rel}:{line}")
    return found


def _cells(row: str) -> list[str]:
    """A markdown table row's cells; a ``|`` inside backquotes stays in its cell."""
    cells, cell, quoted = [], "", False
    for ch in row.strip().strip("|"):
        if ch == "`":
            quoted = not quoted
        if ch == "|" and not quoted:
            cells.append(cell)
            cell = ""
        else:
            cell += ch
    return [*cells, cell]


def documented(doc: Path, column: str) -> set[str]:
    """The backquoted codes in the column named ``column`` of every table in ``doc``."""
    found: set[str] = set()
    at: int | None = None  # the code column of the table being read
    in_table = False
    for line in doc.read_text().splitlines():
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in _cells(line)]
        if not in_table:  # a header row
            in_table = True
            names = [c.lower() for c in cells]
            at = names.index(column) if column in names else None
        elif at is not None and at < len(cells):
            found |= set(TABLE_CODE.findall(cells[at]))
    return found


def _product_files() -> list[Path]:
    files = [p for p in (ROOT / "scorer").rglob("*.py") if p.name not in ("check.py", "codes.py")]
    for package in ("ui", "training", "devstack"):
        files += (ROOT / package).rglob("*.py")
    return files


def test_the_readme_tables_list_exactly_the_enum() -> None:
    listed = documented(ROOT / "README.md", "code")
    missing, stale = sorted(MEMBERS - listed), sorted(listed - MEMBERS)
    assert not missing, (
        "members of scorer.codes.Code no README table lists (add each, in backquotes, to the "
        f"'code' column of the table of its kind): {', '.join(missing)}"
    )
    assert not stale, f"codes the README's tables list that scorer.codes.Code lacks: {stale}"


def test_every_code_the_code_spells_is_a_member_and_every_member_is_used() -> None:
    spelt = emitted(_product_files())
    strays = {c: where for c, where in spelt.items() if c not in MEMBERS}
    assert not strays, "codes that are not members of scorer.codes.Code (add them there): " + (
        ", ".join(f"{c} ({where})" for c, where in sorted(strays.items()))
    )
    unused = sorted(MEMBERS - set(spelt))
    assert not unused, f"members of scorer.codes.Code nothing uses (remove them): {unused}"


def test_every_error_class_carries_a_member() -> None:
    def subclasses(cls: type[DropscoreError]) -> Iterable[type[DropscoreError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    # error classes outside errors.py: imported, so they are among the subclasses
    for module in ("scorer.events", "scorer.workers", "training.errors"):
        importlib.import_module(module)

    classes = [DropscoreError, *subclasses(DropscoreError)]
    assert len(classes) > 25
    assert all(type(cls.code) is Code for cls in classes), [
        cls for cls in classes if type(cls.code) is not Code
    ]
    assert type(FileRefused("x", code="EMPTY").code) is Code


def test_a_class_with_a_code_outside_the_enum_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"'NO_SUCH_CODE' is not in scorer\.codes\.Code"):

        class Stray(BadArgument):
            code = "NO_SUCH_CODE"


def test_members_are_their_strings_in_json_csv_and_text() -> None:
    """Manifests, rejected.csv and log lines hold the same bytes as with plain strings."""
    counts = {Code.WRONG_TYPE: 2, "NON_FINITE": 1}
    assert json.dumps(counts) == '{"WRONG_TYPE": 2, "NON_FINITE": 1}'
    assert json.dumps({"reason": {"code": Code.EMPTY}}) == '{"reason": {"code": "EMPTY"}}'
    assert json.dumps(Code.EMPTY, indent=2, sort_keys=True) == '"EMPTY"'
    out = io.StringIO()
    csv.writer(out).writerow([1, Code.MISSING_VALUE])
    assert out.getvalue() == "1,MISSING_VALUE\r\n"
    assert (str(Code.EMPTY), f"{Code.EMPTY}", f"[{Code.EMPTY!s}]") == ("EMPTY", "EMPTY", "[EMPTY]")
    assert Code.EMPTY == "EMPTY"
    assert hash(Code.EMPTY) == hash("EMPTY")


def test_the_guarantees_table_lists_exactly_the_ledger_checker_codes() -> None:
    # the checker also reads manifest reason codes, which the README documents
    in_code = {c: w for c, w in emitted([ROOT / "scorer" / "check.py"]).items() if c not in MEMBERS}
    in_doc = documented(ROOT / "docs" / "guarantees.md", "violation code") - MEMBERS
    missing = sorted(set(in_code) - in_doc)
    assert not missing, "checker codes docs/guarantees.md's table lacks: " + ", ".join(
        f"{c} ({in_code[c]})" for c in missing
    )
    stale = sorted(in_doc - set(in_code))
    assert not stale, f"codes docs/guarantees.md's table lists that nothing emits: {stale}"


def test_the_scan_finds_codes_in_every_place_they_are_made(tmp_path: Path) -> None:
    """The collectors themselves: a class attribute, a keyword, a positional literal, a dict
    value, ``Code.X`` and the CLI's error line count, an environment variable does not; only a
    table's code column is read."""
    sample = tmp_path / "probe.py"
    sample.write_text(
        'class A(Exception):\n    code = "ALPHA_ONE"\n'
        'def f(mark):\n    mark("BETA_TWO")\n    x = {"code": "GAMMA"}\n'
        '    y = "DROPSCORE_SOMETHING"\n    print(f"error [DELTA_FOUR]: {x}")\n'
        "    return Code.EPSILON\n"
    )
    found = emitted([sample])
    assert set(found) == {"ALPHA_ONE", "BETA_TWO", "GAMMA", "DELTA_FOUR", "EPSILON"}
    doc = tmp_path / "doc.md"
    doc.write_text(
        "| problem | code |\n| --- | --- |\n| `MALE` or `a|b` | `ONE`, `TWO` |\n\n"
        "text `NOT_A_ROW`\n\n| alert | raised when | code |\n|---|---|---|\n"
        "| x | `Y_Y` | `THREE` |\n"
    )
    assert documented(doc, "code") == {"ONE", "TWO", "THREE"}


# Modules other engineers are rewriting this session (issue 13): each still spells a code as
# text; the lead removes an entry once that module uses the members (the test below says when).
SPELT_AS_TEXT_PENDING: set[str] = set()


def spelt_as_text(path: Path) -> list[str]:
    """Every string constant that is a member's value: 'path:line CODE'."""
    rel = path.relative_to(ROOT).as_posix()
    return [
        f"{rel}:{node.lineno} {node.value}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MEMBERS
    ]


def test_codes_are_spelt_as_members_never_as_text() -> None:
    """``Code.EMPTY``, not ``"EMPTY"``: a typo in a member is an AttributeError at import, a
    typo in text a code nobody documented (the bytes written are the same either way)."""
    files = [*_product_files(), ROOT / "scorer" / "check.py"]
    as_text = [
        hit
        for path in sorted(files)
        if path.relative_to(ROOT).as_posix() not in SPELT_AS_TEXT_PENDING
        for hit in spelt_as_text(path)
    ]
    assert as_text == [], "use scorer.codes.Code members: " + ", ".join(as_text)
    done = sorted(p for p in SPELT_AS_TEXT_PENDING if not spelt_as_text(ROOT / p))
    assert done == [], f"these now use the members: remove them from SPELT_AS_TEXT_PENDING: {done}"
