"""Which training columns become features (pure): the id detector, the user's column options,
codes as category text and per-code drift bins."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from scorer.drift import code_labels, feature_drift
from scorer.errors import BadArgument
from training.columns import ColumnChoices, as_codes, id_name, id_reason, plan_columns
from training.errors import TrainingDataError
from training.profile import code_edges, profile_feature

N = 200
_rng = np.random.default_rng(7)
_perm = _rng.permutation(np.arange(1, N + 1))

ID_COLUMNS = [
    ("row id 1…n", "Id", np.arange(1, N + 1), "sequential (1…200)"),
    ("pandas index 0…n-1", "Unnamed: 0", np.arange(N), "sequential (0…199)"),
    ("shuffled 1…n", "row", _perm, "sequential"),
    ("ids read as floats", "record", np.arange(1, N + 1).astype(float), "sequential"),
    ("increasing ids with gaps", "ref", np.cumsum(_rng.integers(1, 9, N)) + 10_000, "increasing"),
    ("customer_id with repeats", "customer_id", _rng.integers(0, 150, N), "named like an id"),
    ("CustomerID random numbers", "CustomerID", _rng.permutation(10**6)[:N], "named like an id"),
    ("uuids", "token", [str(uuid.UUID(int=int(i) * 7919)) for i in range(N)], "UUIDs"),
    ("codes like C-00123", "account", [f"C-{i:05d}" for i in _perm], "codes like 'C-"),
    ("names (free text)", "Name", [f"Person {i} Smith" for i in range(N)], "text like"),
]  # fmt: skip

FEATURES = [
    ("age with repeats", "age", _rng.integers(18, 65, N).astype(float)),
    ("floats all distinct (bmi)", "bmi", _rng.normal(30, 5, N)),
    ("floats all distinct, increasing", "elapsed", np.cumsum(_rng.random(N))),
    ("whole numbers unique but random", "income", _rng.permutation(10**6)[:N].astype(float)),
    ("codes 1/2", "SEX", _rng.integers(1, 3, N).astype(float)),
    ("store ids (few)", "StoreID", _rng.choice([1, 2, 3, 4, 7], N).astype(float)),
    ("text categories", "region", _rng.choice(["north", "south", "east"], N)),
    ("a 'body_mass_index' measurement", "body_mass_index", _rng.normal(30, 5, N)),
    ("text mostly repeated", "city", [f"city {i % 40}" for i in range(N)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "values", "fragment"),
    [c[1:] for c in ID_COLUMNS],
    ids=[c[0] for c in ID_COLUMNS],
)
def test_an_identifier_is_recognised_with_its_reason(
    name: str, values: object, fragment: str
) -> None:
    reason = id_reason(name, pd.Series(values))
    assert reason is not None
    assert fragment in reason


@pytest.mark.parametrize(
    ("name", "values"), [c[1:] for c in FEATURES], ids=[c[0] for c in FEATURES]
)
def test_a_genuine_feature_is_not_taken_for_an_id(name: str, values: object) -> None:
    assert id_reason(name, pd.Series(values)) is None


def test_a_short_table_says_too_little_to_call_anything_an_id() -> None:
    assert id_reason("Id", pd.Series(np.arange(1, 11))) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Id", True), ("ID", True), ("customer_id", True), ("CustomerID", True),
     ("orderId", True), ("uuid", True), ("key", True), ("index", True), ("SK_ID_CURR", True),
     ("Unnamed: 0", True), ("PAID", False), ("Valid", False), ("idle", False),
     ("Identity", False), ("body_mass_index", False), ("age", False)],
)  # fmt: skip
def test_id_names(name: str, expected: bool) -> None:
    assert id_name(name) is expected


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Id": np.arange(1, N + 1).astype(float),
            "SEX": _rng.integers(1, 3, N).astype(float),
            "x": _rng.normal(size=N),
            "note": _rng.choice(["a", "b"], N).astype(object),
            "y": _rng.integers(0, 2, N).astype(float),
        }
    )


def test_ids_are_left_out_and_the_rest_kept_in_order() -> None:
    plan = plan_columns(_frame(), "y", ColumnChoices())
    assert list(plan.frame.columns) == ["SEX", "x", "note", "y"]
    assert [i.column for i in plan.ignored] == ["Id"]
    assert "looks like a row id" in plan.ignored[0].reason


def test_keep_ignore_categorical_and_numeric_override_the_detector() -> None:
    choices = ColumnChoices(keep=("Id",), ignore=("x",), categorical=("SEX",), numeric=())
    plan = plan_columns(_frame(), "y", choices)
    assert list(plan.frame.columns) == ["Id", "SEX", "note", "y"]
    assert [(i.column, i.reason) for i in plan.ignored] == [("x", "--ignore")]
    assert set(plan.frame["SEX"]) == {"1", "2"}  # codes as the text a file holds, not '1.0'
    named = plan_columns(_frame(), "y", ColumnChoices(numeric=("Id",)))  # naming it keeps it
    assert "Id" in named.frame.columns
    assert named.numeric == frozenset({"Id"})


BAD_CHOICES = [
    ("an unknown column", ColumnChoices(ignore=("nope",)), BadArgument,
     "--ignore names 'nope', not a column of the training data; columns are: Id, SEX"),
    ("the target", ColumnChoices(categorical=("y",)), BadArgument,
     "--categorical names the target 'y'"),
    ("both keep and ignore", ColumnChoices(keep=("x",), ignore=("x",)), BadArgument,
     "'x' named in both --ignore and --keep"),
    ("both kinds", ColumnChoices(categorical=("x",), numeric=("x",)), BadArgument,
     "'x' named in both --categorical and --numeric"),
    ("text forced numeric", ColumnChoices(numeric=("note",)), TrainingDataError,
     "--numeric 'note': the column holds text ('"),
    ("every feature ignored", ColumnChoices(ignore=("SEX", "x", "note")), TrainingDataError,
     "every column besides the target was left out as an id ('Id', 'SEX', 'note', 'x'); name "
     "the ones that are features with --keep"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("choices", "error", "message"), [c[1:] for c in BAD_CHOICES], ids=[c[0] for c in BAD_CHOICES]
)
def test_bad_column_options_are_refused_with_what_to_fix(
    choices: ColumnChoices, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        plan_columns(_frame(), "y", choices)
    assert message in str(info.value)


def test_codes_become_text_without_a_decimal_point_and_missing_stays_missing() -> None:
    out = as_codes(pd.Series([1.0, 2.0, np.nan, 2.5, -3.0]))
    assert out.iloc[[0, 1, 3, 4]].tolist() == ["1", "2", "2.5", "-3"]
    assert pd.isna(out.iloc[2])


@pytest.mark.parametrize(
    ("codes", "labels"),
    [([1, 2], ("1", "2")), ([1, 2, 3, 4, 5, 6], tuple("123456")), ([0, 1, 4], ("0", "1", "4")),
     ([-2, 0, 7, 300], ("-2", "0", "7", "300")), ([3], ("3",))],
)  # fmt: skip
def test_a_coded_column_gets_one_drift_bin_per_code(codes: list[int], labels: tuple[str]) -> None:
    values = np.repeat(np.array(codes, dtype=float), [5 + i for i in range(len(codes))])
    feat = profile_feature("code", pd.Series(values))
    assert feat.coded is True
    assert feat.bins == code_edges(values)
    assert code_labels(feat.bins) == labels
    expected = [(5 + i) / len(values) for i in range(len(codes))]
    assert feat.shares == pytest.approx(expected)


def test_a_shift_between_two_codes_is_major_drift() -> None:
    """Quantile bins put a 90/10 SEX column in one bin, where no shift can ever show."""
    feat = profile_feature("SEX", pd.Series([1.0] * 90 + [2.0] * 10))
    assert len(feat.shares) == 2
    dist = feature_drift(feat, {"counts": [10, 90]})
    assert dist.buckets == ("1", "2")
    assert dist.level == "major"


def test_many_whole_numbers_or_fractions_are_not_codes() -> None:
    assert profile_feature("age", pd.Series(np.arange(18, 65, dtype=float))).coded is False
    assert profile_feature("x", pd.Series([0.5, 1.0, 1.5])).coded is False
