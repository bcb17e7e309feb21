"""Cost estimates from list prices (us-east-1, on demand, as published in 2026).

Estimates, not bills: they show what a plan or a run costs in order of magnitude and which
route dominates. Free tiers, data transfer, S3 requests and storage are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
FARGATE_PER_VCPU_HOUR = 0.04048
FARGATE_PER_GB_HOUR = 0.004445
# Fargate Spot has run at about 70% below on-demand.
FARGATE_SPOT_DISCOUNT = 0.70
# Transitions of the coordinator outside the fan-out, and of one child execution per route.
PARENT_TRANSITIONS = 8
CHILD_TRANSITIONS = {"lambda": 3, "ecs": 4, "batch": 4}


@dataclass(frozen=True, slots=True)
class Cost:
    step_functions: float
    lambda_: float
    containers: float

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


def container_hourly(cpu_units: int, memory_mb: int, *, spot: bool) -> float:
    hourly = cpu_units / 1024 * FARGATE_PER_VCPU_HOUR + memory_mb / 1024 * FARGATE_PER_GB_HOUR
    return hourly * (1 - FARGATE_SPOT_DISCOUNT) if spot else hourly


def estimate(
    units: Iterable[Usage],
    *,
    lambda_memory_mb: int,
    cpu_units: int,
    memory_mb: int,
    spot: bool,
) -> Cost:
    transitions = PARENT_TRANSITIONS
    lambda_seconds = 0.0
    lambda_requests = 0
    container_seconds = 0.0
    for unit in units:
        transitions += CHILD_TRANSITIONS.get(unit.route, 4)
        if unit.route == "lambda":
            lambda_seconds += unit.seconds
            lambda_requests += 1
        else:
            container_seconds += unit.seconds
    return Cost(
        step_functions=transitions * STEP_FUNCTIONS_PER_TRANSITION,
        lambda_=lambda_seconds * lambda_memory_mb / 1024 * LAMBDA_PER_GB_SECOND
        + lambda_requests * LAMBDA_PER_REQUEST,
        containers=container_seconds / 3600 * container_hourly(cpu_units, memory_mb, spot=spot),
    )


def usage_from_ledger(items: Iterable[Mapping[str, Any]]) -> list[Usage]:
    """Per-unit usage from item records: items of one unit ran back to back."""
    by_unit: dict[tuple[Any, str], float] = {}
    for item in items:
        key = (item.get("unit"), str(item.get("route", "lambda")))
        by_unit[key] = by_unit.get(key, 0.0) + float(item.get("duration_seconds") or 0.0)
    return [Usage(route=route, seconds=seconds) for (_, route), seconds in by_unit.items()]
