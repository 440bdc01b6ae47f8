"""Data for the UI tests: input files (good, bad rows, drifted, another model's) scored into a
bucket by the same code the batch path runs, so the runs browser has real runs to show."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from scorer import service
from scorer.layout import ObjectVersion
from tests.conftest import make_classification_frame
from training.sample_data import TARGET, generate


def claims_frame(rows: int, seed: int) -> pd.DataFrame:
    return generate(rows, seed=seed).drop(columns=[TARGET])


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def claims_with_bad_rows(rows: int = 40, seed: int = 2) -> tuple[bytes, int]:
    """A claims CSV where 3 rows cannot be scored (wrong type, non-finite, too many fields)."""
    frame = claims_frame(rows, seed).astype(object)
    cols = list(frame.columns)
    frame.iloc[3, cols.index(cols[0])] = "forty"
    frame.iloc[7, cols.index(cols[2])] = "inf"
    text = frame.to_csv(index=False).splitlines()
    text[12] = text[12] + ",surplus"
    return ("\n".join(text) + "\n").encode(), 3


def drifted_claims(rows: int = 300, seed: int = 3) -> bytes:
    """Numbers pushed far beyond the training range in the first column, and one category only."""
    frame = claims_frame(rows, seed)
    first_number = next(c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]))
    frame[first_number] = frame[first_number] * 3
    first_text = next(c for c in frame.columns if frame[c].dtype == object)
    frame[first_text] = frame[first_text].iloc[0]
    return csv_bytes(frame)


def outside_training(rows: int = 200, seed: int = 4) -> bytes:
    """Every number of every row shifted far beyond the training range: all rows score (status
    ok), none is like the data the model learned from."""
    frame = claims_frame(rows, seed)
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]):
            frame[c] = frame[c] + 10 * (frame[c].max() - frame[c].min() + 1)
    return csv_bytes(frame)


def income_file(rows: int = 120) -> bytes:
    frame = make_classification_frame(rows, seed=9).drop(columns=["income >50K"])
    return csv_bytes(frame)


@dataclass(frozen=True, slots=True)
class Seeded:
    run_keys: dict[str, str]  # input key → "<rel>/<run_id>"
    bucket: str = ""
    registry: str = ""


def put_and_score(s3, bucket: str, key: str, body: bytes, registry: str, model: str) -> str:  # type: ignore[no-untyped-def]
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body)
    ref = ObjectVersion(bucket, key, resp.get("VersionId"))
    result = service.score_object(ref, service.Settings(registry=registry, model=model))
    assert result is not None
    rel = key.removeprefix("incoming/").removesuffix(".csv")
    return f"{rel}/{result.manifest.run_id}"


def seed_runs(s3, bucket: str, registry: str) -> Seeded:  # type: ignore[no-untyped-def]
    bad, _ = claims_with_bad_rows(60)
    files = [
        ("incoming/2026/claims-week-47.csv", csv_bytes(claims_frame(250, 1)), "claims"),
        ("incoming/2026/claims-with-bad-rows.csv", bad, "claims"),
        ("incoming/2026/claims-drifted.csv", drifted_claims(), "claims"),
        ("incoming/partners/income-batch.csv", income_file(), "income"),
        ("incoming/broken/semicolons.csv", b"a;b;c\n1;2;3\n", "claims"),
    ]
    keys = {}
    for key, body, model in files:
        keys[key] = put_and_score(s3, bucket, key, body, registry, model)
    return Seeded(keys, bucket, registry)


def read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
