"""The bucket layout is spelt in one module: scorer/layout.py names the prefixes (``incoming/``,
``scored/``, ``models``, ``aliases``) and the run's files (``manifest.json``, ``predictions.csv``,
``rejected.csv``); every other module of the product, and the benchmarks, ask it, so a configured
prefix or a renamed file is one change. Prose (a message, a help text) may mention them; a path
may not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scorer import layout

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("scorer", "training", "devstack", "ui", "bench")
# Benchmarks other engineers are rewriting this session (issue 13): each still spells a run's
# file names itself; the lead removes an entry once that module asks layout (the test says when).
SPELT_HERE_PENDING = {"bench/scale.py", "bench/scoring.py"}
FOLDERS = {layout.INCOMING.rstrip("/"), layout.SCORED.rstrip("/"), layout.MODELS, layout.ALIASES}
FILES = {layout.MANIFEST, layout.PREDICTIONS, layout.REJECTED}


def is_layout_path(text: str) -> bool:
    """A path-shaped string (no white space) with a layout folder as a segment beside another,
    or a run's file name as a segment: ``"scored/"``, ``"/aliases/"``, ``"a/manifest.json"``.
    A bare word (``"models"``: a page, ``"scored"``: a column) is not a path."""
    if not text or any(c.isspace() for c in text):
        return False
    segments = text.split("/")
    return any(s in FILES for s in segments) or (
        len(segments) > 1 and any(s in FOLDERS for s in segments)
    )


def layout_paths(path: Path) -> list[str]:
    """'path:line "literal"' for every string constant (f-string pieces included) of ``path``."""
    rel = (path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).as_posix()
    return [
        f'{rel}:{node.lineno} "{node.value}"'
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_layout_path(node.value)
    ]


def test_no_module_but_layout_spells_a_bucket_path() -> None:
    own = ROOT / "scorer" / "layout.py"
    files = [p for top in PRODUCT for p in sorted((ROOT / top).rglob("*.py")) if p != own]
    found = [
        hit
        for p in files
        if p.relative_to(ROOT).as_posix() not in SPELT_HERE_PENDING
        for hit in layout_paths(p)
    ]
    assert found == [], "ask scorer.layout for these: " + ", ".join(found)
    done = sorted(p for p in SPELT_HERE_PENDING if not layout_paths(ROOT / p))
    assert done == [], f"these now ask layout: remove them from SPELT_HERE_PENDING: {done}"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("incoming/", True), ("scored/", True), ("/aliases/", True), ("/models", True),
        ("manifest.json", True), ("scored/a/b/predictions.csv", True), ("rejected.csv", True),
        ("models", False), ("scored", False), ("aliases", False),
        ("see rejected.csv for each row's reason", False), ("-manifest.json", False),
        ("income/claims.csv", False),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else "",
)  # fmt: skip
def test_what_counts_as_a_bucket_path(text: str, found: bool) -> None:
    assert is_layout_path(text) is found


def test_the_scan_reads_f_string_pieces(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text('def f(b, a):\n    return f"{b}/aliases/{a}.json", "x"\n')
    assert layout_paths(sample) == [f'{sample.as_posix()}:2 "/aliases/"']
