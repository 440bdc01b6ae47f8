"""The README's Layout promises that each line of scorer/ imports only from its own line and the
lines above it: this test reads every module's imports and holds the code to that promise."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS: list[set[str]] = [  # README "Layout", top to bottom
    {"codes", "errors", "refs", "layout", "card", "plan", "manifest", "schema", "categories",
     "cost", "__version__"},
    {"gunzip", "budget", "csvtext", "units", "reader"},
    {"evaluator", "model", "predict", "dialect", "validate", "output", "drift", "alerts",
     "explain", "promotion"},
    {"interrupt", "storage", "counting", "registry", "taskinfo"},
    {"batches", "tally", "workers", "fargate", "cluster", "compose", "shards", "runs"},
    {"service", "events", "pinning", "sweep", "watch", "notify", "jobs", "jobrun", "schedules",
     "check", "catalog", "api", "logs", "cliutil", "cli", "__main__", ""},
]  # fmt: skip
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _name(path: Path) -> str:
    """scorer/storage/s3.py → "storage" (a package is one module here); scorer/__init__ → ""."""
    parts = path.relative_to(ROOT / "scorer").with_suffix("").parts
    return "" if parts == ("__init__",) else parts[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top, _, rest = node.module.partition(".")
            if top == "scorer":
                found |= {rest.split(".")[0]} if rest else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("scorer.")}
    return found


def test_every_module_of_scorer_is_on_a_line_of_the_layout() -> None:
    modules = {_name(p) for p in (ROOT / "scorer").rglob("*.py")}
    assert modules - set(LAYER) == set(), "add the new module to README's Layout and LAYERS"


def test_no_module_imports_from_a_line_below_its_own() -> None:
    upward = [
        f"{_name(p)} (line {LAYER[_name(p)] + 1}) imports {dep} (line {LAYER[dep] + 1})"
        for p in sorted((ROOT / "scorer").rglob("*.py"))
        for dep in sorted(_imports(p) - {_name(p)})
        if LAYER.get(dep, 0) > LAYER[_name(p)]
    ]
    assert upward == []
