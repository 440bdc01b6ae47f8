"""Server-side latency of one prediction (with and without its reasons) once the model is
loaded, as the Predict page computes it. Prints the numbers; asserts only what a user sees."""

from __future__ import annotations

import statistics
import time

import pandas as pd
import pytest

from scorer.predict import predict
from scorer.registry import Registry
from ui.views.predict import answer

ROUNDS = 50


@pytest.mark.parametrize("name", ["claims", "income"])
def test_single_prediction_latency(trained_registry: str, name: str, capsys) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(trained_registry)
    model = registry.load(registry.resolve(name), engine="auto")  # as ui.data.loaded_model
    row = {f.name: f.typical for f in model.card.features}
    frame = pd.DataFrame([row])
    answer(model, row)  # warm-up: first call pays for lazy imports inside the pipeline
    predict_ms, answer_ms = [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        predict(model, frame)
        predict_ms.append((time.perf_counter() - t0) * 1000)
        result = answer(model, row)
        answer_ms.append(result.elapsed_ms)
    assert result.explanation.contributions  # every feature got an effect
    assert len(result.explanation.contributions) == len(model.card.features)

    def line(label: str, values: list[float]) -> str:
        q = statistics.quantiles(values, n=20)
        return f"{label} median {statistics.median(values):.1f} ms, p95 {q[18]:.1f} ms"

    with capsys.disabled():
        print(
            f"\n[latency] {model.card.ref} ({model.card.estimator}, {ROUNDS} rounds): "
            + "; ".join(
                [
                    line("prediction alone", predict_ms),
                    line("prediction with reasons (the page)", answer_ms),
                ]
            )
        )
