"""The cost model against bills computed by hand, term by term, from AWS's price pages."""

from __future__ import annotations

import pytest

from stepburst import costs
from stepburst.costs import Usage

pytestmark = pytest.mark.unit


def test_a_million_items_in_lambda_units_cost_what_the_bill_says() -> None:
    # 1,000,000 items in 10,000 Lambda units of 100 items, 20 s per unit, 1,769 MB, us-east-1.
    units = [Usage("lambda", 20.0)] * 10_000

    cost = costs.estimate(units, lambda_memory_mb=1769, cpu_units=1024, memory_mb=2048, spot=True)

    # Step Functions Standard, $0.025 per 1,000 transitions: the coordinator's 8, and per
    # child 1 for its start by the Distributed Map plus its own 3.
    transitions = 8 + 10_000 * (1 + 3)
    assert cost.step_functions == pytest.approx(transitions * 0.025 / 1000)
    assert cost.step_functions == pytest.approx(1.0002)
    # Lambda x86_64: 200,000 s at 1,769/1,024 GB, $0.0000166667 per GB-s; $0.20 per 1M requests.
    gb_seconds = 10_000 * 20.0 * 1769 / 1024
    assert cost.lambda_ == pytest.approx(gb_seconds * 0.0000166667 + 10_000 * 0.20 / 1e6)
    assert cost.containers == 0
    assert cost.priced_region == "us-east-1"


def test_fargate_bills_a_minute_at_least_per_task_by_region_and_architecture() -> None:
    # Three ECS tasks of 10 s, 59 s and 90 s; 2 vCPU, 4 GB; arm64 on demand in eu-central-1.
    units = [Usage("ecs", 10.0), Usage("ecs", 59.0), Usage("batch", 90.0)]

    cost = costs.estimate(
        units,
        lambda_memory_mb=1024,
        cpu_units=2048,
        memory_mb=4096,
        spot=False,
        architecture="arm64",
        region="eu-central-1",
    )

    # Billed seconds: 60 + 60 + 90 (the first two at the one-minute minimum).
    billed_hours = (60 + 60 + 90) / 3600
    # Linux/ARM in Frankfurt: $0.03725 per vCPU-hour, $0.00409 per GB-hour.
    hourly = 2 * 0.03725 + 4 * 0.00409
    assert cost.containers == pytest.approx(billed_hours * hourly)
    assert cost.step_functions == pytest.approx((8 + 3 * (1 + 4)) * 0.025 / 1000)
    assert cost.lambda_ == 0
    assert cost.priced_region == "eu-central-1"


def test_fargate_spot_and_arm64_lambda_use_their_own_rates() -> None:
    units = [Usage("ecs", 3600.0), Usage("lambda", 100.0)]

    cost = costs.estimate(
        units,
        lambda_memory_mb=2048,
        cpu_units=1024,
        memory_mb=2048,
        spot=True,
        lambda_architecture="arm64",
    )

    # Fargate Spot x86_64 in us-east-1: $0.012144 per vCPU-hour, $0.0013335 per GB-hour.
    assert cost.containers == pytest.approx(1 * 0.012144 + 2 * 0.0013335)
    # Lambda arm64: $0.0000133334 per GB-s.
    assert cost.lambda_ == pytest.approx(100 * 2 * 0.0000133334 + 0.20 / 1e6)


def test_a_region_without_prices_is_priced_as_us_east_1_and_says_so() -> None:
    usage = [Usage("ecs", 120.0)]
    kwargs = {"lambda_memory_mb": 1024, "cpu_units": 1024, "memory_mb": 2048, "spot": False}

    elsewhere = costs.estimate(usage, region="sa-east-1", **kwargs)  # type: ignore[arg-type]
    virginia = costs.estimate(usage, region="us-east-1", **kwargs)  # type: ignore[arg-type]

    assert elsewhere == virginia
    assert elsewhere.priced_region == "us-east-1"


def test_every_region_prices_both_architectures() -> None:
    for region, prices in costs.PRICES.items():
        for table in (
            prices.lambda_per_gb_second,
            prices.fargate_per_vcpu_hour,
            prices.fargate_per_gb_hour,
            prices.fargate_spot_per_vcpu_hour,
            prices.fargate_spot_per_gb_hour,
        ):
            assert set(table) == {"x86_64", "arm64"}, region
            assert all(value > 0 for value in table.values()), region
        assert prices.fargate_spot_per_vcpu_hour["x86_64"] < prices.fargate_per_vcpu_hour["x86_64"]
