"""The pure helpers the UI stands on: drift (PSI), the model-agnostic explanation, run paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scorer import drift, explain, layout
from scorer.card import Feature, ModelCard, PredictionBaseline, TrainingData
from scorer.errors import BadArgument

RUN = "claims-v3-0123456789abcdef"


def card(features: tuple[Feature, ...], task: str = "regression") -> ModelCard:
    return ModelCard(
        name="m", version=1, task=task, target="y", created_at="2026-01-01T00:00:00+00:00",  # type: ignore[arg-type]
        features=features, metrics={}, estimator="x", training_data=TrainingData(),
        prediction_baseline=PredictionBaseline(bins=(0.0, 10.0, 20.0), shares=(0.5, 0.5)),
        model_sha256="0" * 64, libraries={},
    )  # fmt: skip


NUM = Feature(
    "n", "number", min=0.0, max=10.0, typical=5.0, bins=(0.0, 5.0, 10.0), shares=(0.5, 0.5)
)
CAT = Feature("c", "category", categories=("a", "b"), typical="a", shares=(0.8, 0.2))


# --- drift ------------------------------------------------------------------------------------
def test_identical_distributions_do_not_drift() -> None:
    assert drift.psi([0.2, 0.3, 0.5], [20, 30, 50]) == pytest.approx(0.0)


@given(st.lists(st.floats(0.01, 1), min_size=2, max_size=12), st.data())
def test_psi_is_never_negative(expected: list[float], data: st.DataObject) -> None:
    actual = data.draw(
        st.lists(st.integers(0, 1000), min_size=len(expected), max_size=len(expected))
    )
    assert drift.psi(expected, actual) >= -1e-12


def test_a_shifted_feature_is_flagged_and_unseen_categories_count() -> None:
    moved = drift.feature_drift(NUM, {"counts": [0, 100], "missing": 3})
    assert moved.level == "major"
    assert moved.missing == 3
    assert moved.buckets == ("< 5", "≥ 5")
    unseen = drift.feature_drift(CAT, {"counts": [80, 20], "other": 50})
    assert unseen.buckets == ("a", "b", drift.UNSEEN)
    assert unseen.level == "major"
    same = drift.feature_drift(CAT, {"counts": [80, 20]})
    assert same.level == "stable"


def test_no_data_is_not_drift() -> None:
    assert drift.feature_drift(NUM, {"counts": [0, 0]}).level == "no data"
    assert drift.feature_drift(NUM, {}).level == "no data"  # an older manifest


def test_bin_labels_say_the_outer_bins_are_open() -> None:
    assert drift.bin_labels([0, 1.5, 20, 5000]) == ("< 1.5", "1.5–20", "≥ 20")


# --- explain ----------------------------------------------------------------------------------
def linear(frame: pd.DataFrame) -> np.ndarray:
    """y = 2·n + (10 if c == 'b')"""
    return 2 * frame["n"].astype(float).to_numpy() + np.where(frame["c"] == "b", 10.0, 0.0)


def test_effects_of_a_linear_model_are_its_terms_against_the_baseline_mean() -> None:
    why = explain.explain(card((NUM, CAT)), {"n": 9.0, "c": "b"}, linear, "y")
    assert why.prediction == pytest.approx(28.0)
    effects = {c.feature: c.effect for c in why.contributions}
    # n: 2·9 against 2·(0.5·2.5 + 0.5·7.5) = 10 → +8;  c: 10 against 0.8·0 + 0.2·10 = 2 → +8
    assert effects == {"n": pytest.approx(8.0), "c": pytest.approx(8.0)}
    low = explain.explain(card((NUM, CAT)), {"n": 1.0, "c": "a"}, linear, "y")
    assert {c.feature: round(c.effect, 6) for c in low.contributions} == {"n": -8.0, "c": -2.0}


def test_the_largest_effect_comes_first_and_one_model_call_is_made() -> None:
    calls = []

    def counted(frame: pd.DataFrame) -> np.ndarray:
        calls.append(len(frame))
        return linear(frame)

    why = explain.explain(card((NUM, CAT)), {"n": 5.5, "c": "b"}, counted, "y")
    assert [c.feature for c in why.contributions] == ["c", "n"]
    assert calls == [1 + 2 + 2]


def test_range_warnings_and_unseen_categories() -> None:
    c = card((NUM, CAT))
    assert [w.feature for w in explain.range_warnings(c, {"n": 11.0, "c": "a"})] == ["n"]
    assert "above the training range 0–10" in explain.range_warnings(c, {"n": 11.0})[0].message
    assert explain.range_warnings(c, {"n": 10.0}) == []
    assert explain.unseen_categories(c, {"n": 1.0, "c": "z"}) == ["c"]


def test_a_category_spelled_otherwise_is_explained_as_the_seen_one() -> None:
    c = card((NUM, CAT))
    assert explain.unseen_categories(c, {"n": 1.0, "c": " B "}) == []
    clean = explain.explain(c, {"n": 9.0, "c": "b"}, linear, "y")
    messy = explain.explain(c, {"n": 9.0, "c": " B "}, linear, "y")
    assert messy.prediction == clean.prediction == pytest.approx(28.0)
    assert [x.value for x in messy.contributions] == [x.value for x in clean.contributions]


# --- run paths --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [f"2026/claims/{RUN}", f"a/{RUN}", f"with space/{RUN}"],
    ids=["nested", "flat", "space inside a name"],
)
def test_run_paths_from_links(key: str) -> None:
    path = layout.check_run_path("b", key)
    assert path.key == key
    assert path.url() == f"s3://b/scored/{key}"


@pytest.mark.parametrize(
    "key",
    [
        f"../models/{RUN}", f"a/../../{RUN}", f"/abs/{RUN}", f"a//{RUN}", f"a\\b/{RUN}",
        "a/not-a-run-id", RUN, f"a/{RUN}/manifest.json", f"a/./{RUN}", f"a\x00/{RUN}",
        f" a/{RUN}x",
    ],
    ids=[
        "parent dir", "parent inside", "absolute", "empty segment", "backslash", "bad run id",
        "no input path", "a file inside a run", "dot segment", "NUL", "trailing junk",
    ],
)  # fmt: skip
def test_run_paths_that_could_leave_scored_are_refused(key: str) -> None:
    with pytest.raises(BadArgument):
        layout.check_run_path("b", key)
