from __future__ import annotations

from pathlib import Path

import pytest

from scorer.model import LoadedModel
from scorer.registry import Registry


@pytest.fixture(scope="session")
def claims_model(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("claims"))


@pytest.fixture(scope="session")
def income_model(trained_registry: str) -> LoadedModel:
    reg = Registry(trained_registry)
    return reg.load(reg.resolve("income"))


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.sample_data import generate

    path = tmp_path_factory.mktemp("sample") / "claims.csv"
    generate(300, seed=99).to_csv(path, index=False)
    return path
