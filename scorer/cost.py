"""What a run cost on Fargate, estimated from list prices (pure: no clock, no network).

Fargate bills a task's vCPU and memory per second, rounded up to the second, with a one-minute
minimum. A run's estimate is its own scoring time on the task's size, billed as if it were one
task: it leaves out task start, image pull and model loading, and a sweep that scores several
files in one task is billed its minimum once, not per run. Outside Fargate nothing is billed:
the manifest says ``where: local`` and carries no money figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scorer.manifest import CostEntry, TaskEntry

MIN_BILLED_S = 60

#: USD per vCPU-hour and per GB-hour, Linux, on-demand, by (region, architecture).
PRICES_SOURCE = (
    "AWS Fargate list prices (aws.amazon.com/fargate/pricing, Linux, on-demand), as published "
    "in 2024; check the page before quoting a figure"
)
ON_DEMAND: dict[tuple[str, str], tuple[float, float]] = {
    ("us-east-1", "x86_64"): (0.04048, 0.004445),
    ("us-east-1", "arm64"): (0.03238, 0.00356),
    ("us-west-2", "x86_64"): (0.04048, 0.004445),
    ("us-west-2", "arm64"): (0.03238, 0.00356),
    ("eu-west-1", "x86_64"): (0.04048, 0.004445),
    ("eu-west-1", "arm64"): (0.03238, 0.00356),
    ("eu-central-1", "x86_64"): (0.04656, 0.00511),
    ("eu-central-1", "arm64"): (0.03725, 0.00409),
}
#: Fargate Spot has no fixed price: it moves with spare capacity, by region and over time, and
#: AWS advertises "up to 70%" off on-demand. The estimate assumes that best case, and says so.
SPOT_DISCOUNT = 0.70


@dataclass(frozen=True, slots=True)
class TaskSize:
    """The compute a run ran on: a Fargate task's size, or this machine."""

    where: str  # "fargate" | "local"
    vcpu: float | None = None
    memory_gb: float | None = None
    architecture: str = "x86_64"  # "x86_64" | "arm64"
    spot: bool = False
    region: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def architecture(machine: str) -> str:
    """``platform.machine()`` → the name Fargate prices by."""
    return "arm64" if machine.lower() in ("aarch64", "arm64", "armv8l") else "x86_64"


def region_of(zone: str) -> str:
    """``eu-west-1b`` → ``eu-west-1`` (an availability zone is its region plus a letter)."""
    return zone.rstrip("abcdefghijklmnopqrstuvwxyz") if zone[-1:].isalpha() else zone


def from_task_metadata(
    doc: Mapping[str, Any], *, machine: str, region: str | None = None, spot: bool = False
) -> TaskSize:
    """The size from the ECS task metadata endpoint v4 (``$ECS_CONTAINER_METADATA_URI_V4/task``):
    ``Limits.CPU`` in vCPUs and ``Limits.Memory`` in MiB; the region from the task's
    availability zone, else ``region``. The architecture is the machine's, not the metadata's."""
    limits = doc.get("Limits") or {}
    cpu = limits.get("CPU")
    mem = limits.get("Memory")
    vcpu = float(cpu) if isinstance(cpu, int | float) and cpu > 0 else None
    if vcpu is not None and vcpu >= 128:  # CPU units (1024 per vCPU), as EC2 tasks report it
        vcpu = vcpu / 1024
    memory_gb = float(mem) / 1024 if isinstance(mem, int | float) and mem > 0 else None
    zone = str(doc.get("AvailabilityZone") or "")
    return TaskSize(
        where="fargate",
        vcpu=vcpu,
        memory_gb=memory_gb,
        architecture=architecture(machine),
        spot=spot,
        region=region_of(zone) if zone else region,
    )


def billed_seconds(duration_s: float) -> int:
    """Per second, rounded up, at least a minute."""
    return max(MIN_BILLED_S, math.ceil(max(duration_s, 0.0)))


def estimate(size: TaskSize, duration_s: float) -> dict[str, Any]:
    """The manifest's ``cost``: ``usd`` is None wherever no honest figure exists (not on
    Fargate, size unknown, no price for the region), with a ``note`` saying why."""
    billed = billed_seconds(duration_s)
    out: dict[str, Any] = {"where": size.where, "usd": None, "billed_s": billed}
    if size.where != "fargate":
        out["note"] = "ran outside Fargate: nothing billed"
        return out
    if size.vcpu is None or size.memory_gb is None:
        out["note"] = "the task's size is unknown (no task metadata): no estimate"
        return out
    rates = ON_DEMAND.get((size.region or "", size.architecture))
    if rates is None:
        out["note"] = f"no list price here for {size.region} {size.architecture}: no estimate"
        return out
    vcpu_hour, gb_hour = rates
    per_hour = size.vcpu * vcpu_hour + size.memory_gb * gb_hour
    factor = 1.0 - SPOT_DISCOUNT if size.spot else 1.0
    out.update(
        usd=round(per_hour * billed / 3600 * factor, 6),
        vcpu_hour_usd=vcpu_hour,
        gb_hour_usd=gb_hour,
        spot_discount=SPOT_DISCOUNT if size.spot else 0.0,
        note="estimate from list prices"
        + (f"; Spot assumed {SPOT_DISCOUNT:.0%} off (Spot prices vary)" if size.spot else ""),
        source=PRICES_SOURCE,
    )
    return out


def describe(cost: CostEntry, task: TaskEntry) -> str:
    """One line for people: the figure and what it rests on, or why there is none."""
    if not cost.keys:
        return "not recorded (a run from before cost estimates)"
    size = []
    if task.vcpu:
        size.append(f"{task.vcpu:g} vCPU")
    if task.memory_gb:
        size.append(f"{task.memory_gb:g} GB")
    size += [str(value) for value in (task.architecture, task.region) if value]
    if task.spot:
        size.append("Spot")
    on = f" on {', '.join(size)}" if size else ""
    usd = cost.usd
    if not isinstance(usd, int | float):
        return f"no figure: {cost.note if 'note' in cost.keys else 'unknown'}{on}"
    return f"${usd:.6f} (estimate{on}, billed {cost.billed_s} s; {cost.note})"
