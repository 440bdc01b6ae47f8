"""Where this process runs: the Fargate task's size from the ECS task metadata endpoint v4, or
this machine (adapter for scorer/cost.py; read once per process)."""

from __future__ import annotations

import json
import logging
import os
import platform
import urllib.request
from collections.abc import Mapping
from functools import cache

from scorer.cost import TaskSize, architecture, from_task_metadata

log = logging.getLogger("dropscore.scorer")

METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"  # set by ECS in every container of a task
SPOT_VALUES = ("spot", "fargate_spot", "fargate-spot")


def from_environment(environ: Mapping[str, str], machine: str | None = None) -> TaskSize:
    """The task metadata endpoint named in ``environ``, else local. The capacity is not in the
    metadata: DROPSCORE_CAPACITY=spot (set by the stack for Spot tasks) says Fargate Spot."""
    machine = machine or platform.machine()
    uri = environ.get(METADATA_ENV, "").strip()
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
    spot = environ.get("DROPSCORE_CAPACITY", "").strip().lower() in SPOT_VALUES
    arch = architecture(machine)
    if not uri:
        return TaskSize(where="local", vcpu=float(os.cpu_count() or 1), architecture=arch)
    try:
        if not uri.startswith("http://"):  # ECS serves it on a link-local http address
            raise ValueError(f"{METADATA_ENV} is not an http:// URL: {uri[:80]}")
        with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=2) as resp:  # noqa: S310
            doc = json.loads(resp.read())
    except (OSError, ValueError) as exc:  # a run is never failed for its price tag
        log.warning("task metadata unreadable; no cost estimate", extra={"error": str(exc)})
        return TaskSize(where="fargate", architecture=arch, spot=spot, region=region)
    return from_task_metadata(doc, machine=machine, region=region, spot=spot)


@cache
def current() -> TaskSize:
    return from_environment(os.environ)
