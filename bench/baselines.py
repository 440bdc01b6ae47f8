"""The two baselines ``bench.scoring`` measures our scorer against, each run as its own process.

python -m bench.baselines naive MODEL_PKL SRC DEST   # read_csv → predict_model → to_csv
python -m bench.baselines lean  MODEL_PKL SRC DEST   # read_csv in 32k chunks → predict → append
"""

from __future__ import annotations

import sys

CHUNK_ROWS = 32768


def naive(model_pkl: str, src: str, dest: str) -> None:
    import joblib
    import pandas as pd
    from pycaret.regression import predict_model

    pipeline = joblib.load(model_pkl)
    data = pd.read_csv(src)
    # round=10 instead of the default 4 so that predictions compare at 1e-6 relative
    scored = predict_model(pipeline, data=data, round=10, verbose=False)
    scored.to_csv(dest, index=False)


def lean(model_pkl: str, src: str, dest: str) -> None:
    import joblib
    import pandas as pd

    pipeline = joblib.load(model_pkl)
    for i, chunk in enumerate(pd.read_csv(src, chunksize=CHUNK_ROWS)):
        chunk["prediction"] = pipeline.predict(chunk)
        chunk.to_csv(dest, mode="a", header=i == 0, index=False)


if __name__ == "__main__":
    kind, model_pkl, src, dest = sys.argv[1:5]
    {"naive": naive, "lean": lean}[kind](model_pkl, src, dest)
