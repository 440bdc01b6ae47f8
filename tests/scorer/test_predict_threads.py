"""PyCaret pipelines are not thread-safe; the sweep's thread pool and the UI's sessions share
one loaded model, so predictions from many threads at once must equal sequential ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from scorer.predict import predict
from scorer.registry import LoadedModel
from training.sample_data import generate


def test_predictions_from_many_threads_equal_sequential(claims_model: LoadedModel) -> None:
    frames = [generate(400, seed=s).drop(columns=["charges"]) for s in range(16)]
    expected = [predict(claims_model, f).values for f in frames]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda f: predict(claims_model, f).values, frames * 3))
    for i, values in enumerate(got):
        np.testing.assert_array_equal(values, expected[i % len(frames)])
