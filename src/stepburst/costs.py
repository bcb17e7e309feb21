"""Cost estimates from list prices, by region and architecture (prices as of PRICES_AS_OF).

Estimates, not bills: they show what a plan or a run costs and which route dominates. Free
tiers, data transfer, S3 requests and storage, DynamoDB and CloudWatch are left out. What is
priced, and how AWS bills it:

- Step Functions Standard bills each state transition; a Distributed Map also bills one
  transition for each child workflow execution it starts, besides the child's own
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html, "Transitions
  in Distributed Map state"; https://aws.amazon.com/step-functions/pricing/).
- Lambda bills requests and GB-seconds, by architecture (https://aws.amazon.com/lambda/pricing/).
- Fargate bills the task's vCPU and memory per second, by architecture, with a one-minute
  minimum per task; Fargate Spot at its own, lower rate (https://aws.amazon.com/fargate/pricing/).
  Batch items are priced as Fargate tasks (Batch itself costs nothing extra).

A region missing from :data:`PRICES` is priced as us-east-1; :attr:`Cost.priced_region` says
which region's prices an estimate used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Architecture = Literal["x86_64", "arm64"]

PRICES_AS_OF = "2026-12-01"
DEFAULT_REGION = "us-east-1"
"""Whose prices an estimate uses when its region is not in the table."""

FARGATE_MINIMUM_SECONDS = 60.0
"""Fargate bills at least one minute per task."""
DISTRIBUTED_MAP_CHILD_START_TRANSITIONS = 1
"""What starting one child workflow execution costs the Distributed Map, in transitions."""
# Transitions of the coordinator outside the fan-out, and of one child execution per route.
PARENT_TRANSITIONS = 8
CHILD_TRANSITIONS = {"lambda": 3, "ecs": 4, "batch": 4}


@dataclass(frozen=True, slots=True)
class RegionPrices:
    """One region's list prices, in USD."""

    per_transition: float
    lambda_per_request: float
    lambda_per_gb_second: Mapping[str, float]
    fargate_per_vcpu_hour: Mapping[str, float]
    fargate_per_gb_hour: Mapping[str, float]
    fargate_spot_per_vcpu_hour: Mapping[str, float]
    fargate_spot_per_gb_hour: Mapping[str, float]


def _region(
    *,
    per_transition: float,
    lambda_gb_second: tuple[float, float],
    vcpu_hour: tuple[float, float],
    gb_hour: tuple[float, float],
    spot_vcpu_hour: tuple[float, float],
    spot_gb_hour: tuple[float, float],
) -> RegionPrices:
    """A region's prices, each pair (x86_64, arm64)."""

    def pair(values: tuple[float, float]) -> dict[str, float]:
        return {"x86_64": values[0], "arm64": values[1]}

    return RegionPrices(
        per_transition=per_transition,
        lambda_per_request=0.20 / 1_000_000,
        lambda_per_gb_second=pair(lambda_gb_second),
        fargate_per_vcpu_hour=pair(vcpu_hour),
        fargate_per_gb_hour=pair(gb_hour),
        fargate_spot_per_vcpu_hour=pair(spot_vcpu_hour),
        fargate_spot_per_gb_hour=pair(spot_gb_hour),
    )


# N. Virginia's list prices, which Oregon and Ireland charge too.
_US_EAST_1 = _region(
    per_transition=0.025 / 1000,
    lambda_gb_second=(0.0000166667, 0.0000133334),
    vcpu_hour=(0.04048, 0.03238),
    gb_hour=(0.004445, 0.00356),
    spot_vcpu_hour=(0.012144, 0.009714),
    spot_gb_hour=(0.0013335, 0.001068),
)

# Linux on-demand list prices; Fargate Spot's rate moves with spare capacity: the table holds
# a recent rate (about 70% below on-demand, the discount AWS quotes).
PRICES: dict[str, RegionPrices] = {
    "us-east-1": _US_EAST_1,
    "us-west-2": _US_EAST_1,
    "eu-west-1": _US_EAST_1,
    "eu-central-1": _region(
        per_transition=0.025 / 1000,
        lambda_gb_second=(0.0000166667, 0.0000133334),
        vcpu_hour=(0.04656, 0.03725),
        gb_hour=(0.00511, 0.00409),
        spot_vcpu_hour=(0.013968, 0.011175),
        spot_gb_hour=(0.001533, 0.001227),
    ),
    "ap-northeast-1": _region(
        per_transition=0.025 / 1000,
        lambda_gb_second=(0.0000166667, 0.0000133334),
        vcpu_hour=(0.05056, 0.04045),
        gb_hour=(0.00553, 0.00442),
        spot_vcpu_hour=(0.015168, 0.012135),
        spot_gb_hour=(0.001659, 0.001326),
    ),
}


def prices_for(region: str | None) -> tuple[str, RegionPrices]:
    """The region whose prices apply (``region`` if the table has it) and its prices."""
    if region in PRICES:
        return region, PRICES[region]
    return DEFAULT_REGION, PRICES[DEFAULT_REGION]


@dataclass(frozen=True, slots=True)
class Cost:
    step_functions: float
    lambda_: float
    containers: float
    priced_region: str = DEFAULT_REGION

    @property
    def total(self) -> float:
        return self.step_functions + self.lambda_ + self.containers

    def as_dict(self) -> dict[str, float]:
        return {
            "step_functions": round(self.step_functions, 8),
            "lambda": round(self.lambda_, 8),
            "containers": round(self.containers, 8),
            "total": round(self.total, 8),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """One unit's or item's compute: its route and how long it ran (or is expected to)."""

    route: str
    seconds: float


def container_hourly(
    cpu_units: int,
    memory_mb: int,
    *,
    spot: bool,
    architecture: Architecture = "x86_64",
    region: str | None = DEFAULT_REGION,
) -> float:
    """What one task of this size costs per hour."""
    _, prices = prices_for(region)
    vcpu = prices.fargate_spot_per_vcpu_hour if spot else prices.fargate_per_vcpu_hour
    memory = prices.fargate_spot_per_gb_hour if spot else prices.fargate_per_gb_hour
    return cpu_units / 1024 * vcpu[architecture] + memory_mb / 1024 * memory[architecture]


def estimate(
    units: Iterable[Usage],
    *,
    lambda_memory_mb: int,
    cpu_units: int,
    memory_mb: int,
    spot: bool,
    architecture: Architecture = "x86_64",
    lambda_architecture: Architecture = "x86_64",
    region: str | None = DEFAULT_REGION,
) -> Cost:
    """The cost of a run whose units (one Distributed Map child each) used ``units``.

    ``architecture`` is the containers', ``lambda_architecture`` the functions'.
    """
    priced_region, prices = prices_for(region)
    transitions = PARENT_TRANSITIONS
    lambda_seconds = 0.0
    lambda_requests = 0
    billed_container_seconds = 0.0
    for unit in units:
        transitions += DISTRIBUTED_MAP_CHILD_START_TRANSITIONS + CHILD_TRANSITIONS.get(
            unit.route, 4
        )
        if unit.route == "lambda":
            lambda_seconds += unit.seconds
            lambda_requests += 1
        else:
            billed_container_seconds += max(unit.seconds, FARGATE_MINIMUM_SECONDS)
    hourly = container_hourly(
        cpu_units, memory_mb, spot=spot, architecture=architecture, region=priced_region
    )
    return Cost(
        step_functions=transitions * prices.per_transition,
        lambda_=lambda_seconds
        * lambda_memory_mb
        / 1024
        * prices.lambda_per_gb_second[lambda_architecture]
        + lambda_requests * prices.lambda_per_request,
        containers=billed_container_seconds / 3600 * hourly,
        priced_region=priced_region,
    )


def usage_from_ledger(items: Iterable[Mapping[str, Any]]) -> list[Usage]:
    """Per-unit usage from item records: items of one unit ran back to back."""
    by_unit: dict[tuple[Any, str], float] = {}
    for item in items:
        key = (item.get("unit"), str(item.get("route", "lambda")))
        by_unit[key] = by_unit.get(key, 0.0) + float(item.get("duration_seconds") or 0.0)
    return [Usage(route=route, seconds=seconds) for (_, route), seconds in by_unit.items()]
