"""Fixtures for the infra tests: the parsed template and the whole stack deployed into the
session's moto server."""

from __future__ import annotations

from typing import Any

import pytest
from infra_support import Network, Stack, create_stack, load_template, make_network


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def network(moto_endpoint: str) -> Network:
    return make_network(moto_endpoint)


@pytest.fixture(scope="session")
def stack(moto_endpoint: str, network: Network) -> Stack:
    """The full stack (images tagged t1, promotion off) created in moto's CloudFormation."""
    return create_stack(moto_endpoint, network)
