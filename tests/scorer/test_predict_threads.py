"""PyCaret pipelines are not thread-safe; the sweep's thread pool and the UI's sessions share
one loaded model, so predictions from many threads at once must equal sequential ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from scorer.model import LoadedModel
from scorer.predict import predict
from training.sample_data import generate


def test_predictions_from_many_threads_equal_sequential(claims_model: LoadedModel) -> None:
    frames = [generate(400, seed=s).drop(columns=["charges"]) for s in range(16)]
    expected = [predict(claims_model, f).values for f in frames]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda f: predict(claims_model, f).values, frames * 3))
    for i, values in enumerate(got):
        np.testing.assert_array_equal(values, expected[i % len(frames)])


def test_models_used_and_dropped_leave_nothing_behind_in_prediction(
    claims_model: LoadedModel,
) -> None:
    """A pipeline's lock lives and dies with it: a long-running UI or watcher that loads,
    uses and drops model after model keeps no memory for them in the prediction code (the
    locks were kept in a dict keyed by id(), never pruned)."""
    import copy
    import gc
    import tracemalloc

    from scorer import model
    from scorer import predict as prediction

    frame = generate(5, seed=1).drop(columns=["charges"])
    ours = {prediction.__file__, model.__file__}

    def use_a_copy() -> None:
        copied = copy.deepcopy(claims_model)
        assert copied.pipeline is not claims_model.pipeline
        predict(copied, frame)

    use_a_copy()  # first calls may build caches that stay
    tracemalloc.start(1)
    try:
        gc.collect()
        before = tracemalloc.take_snapshot()
        for _ in range(40):
            use_a_copy()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = [s for s in after.compare_to(before, "lineno") if s.traceback[0].filename in ours]
    assert sum(s.size_diff for s in kept) <= 0, kept
