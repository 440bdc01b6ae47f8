"""Model references (``NAME``, ``NAME@V``, ``NAME:ALIAS``) and run ids: pure, no I/O."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scorer.errors import BadArgument
from scorer.layout import RunId, is_run_id
from scorer.refs import DEFAULT_ALIAS, NAME_RE, ModelRef, check_name


def run_id(name: str, version: int, identity: str) -> str:
    return str(RunId.of(name, version, identity))


names = st.from_regex(NAME_RE, fullmatch=True).filter(lambda n: ".." not in n)
versions = st.integers(min_value=1, max_value=10**6)
SAFE_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("claims", ModelRef("claims", alias=DEFAULT_ALIAS)),
        ("claims@3", ModelRef("claims", version=3)),
        ("claims@007", ModelRef("claims", version=7)),
        ("claims:staging", ModelRef("claims", alias="staging")),
        ("  claims:production \n", ModelRef("claims", alias="production")),
        ("my-model.v2_final", ModelRef("my-model.v2_final", alias=DEFAULT_ALIAS)),
    ],
    ids=[
        "a bare name means the production alias",
        "name@version pins a version",
        "leading zeros in a version are the same version",
        "name:alias names an alias",
        "surrounding whitespace is ignored",
        "dots, dashes and underscores are allowed in names",
    ],
)
def test_parse_accepts(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("claims@0", "must be a number ≥ 1"),
        ("claims@-1", "must be a number ≥ 1"),
        ("claims@x", "must be a number ≥ 1"),
        ("claims@", "must be a number ≥ 1"),
        ("claims@²", "must be a number ≥ 1"),
        ("claims@١", "must be a number ≥ 1"),
        ("@1", "model name '' is not allowed"),
        ("", "model name '' is not allowed"),
        ("../etc", "model name '../etc' is not allowed"),
        ("a/b", "model name 'a/b' is not allowed"),
        ("claims:", "alias '' is not allowed"),
        ("claims:a/b", "alias 'a/b' is not allowed"),
        ("claims:..", "alias '..' is not allowed"),
        ("x" * 65, "(max 64)"),
    ],
    ids=[
        "version zero",
        "negative version",
        "version that is not a number",
        "empty version",
        "superscript digit is not a version",
        "non-ASCII digit is not a version",
        "no name before @",
        "empty reference",
        "path traversal in the name",
        "slash in the name",
        "empty alias",
        "slash in the alias",
        "dot-dot alias",
        "name longer than 64 characters",
    ],
)
def test_parse_refuses_with_a_message_that_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(BadArgument) as info:
        ModelRef.parse(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_uses_the_given_default_alias() -> None:
    assert ModelRef.parse("claims", default_alias="staging") == ModelRef("claims", alias="staging")


@given(st.text(max_size=80))
def test_parse_of_any_text_gives_a_valid_ref_or_bad_argument(text: str) -> None:
    try:
        ref = ModelRef.parse(text)
    except BadArgument:
        return
    assert check_name(ref.name) == ref.name
    assert (ref.version is None) != (ref.alias is None)
    assert ModelRef.parse(str(ref)) == ref


@given(names, versions)
def test_version_refs_round_trip(name: str, version: int) -> None:
    ref = ModelRef.parse(f"{name}@{version}")
    assert ref == ModelRef(name, version=version)
    assert str(ref) == f"{name}@{version}"


@given(names, names)
def test_alias_refs_round_trip(name: str, alias: str) -> None:
    ref = ModelRef.parse(f"{name}:{alias}")
    assert ref == ModelRef(name, alias=alias)
    assert str(ref) == f"{name}:{alias}"


# --- run ids ------------------------------------------------------------------------------------
@given(names, versions, st.text())
def test_run_id_is_deterministic_and_path_safe(name: str, version: int, identity: str) -> None:
    rid = run_id(name, version, identity)
    assert rid == run_id(name, version, identity)
    assert SAFE_PATH_SEGMENT.fullmatch(rid)
    assert rid not in (".", "..")
    assert is_run_id(rid)
    assert rid.startswith(f"{name}-v{version}-")


@given(st.tuples(names, versions, st.text()), st.tuples(names, versions, st.text()))
def test_distinct_inputs_give_distinct_run_ids(
    a: tuple[str, int, str], b: tuple[str, int, str]
) -> None:
    if a != b:
        assert run_id(*a) != run_id(*b)


@pytest.mark.parametrize(
    ("name", "version"),
    [("../../etc", 1), ("a/b", 1), ("", 1), ("claims", 0), ("claims", -3)],
    ids=[
        "path traversal in the model name",
        "slash in the model name",
        "empty model name",
        "version zero",
        "negative version",
    ],
)
def test_run_id_refuses_names_and_versions_that_are_not_path_safe(name: str, version: int) -> None:
    with pytest.raises(BadArgument):
        run_id(name, version, "etag")


@pytest.mark.parametrize(
    "text",
    [
        "claims-v1",
        "claims-v1-0123456789abcde",
        "claims-v1-0123456789ABCDEF",
        "-v1-0123456789abcdef",
    ],
    ids=["no digest", "short digest", "upper-case digest", "no model name"],
)
def test_is_run_id_refuses_what_run_id_never_makes(text: str) -> None:
    assert not is_run_id(text)


@given(names, versions, st.text())
def test_a_run_id_parses_back_to_its_model_version_and_input(
    name: str, version: int, identity: str
) -> None:
    rid = RunId.of(name, version, identity)
    assert RunId.parse(str(rid)) == rid
    assert (rid.model, rid.version) == (name, version)
    assert rid.same_input(RunId.of("other", 7, identity))
