"""A job's compute: what AWS cannot place is refused when the job file is read, by field."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.errors import JobSpecError
from stepburst.jobs import parse_job
from stepburst.jobs.compute_rules import FARGATE_MEMORY, instance_architecture

pytestmark = pytest.mark.unit

BASE = {
    "name": "triage",
    "split": {"items": {}},
    "run": {"command": "triage --tb Ref::experiment_file Ref::replace"},
    "output": {"prefix": "triage/"},
}


def job(**fields: Any) -> Any:
    return parse_job({**BASE, **fields}, "triage.yaml")


@pytest.mark.parametrize(
    ("compute", "field", "problem"),
    [
        ({"cpu": 256, "memory_mb": 4096}, "compute.memory_mb", "256 CPU units with 512, 1024"),
        ({"cpu": 1024, "memory_mb": 16384}, "compute.memory_mb", "not 16384"),
        ({"cpu": 8192, "memory_mb": 18000}, "compute.memory_mb", "in steps of 4096"),
        (
            {"platform": "batch", "cpu": 1024, "memory_mb": 16384, "batch": {}},
            "compute.memory_mb",
            "Fargate runs 1024",
        ),
        ({"architecture": "arm64", "spot": True}, "compute.spot", "x86_64 only"),
        (
            {"platform": "batch", "architecture": "arm64", "spot": False, "batch": {"spot": True}},
            "compute.batch.spot",
            "x86_64 only",
        ),
        ({"platform": "batch", "batch": {"gpus": 1}}, "compute.batch.gpus", "no GPUs"),
        ({"platform": "ecs", "batch": {"capacity": "ec2"}}, "compute.batch", "platform: batch"),
        (
            {"platform": "batch", "batch": {"instance_types": ["c6i"]}},
            "compute.batch.instance_types",
            "only capacity: ec2",
        ),
        (
            {
                "platform": "batch",
                "architecture": "arm64",
                "batch": {"capacity": "ec2", "instance_types": ["m7g", "c6i.large"]},
            },
            "compute.batch.instance_types[1]",
            "c6i.large is x86_64, the job is arm64",
        ),
        (
            {"platform": "batch", "batch": {"capacity": "ec2", "instance_types": ["m7g.xlarge"]}},
            "compute.batch.instance_types[0]",
            "m7g.xlarge is arm64",
        ),
        (
            {
                "platform": "batch",
                "batch": {"capacity": "ec2", "instance_types": ["optimal"]},
                "architecture": "arm64",
            },
            "compute.batch.instance_types[0]",
            "optimal is x86_64",
        ),
        ({"storage_gb": 20}, "compute.storage_gb", "21 to 200"),
        ({"storage_gb": 201}, "compute.storage_gb", "21 to 200"),
        ({"image": "Not An Image"}, "compute.image", "does not match"),
        ({"image": "triage:3.3.0"}, "compute.image", "platform ecs or batch"),
    ],
)
def test_a_combination_aws_cannot_place_is_refused_by_field(
    compute: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(JobSpecError) as raised:
        job(compute=compute)
    assert raised.value.field == field
    assert problem in raised.value.problem


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"access": {"read": ["https://example.com/x"]}}, "access.read[0]"),
        ({"access": {"write": ["s3://A_Bucket/x"]}}, "access.write[0]"),
        (
            {"compute": {"platform": "ecs"}, "secrets": {"DB PASSWORD": "/db/password"}},
            "secrets.DB PASSWORD",
        ),
        (
            {"compute": {"platform": "ecs"}, "secrets": {"DB_PASSWORD": "arn:aws:s3:::x"}},
            "secrets.DB_PASSWORD",
        ),
    ],
)
def test_access_and_secrets_are_checked_by_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(JobSpecError) as raised:
        job(**fields)
    assert raised.value.field.startswith(field)


def test_ec2_capacity_takes_sizes_fargate_has_not() -> None:
    ec2 = job(
        compute={
            "platform": "batch",
            "architecture": "arm64",
            "cpu": 1024,
            "memory_mb": 16384,
            "storage_gb": 500,
            "batch": {"capacity": "ec2", "instance_types": ["m7g", "c7gn.large"], "spot": True},
        }
    ).compute
    assert ec2.on_ec2
    assert ec2.uses_spot
    gpu = job(compute={"platform": "batch", "batch": {"capacity": "ec2", "gpus": 1}}).compute
    assert gpu.batch is not None
    assert gpu.batch.gpus == 1


def test_arm64_on_fargate_runs_on_demand_unless_spot_is_asked_for() -> None:
    arm = job(compute={"architecture": "arm64"}).compute
    assert not arm.uses_spot
    assert job().compute.uses_spot


def test_secrets_reach_lambda_items_too() -> None:
    # Items on Lambda read their secrets when they run (stepburst.secret_values).
    assert job(secrets={"TOKEN": "/triage/token"}).secrets == {"TOKEN": "/triage/token"}


def test_a_job_declares_secrets_and_data_locations() -> None:
    declared = job(
        compute={"platform": "batch"},
        access={"read": ["s3://reference-data/maps/"], "write": ["s3://shared-results/triage/"]},
        secrets={
            "POSTGRES_PASSWORD": "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf",
            "API_TOKEN": "/triage/api-token",
        },
    )
    assert declared.access.read == ["s3://reference-data/maps/"]
    assert set(declared.secrets) == {"POSTGRES_PASSWORD", "API_TOKEN"}


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [
        ("optimal", "x86_64"),
        ("default_arm64", "arm64"),
        ("m7g", "arm64"),
        ("c6gn.2xlarge", "arm64"),
        ("a1.large", "arm64"),
        ("g5g.xlarge", "arm64"),
        ("g5.xlarge", "x86_64"),
        ("c6i.large", "x86_64"),
        ("p4d.24xlarge", "x86_64"),
    ],
)
def test_instance_families_have_their_architecture(instance_type: str, architecture: str) -> None:
    assert instance_architecture(instance_type) == architecture


def test_every_fargate_size_is_accepted() -> None:
    for cpu, sizes in FARGATE_MEMORY.items():
        for memory in sizes:
            assert job(compute={"cpu": cpu, "memory_mb": memory}).compute.memory_mb == memory
