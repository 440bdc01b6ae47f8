"""The category rule: surrounding whitespace never matters; a unique case / inner-space variant
of a seen category maps to it (and is counted); anything else stays unseen."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer import categories
from scorer.card import Feature
from scorer.schema import plan_header
from scorer.validate import check_batch
from tests.scorer.test_validate import CARD

space = st.text(alphabet=" \t\u00a0\u3000", max_size=3)
word = st.text(alphabet="abcXYZ-é ", min_size=1, max_size=8).filter(lambda s: s.strip() != "")


def _recase(value: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if i < len(flips) and flips[i] else c for i, c in enumerate(value))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(word, min_size=1, max_size=6, unique_by=categories.fold),
    st.data(),
)
def test_any_seen_category_with_stray_space_or_case_maps_back_to_itself(
    seen: list[str], data: st.DataObject
) -> None:
    seen = sorted({s.strip() for s in seen})
    index = categories.index(tuple(seen))
    target = data.draw(st.sampled_from(seen))
    flips = data.draw(st.lists(st.booleans(), max_size=len(target)))
    variant = data.draw(space) + _recase(target, flips) + data.draw(space)
    match = index.match(variant)
    assert index.categories[match.position] == target
    # a warning only when more than surrounding whitespace differs
    assert match.normalised == (variant.strip() != target)


@settings(max_examples=200, deadline=None)
@given(word, st.data())
def test_categories_that_differ_only_by_case_are_never_guessed(
    base: str, data: st.DataObject
) -> None:
    base = base.strip()
    lower, upper = base.lower(), base.upper()
    if lower == upper:  # no letters to differ by
        return
    index = categories.index(tuple(sorted({lower, upper})))
    third = data.draw(st.sampled_from([base.title(), base.swapcase(), base.casefold() + " "]))
    match = index.match(third)
    if third.strip() in (lower, upper):  # the exact spelling (maybe with stray space) is seen
        assert index.categories[match.position] == third.strip()
    else:
        assert match.position == categories.UNSEEN


def test_inner_whitespace_runs_and_case_map_to_the_one_seen_category() -> None:
    index = categories.index(("Some college", "HS-grad"))
    assert index.canonical("some  college") == "Some college"
    assert index.canonical(" SOME\tCOLLEGE ") == "Some college"
    assert index.match("Some college ").normalised is False
    assert index.match("some college").normalised is True
    assert index.canonical("Somecollege") is None
    assert index.canonical("") is None


def test_a_card_from_before_trimming_still_finds_its_padded_categories() -> None:
    index = categories.index((" Gov", " Private"))
    assert index.match(" Private") == categories.Match(1, False)
    assert index.match("Private") == categories.Match(1, False)  # only surrounding space differs
    assert index.match("PRIVATE") == categories.Match(1, True)


SPACED = dataclasses.replace(
    CARD,
    features=(
        CARD.features[0],
        Feature("cat", "category", nullable=True, categories=("Male", "female", "one two")),
        Feature("cased", "category", nullable=True, categories=("a", "A")),
    ),
)


def test_validation_feeds_the_model_the_seen_category_and_counts_the_variants() -> None:
    plan = plan_header(["num", "cat", "cased"], SPACED)
    records = [
        ["1", "Male", "a"],  # exact
        ["1", " Male ", "A"],  # surrounding space: no warning
        ["1", "MALE", "A "],  # case: normalised
        ["1", "one  two", " a"],  # inner space: normalised
        ["1", "FEMALE", "\u00a0"],  # case; whitespace only is missing
        ["1", "robot", "á"],  # unseen
        ["1", "  ", "á"],  # missing
    ]
    n = len(records)
    checked = check_batch(records, list(range(1, n + 1)), list(range(2, n + 2)), plan)
    assert checked.rejections == []
    frame = checked.frame
    assert frame["cat"].tolist()[:5] == ["Male", "Male", "Male", "one two", "female"]
    assert frame["cat"].iloc[5] == "robot"
    assert frame["cat"].isna().tolist() == [False] * 6 + [True]
    assert frame["cased"].tolist()[:4] == ["a", "A", "A", "a"]
    assert np.isnan(frame["cased"].iloc[4])
    assert checked.warnings == {"CATEGORY_NORMALISED": 3, "UNSEEN_CATEGORY": 3}
    assert checked.column_warnings == {
        "cat": {"CATEGORY_NORMALISED": 3, "UNSEEN_CATEGORY": 1},
        "cased": {"UNSEEN_CATEGORY": 2},
    }
    # the drift counts see the seen category, not the spelling
    assert checked.category_codes["cat"].tolist() == [0, 0, 0, 2, 1, -1, -2]
    # the output repeats the cells as given
    assert checked.valid_cells[1].to_pylist() == [r[1] for r in records]
