"""The byte-identity comparator (bench/identity.py) is itself tested: the tree scored twice
through the CLI compares identical (so the mask hides what differs between runs, and nothing
else needs hiding), and a changed byte, number, file or exit code is reported as a difference."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench import identity
from tests.reliability.hostile import CASES

# a scored file, one with rejected rows, a refused one (exit 2) and a gzip one
PICKED = ("plain.csv", "ragged.csv", "latin1.csv", "gz.csv.gz")


@pytest.fixture(scope="module")
def scored_twice(
    trained_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[identity.Case], Path, dict[str, dict[str, identity.Ran]]]:
    work = tmp_path_factory.mktemp("identity")
    entries = []
    for title, name, data, _ in CASES:
        if name in PICKED:
            path = work / "corpus" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            entries.append((f"hostile-{PICKED.index(name)}", title, path, ()))
    model = identity.Model("claims", "full", "charges", "lr")
    cases = identity.build_cases(entries, [model])
    trees = {"base": identity.ROOT, "tree": identity.ROOT}
    results = identity.run_twice(trees, cases, Path(trained_registry), work, jobs=1)
    return cases, work, results


def test_the_same_tree_scored_twice_compares_identical(
    scored_twice: tuple[list[identity.Case], Path, dict[str, dict[str, identity.Ran]]],
) -> None:
    cases, work, results = scored_twice
    codes = {case.slug: results["tree"][case.slug].code for case in cases}
    assert sorted(codes.values()) == [0, 0, 0, 2], codes  # the refused file exits 2
    outcomes = identity.compare_all(cases, work, results, "base", "tree")
    assert [o.problems for o in outcomes] == [()] * len(cases)
    assert "total                             4          4          0" in identity.report(outcomes)
    # the runs did differ in the masked fields: the mask is needed, not decoration
    manifest = "claims/hostile-1/manifest.json"
    raw = [(work / side / manifest).read_text() for side in ("base", "tree")]
    assert raw[0] != raw[1]
    assert identity.mask_manifest(raw[0]) == identity.mask_manifest(raw[1])


def _tampered(work: Path) -> Path:
    copy = work / "tampered"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work / "tree", copy)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_a_changed_byte_number_file_or_exit_code_is_reported(
    scored_twice: tuple[list[identity.Case], Path, dict[str, dict[str, identity.Ran]]],
) -> None:
    cases, work, results = scored_twice
    copy = _tampered(work)
    by_slug = {c.slug: c for c in cases}
    # one digit of one prediction (the last character before the newline of the first data row)
    pred = copy / "claims/hostile-0/predictions.csv"
    lines = pred.read_bytes().split(b"\n")
    last = lines[1][-1:]
    lines[1] = lines[1][:-1] + (b"1" if last != b"1" else b"2")
    pred.write_bytes(b"\n".join(lines))
    # one count in a manifest, and one masked timing in another (must NOT count)
    _edit(copy / "claims/hostile-1/manifest.json", '"rows_scored": 5', '"rows_scored": 6')
    manifest_gz = copy / "claims/hostile-3/manifest.json"
    manifest_gz.write_text(
        identity._MASK.sub(lambda m: m.group(1) + "123.456", manifest_gz.read_text())
    )
    # a file gone, and an exit code changed
    (copy / "claims/hostile-1/rejected.csv").unlink()
    ran = dict(results["tree"])
    refused = by_slug["claims/hostile-2"].slug
    ran[refused] = identity.Ran(1, ran[refused].stdout, "error [X]: changed\n")
    outcomes = {
        o.case.slug: o
        for o in identity.compare_all(
            cases, work, {"base": results["base"], "tampered": ran}, "base", "tampered"
        )
    }
    (problem,) = outcomes["claims/hostile-0"].problems
    assert problem.startswith("predictions.csv differs"), problem
    changed = [x for x in outcomes["claims/hostile-0"].diff.splitlines() if x[:1] in "+-"]
    assert [x[:1] for x in changed] == ["-", "+", "-", "+"], changed  # ---/+++ headers, one line
    problems = outcomes["claims/hostile-1"].problems
    assert any(p.startswith("files: only in base ['rejected.csv']") for p in problems), problems
    assert any(p.startswith("manifest.json differs") for p in problems), problems
    assert '+  "rows_scored": 6' in outcomes["claims/hostile-1"].diff
    assert outcomes["claims/hostile-2"].problems == ("exit code 2 → 1",)
    assert "stderr's error line differs" in outcomes["claims/hostile-2"].notes
    assert outcomes["claims/hostile-3"].identical  # only masked values changed
    text = identity.report(list(outcomes.values()))
    assert "total                             4          1          3" in text
    assert "DIFFERENT claims/hostile-0" in text


def test_the_mask_touches_only_the_volatile_keys() -> None:
    text = (
        '{\n  "rows_in": 5,\n  "duration_s": 0.016,\n  "started_at": "2026-11-29T20:33:25+00:00",\n'
        '  "cost": {\n    "billed_s": 60,\n    "usd": null\n  },\n  "duration_s_other": 1,\n'
        '  "scorer_version": "0.1.0",\n  "workers_peak_memory_mb": null\n}'
    )
    assert identity.mask_manifest(text) == (
        '{\n  "rows_in": 5,\n  "duration_s": "<masked>",\n  "started_at": "<masked>",\n'
        '  "cost": {\n    "billed_s": "<masked>",\n    "usd": null\n  },\n'
        '  "duration_s_other": 1,\n'
        '  "scorer_version": "<masked>",\n  "workers_peak_memory_mb": "<masked>"\n}'
    )


def test_a_base_checkout_is_a_detached_worktree_removed_afterwards() -> None:
    root = identity.ROOT
    if subprocess.run(["git", "-C", str(root), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    with identity.checkout("HEAD") as base:
        assert (base / "scorer" / "__main__.py").is_file()
        head = subprocess.run(
            ["git", "-C", str(base), "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert head == "HEAD"  # detached: no branch moved or created
    assert not base.exists()
    listed = subprocess.run(
        ["git", "-C", str(root), "worktree", "list", "--porcelain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(base) not in listed
