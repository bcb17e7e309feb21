"""Routing items by estimated duration and grouping them into work units."""

from __future__ import annotations

import pytest

from stepburst.jobs import Job, parse_job
from stepburst.layout import item_sort_key
from stepburst.manifest import Item, Unit
from stepburst.planning import MAX_ITEMS_PER_UNIT, route_for
from stepburst.planning import build_units as build_stack_units

pytestmark = pytest.mark.unit

STACK = "sb"


def build_units(job: Job, items: list[Item]) -> list[Unit]:
    return build_stack_units(job, items, stack=STACK)


def job(**changes: object) -> Job:
    document = {
        "name": "scores",
        "split": {"jsonl": {}},
        "run": {"function": "m:f"},
        "output": {"prefix": "out/"},
        **changes,
    }
    return parse_job(document, "scores.yaml")


def items(*seconds: float) -> list[Item]:
    return [
        Item(index=i, sk=item_sort_key(i), estimated_seconds=s, value=str(i))
        for i, s in enumerate(seconds)
    ]


def test_auto_routes_long_items_to_a_container() -> None:
    auto = job(compute={"lambda_max_seconds": 300})
    assert route_for(auto, 299) == "lambda"
    assert route_for(auto, 301) == "ecs"
    assert route_for(job(compute={"platform": "batch"}), 1) == "batch"


def test_containers_get_one_item_per_unit_and_the_job_compute() -> None:
    units = build_units(job(compute={"cpu": 2048, "memory_mb": 4096, "spot": False}), items(900))
    assert [unit.route for unit in units] == ["ecs"]
    assert units[0].ecs.cpu == "2048"
    assert units[0].ecs.capacity_provider_strategy == [{"CapacityProvider": "FARGATE", "Weight": 1}]
    assert units[0].batch.resource_requirements[0] == {"Type": "VCPU", "Value": "2"}


def test_small_items_stay_parallel_up_to_the_concurrency() -> None:
    units = build_units(job(max_concurrency=10), items(*[1.0] * 10))
    assert len(units) == 10


def test_many_small_items_are_grouped_within_limits() -> None:
    units = build_units(job(max_concurrency=10), items(*[1.0] * 100_000))
    assert all(len(unit.items) <= MAX_ITEMS_PER_UNIT for unit in units)
    assert sum(len(unit.items) for unit in units) == 100_000
    assert len(units) == 1000


def test_lambda_groups_respect_the_time_budget() -> None:
    units = build_units(
        job(max_concurrency=1, compute={"lambda_max_seconds": 100}), items(*[40.0] * 5)
    )
    assert [len(unit.items) for unit in units] == [2, 2, 1]


def test_container_items_are_units_of_their_own_and_fallback_follows_platform() -> None:
    units = build_units(job(max_concurrency=100), items(1, 900, 1))
    assert sorted((unit.route, [i.index for i in unit.items]) for unit in units) == [
        ("ecs", [1]),
        ("lambda", [0]),
        ("lambda", [2]),
    ]
    assert [unit.index for unit in units] == [0, 1, 2]
    assert {unit.fallback for unit in units} == {"ecs"}
    assert build_units(job(compute={"platform": "batch"}), items(1))[0].fallback == "batch"


def test_arm64_containers_run_on_demand_because_fargate_spot_is_x86_only() -> None:
    (unit,) = build_units(job(compute={"architecture": "arm64"}), items(900))
    assert unit.ecs.capacity_provider_strategy == [{"CapacityProvider": "FARGATE", "Weight": 1}]
    assert unit.batch.job_queue == "sb-fargate-on-demand"


def test_each_unit_names_its_jobs_definitions_and_queue() -> None:
    (ecs,) = build_units(job(compute={"platform": "ecs"}), items(900))
    assert ecs.ecs.task_definition == "sb-job-scores"
    assert ecs.batch.job_definition == "sb-job-scores"
    (arm,) = build_units(
        job(
            compute={
                "platform": "batch",
                "architecture": "arm64",
                "cpu": 1024,
                "memory_mb": 16384,
                "batch": {"capacity": "ec2", "spot": True, "gpus": 1},
            }
        ),
        items(900),
    )
    assert arm.batch.job_queue == "sb-ec2-spot-arm64"
    assert arm.batch.on_demand_queue == "sb-ec2-on-demand-arm64"
    assert {"Type": "GPU", "Value": "1"} in arm.batch.resource_requirements
    (fargate,) = build_units(job(compute={"platform": "batch"}), items(900))
    assert fargate.batch.job_queue == "sb-fargate-spot"
