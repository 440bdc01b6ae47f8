"""The bucket layout and run identity (scorer.layout): pure, no I/O."""

from __future__ import annotations

import pytest

from scorer import events, layout
from scorer.layout import ObjectVersion
from tests.scorer.test_events import ODD_KEYS, eventbridge


def test_a_listing_and_an_event_give_the_same_object_version() -> None:
    """S3 quotes ETags in listings and says "null" for an unversioned object: one type, one
    normalisation, so the sweep's inputs compare equal to what an event names."""
    listed = ObjectVersion.listed(
        "b", {"Key": "incoming/a b.csv", "VersionId": "null", "ETag": '"abc"', "Size": 10}
    )
    event = events.parse(eventbridge("incoming/a+b.csv", "null"))
    assert listed == event == ObjectVersion("b", "incoming/a b.csv", None, "abc")
    assert listed.identity == "e:abc"
    assert ObjectVersion.of("b", "k", "v1", '"x"').identity == "v:v1"
    assert ObjectVersion.at("s3://b/incoming/x.csv") == ObjectVersion("b", "incoming/x.csv")


@pytest.mark.parametrize(
    "key",
    [
        "scored/a/b/claims-v1-0123456789abcdef/manifest.json",
        "scored/a/claims-v2-0123456789abcdef/x",
    ],
)
def test_a_key_in_a_run_folder_names_its_folder_run_and_file(key: str) -> None:
    found = layout.run_file(key)
    assert found is not None
    assert f"scored/{found.folder}/{found.name}" == key
    assert layout.RunId.parse(found.run_id) is not None


@pytest.mark.parametrize(
    "key",
    ["scored/manifest.json", "scored/claims-v1-0123456789abcdef/manifest.json", "scored/a/b/c"],
    ids=["top level", "a run id without an input folder", "no run id"],
)
def test_a_key_outside_a_run_folder_is_stray(key: str) -> None:
    assert layout.run_file(key) is None


@pytest.mark.parametrize(
    ("key", "is_input", "rel"),
    [
        ("incoming/a/b.csv", True, "a/b"),
        ("incoming/x.csv.gz", True, "x"),
        ("incoming/x.txt", False, "x.txt"),
        ("scored/x.csv", False, "scored/x"),
        ("incoming/", False, ""),
    ],
    ids=["nested-csv", "gzip", "not-csv", "outside-incoming", "prefix-only"],
)
def test_inputs_and_relative_names(key: str, is_input: bool, rel: str) -> None:
    assert layout.is_input_key(key) is is_input
    assert layout.relative_name(key) == rel


KINDS = [
    ("incoming/a.csv", layout.INPUT),
    ("incoming/A.CSV", layout.INPUT),
    ("incoming/b.Csv.GZ", layout.INPUT),
    ("incoming/.csv", layout.INPUT),
    ("incoming//x.csv", layout.INPUT),
    ("incoming/a/.csv.gz", layout.INPUT),
    ("incoming/x.txt", layout.UNSUPPORTED),
    ("incoming/y.xlsx", layout.UNSUPPORTED),
    ("incoming/noext", layout.UNSUPPORTED),
    ("incoming/a.csv.zip", layout.UNSUPPORTED),
    ("incoming/folder/", layout.IGNORED),
    ("incoming/", layout.IGNORED),
    ("scored/x.csv", layout.IGNORED),
    ("models/x.csv", layout.IGNORED),
]


@pytest.mark.parametrize(("key", "kind"), KINDS, ids=[k for k, _ in KINDS])
def test_every_key_under_incoming_is_an_input_unsupported_or_a_folder_marker(
    key: str, kind: str
) -> None:
    assert layout.classify(key) == kind


RUN = "claims-v123456789-0123456789abcdef"
FOLDER_KEYS = [
    *ODD_KEYS,
    "incoming/.csv",
    "incoming//x.csv",
    "incoming/a/.csv.gz",
    "incoming/ lead/x.csv",
    "incoming/a/../b.csv",
    "incoming/_hashed/" + "0" * 64 + ".csv",
    "incoming/x.txt",
    "incoming/" + "k" * 991 + ".csv",
    "incoming/" + "ü" * 500 + ".csv",
    "incoming/" + "/".join(["d" * 200] * 5) + ".csv",
]


@pytest.mark.parametrize("key", FOLDER_KEYS, ids=[k[:40] for k in FOLDER_KEYS])
def test_every_input_gets_a_result_folder_s3_and_the_ui_accept(key: str) -> None:
    out = layout.output_prefix("b", key, RUN)
    folder = out.removeprefix("s3://b/scored/")
    assert layout.check_run_path("b", folder).url() == out  # the UI lists and opens it
    for name in ("predictions.csv", "rejected.csv", "manifest.json"):
        assert len(f"{out}/{name}".removeprefix("s3://b/").encode()) <= layout.S3_KEY_LIMIT
    assert layout.result_folder(key) == folder.rpartition("/")[0]


def test_ordinary_keys_keep_their_readable_folder_and_odd_ones_are_hashed() -> None:
    assert layout.result_folder("incoming/2026/claims.CSV") == "2026/claims"
    assert layout.result_folder("incoming/a b/ü.csv.gz") == "a b/ü"
    long = "incoming/" + "k" * 991 + ".csv"
    assert layout.result_folder(long).startswith(layout.HASHED)
    assert layout.result_folder("incoming/.csv") != layout.result_folder("incoming//.csv")
    squat = "incoming/" + layout.result_folder(long) + ".csv"  # a key naming a hashed folder
    assert layout.result_folder(squat) != layout.result_folder(long)


def test_a_deployment_moves_incoming_and_scored_with_one_pair_of_variables() -> None:
    env = {layout.INCOMING_ENV: "drop/here/", layout.SCORED_ENV: "out/results/"}
    assert layout.Prefixes.from_env(env) == layout.Prefixes("drop/here/", "out/results/")
    assert layout.Prefixes.from_env({}) == layout.Prefixes("incoming/", "scored/")


BAD_PREFIXES = {
    "no trailing slash": ({layout.SCORED_ENV: "out"}, "DROPSCORE_SCORED is 'out'"),
    "leading slash": ({layout.SCORED_ENV: "/out/"}, "DROPSCORE_SCORED is '/out/'"),
    "dot-dot": ({layout.INCOMING_ENV: "a/../"}, "DROPSCORE_INCOMING is 'a/../'"),
    "empty part": ({layout.INCOMING_ENV: "a//"}, "DROPSCORE_INCOMING is 'a//'"),
    "results inside inputs": ({layout.SCORED_ENV: "incoming/out/"}, "overlap"),
    "inputs inside results": ({layout.INCOMING_ENV: "scored/in/"}, "overlap"),
    "the same folder": ({layout.INCOMING_ENV: "x/", layout.SCORED_ENV: "x/"}, "overlap"),
}


@pytest.mark.parametrize(("env", "message"), BAD_PREFIXES.values(), ids=BAD_PREFIXES)
def test_a_prefix_that_cannot_hold_runs_apart_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(layout.BadArgument, match=message):
        layout.Prefixes.from_env(env)
