"""Shared fixtures: one moto server (real S3/SQS/EventBridge HTTP APIs) per test session,
isolated buckets per test, and small trained models per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

# Property tests on CI machines shared by many processes: an example that waits for a core is
# slow, not wrong, so no deadline and no too-slow health check (a wrong answer still fails).
# HYPOTHESIS_PROFILE=thorough runs ten times the examples, to hunt for an input that fails.
settings.register_profile("dropscore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", settings.get_profile("dropscore"), max_examples=1_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dropscore"))

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server over HTTP on a random free port; env points every AWS client at it."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    exe = shutil.which("moto_server", path=str(VENV_BIN)) or "moto_server"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"moto server did not start: {log.read_text()}") from None
            time.sleep(0.2)
    old = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    _reset_clients()
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _reset_clients()


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def _reset_clients() -> None:
    from scorer import storage

    storage.s3_client.cache_clear()


@pytest.fixture
def faulty_store(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``install(url)``: the real store that serves ``url`` (local or S3) wrapped in a
    FaultyStore (tests/faultstore.py) for this test; every other store stays as it is."""
    from scorer import storage
    from tests.faultstore import FaultyStore

    def install(url: str) -> FaultyStore:
        choose = storage.for_url
        inner = choose(url)
        faulty = FaultyStore(inner)
        monkeypatch.setattr(
            storage, "for_url", lambda u: faulty if choose(u) is inner else choose(u)
        )
        return faulty

    return install


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    """A fresh, versioned bucket for one test."""
    import boto3

    name = f"t-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def s3(moto_endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint)


# --- trained models ---------------------------------------------------------------------------
def make_classification_frame(rows: int, seed: int = 5):  # type: ignore[no-untyped-def]
    """A small classification table with awkward column names (nothing insurance-specific)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    hours = rng.integers(1, 80, size=rows).astype(float)
    edu = rng.choice(["Bachelors", "HS-grad", "Masters", "Some college"], size=rows)
    work = rng.choice([" Private", " Self-emp", " Gov"], size=rows)
    age = rng.integers(17, 90, size=rows).astype(float)
    gain = np.where(rng.random(rows) < 0.1, rng.integers(1000, 20000, size=rows), 0).astype(float)
    logit = 0.04 * (hours - 40) + 0.03 * (age - 40) + (edu == "Masters") * 1.2 + gain / 5000 - 1
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    frame = pd.DataFrame(
        {
            "hours-per-week": hours,
            "education level": edu,
            "work class": work,
            "age (years)": age,
            "capital gain $": gain,
            "income >50K": label,
        }
    )
    frame.loc[rng.random(rows) < 0.05, "work class"] = None  # nullable category
    return frame


def make_purchase_frame(rows: int, seed: int = 3, first_id: int = 1):  # type: ignore[no-untyped-def]
    """An orange-juice-like purchase table: a row id ``Id`` first (first_id…), store codes,
    prices, a loyalty score and an integer 0/1 target ``Purchase`` (1 = the other brand)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    store = rng.choice([1, 2, 3, 4, 7], size=rows)
    price_ch = rng.choice([1.69, 1.75, 1.86, 1.99], size=rows)
    price_mm = rng.choice([1.69, 1.99, 2.09, 2.18], size=rows)
    loyal = rng.beta(2, 2, size=rows).round(6)
    special = rng.choice(["Yes", "No"], size=rows, p=[0.2, 0.8])
    logit = 3 * (0.5 - loyal) + 4 * (price_ch - price_mm) + (store == 7) * -0.8
    logit += np.linspace(-0.5, 0.5, rows)  # later rows lean to one brand, as real ones drift
    purchase = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "Id": np.arange(first_id, first_id + rows),
            "StoreID": store,
            "PriceCH": price_ch,
            "PriceMM": price_mm,
            "LoyalCH": loyal,
            "SpecialMM": special,
            "Purchase": purchase,
        }
    )


def make_three_class_frame(rows: int, seed: int = 4):  # type: ignore[no-untyped-def]
    """Three classes whose labels need sanitising as column names: 'A b', 'A/b', 'c'."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.normal(size=rows)
    label = np.where(x1 > 0.4, "A b", np.where(x2 > 0, "A/b", "c"))
    flip = rng.random(rows) < 0.1
    label[flip] = rng.choice(["A b", "A/b", "c"], size=int(flip.sum()))
    return pd.DataFrame({"x1": x1.round(6), "x2": x2.round(6), "kind": label})


@pytest.fixture(scope="session")
def labelled_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local registry with two small 'lr' classifiers trained for real: ``purchase`` (a row
    id left out, an integer 0/1 target, store codes) and ``three`` (three text classes)."""
    from scorer.registry import Registry
    from training.train import train_and_publish

    root = tmp_path_factory.mktemp("labelled")
    purchase = root / "purchase.csv"
    make_purchase_frame(600).to_csv(purchase, index=False)
    three = root / "three.csv"
    make_three_class_frame(400).to_csv(three, index=False)
    registry = Registry(str(root / "models"))
    for name, src, target in (("purchase", purchase, "Purchase"), ("three", three, "kind")):
        train_and_publish(
            data_url=str(src), target=target, name=name, registry=registry,
            estimators=("lr",), alias="production",
        )  # fmt: skip
    return registry.url


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local registry with two promoted models trained for real (PyCaret 'lr'):
    ``claims`` (regression on the sample data) and ``income`` (binary classification)."""
    from scorer.registry import Registry
    from training.sample_data import generate
    from training.train import train_and_publish

    root = tmp_path_factory.mktemp("registry")
    data = tmp_path_factory.mktemp("data")
    claims = data / "claims.csv"
    generate(800, seed=11).to_csv(claims, index=False)
    income = data / "income.csv"
    make_classification_frame(800).to_csv(income, index=False)
    registry = Registry(str(root / "models"))
    train_and_publish(
        data_url=str(claims),
        target="charges",
        name="claims",
        registry=registry,
        estimators=("lr",),
        alias="production",
    )
    train_and_publish(
        data_url=str(income),
        target="income >50K",
        name="income",
        registry=registry,
        estimators=("lr",),
        alias="production",
    )
    return registry.url


@pytest.fixture(scope="session")
def nonlinear_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local registry with three small non-linear models, each with a scoring plan whose head
    is the fitted estimator: ``boost`` (LGBMRegressor), ``gbr`` (GradientBoostingRegressor) on
    the sample data and ``boosted-income`` (LGBMClassifier, column names with spaces)."""
    from scorer.registry import Registry
    from training.sample_data import generate
    from training.train import train_and_publish

    root = tmp_path_factory.mktemp("nonlinear")
    claims = root / "claims.csv"
    generate(500, seed=12).to_csv(claims, index=False)
    income = root / "income.csv"
    make_classification_frame(500, seed=6).to_csv(income, index=False)
    registry = Registry(str(root / "models"))
    for name, src, target, estimator in (
        ("boost", claims, "charges", "lightgbm"),
        ("gbr", claims, "charges", "gbr"),
        ("boosted-income", income, "income >50K", "lightgbm"),
    ):
        train_and_publish(
            data_url=str(src), target=target, name=name, registry=registry,
            estimators=(estimator,), alias="production",
        )  # fmt: skip
    return registry.url


@pytest.fixture
def s3_registry(bucket: str, trained_registry: str) -> str:
    """The trained registry copied into ``s3://<bucket>/models``; returns that URL."""
    from scorer import storage

    base = Path(trained_registry)
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base).as_posix()
        storage.write_bytes(f"s3://{bucket}/models/{rel}", path.read_bytes())
    return f"s3://{bucket}/models"
