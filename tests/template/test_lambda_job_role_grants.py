"""The functions that run a job's commands on Lambda may assume the stack's job roles and
nothing else, and the job roles (JobCompute) trust them."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from stepburst.job_credentials import job_role_arn

pytestmark = pytest.mark.template

JOB_ROLES = (
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/stepburst/${AWS::StackName}/"
    "${AWS::StackName}-job-*"
)
COMMAND_FUNCTIONS = ("ProcessItemsFunction", "CombineFunction")


def assume_role_statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in resource["Properties"].get("Policies", []):
        if isinstance(policy, dict):
            for statement in policy.get("Statement", []):
                actions = statement.get("Action", [])
                if "sts:AssumeRole" in (actions if isinstance(actions, list) else [actions]):
                    found.append(statement)
    return found


def test_only_the_command_functions_may_assume_roles_and_only_job_roles(
    template: dict[str, Any],
) -> None:
    assuming = {
        logical_id: assume_role_statements(resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function" and assume_role_statements(resource)
    }

    assert sorted(assuming) == sorted(COMMAND_FUNCTIONS)
    for logical_id, statements in assuming.items():
        assert statements == [
            {
                "Sid": "RunCommandsAsTheirJob",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": {"Fn::Sub": JOB_ROLES},
            }
        ], logical_id


def test_the_pattern_matches_the_roles_job_compute_names() -> None:
    pattern = (
        JOB_ROLES.replace("${AWS::Partition}", "aws")
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::StackName}", "stepburst-prod")
    )

    assert fnmatch.fnmatchcase(
        job_role_arn("aws", "123456789012", "stepburst-prod", "dam-periods"), pattern
    )
    # Another stack's job roles stay out of reach.
    assert not fnmatch.fnmatchcase(
        job_role_arn("aws", "123456789012", "stepburst-dev", "dam-periods"), pattern
    )


def test_every_job_role_trusts_the_command_functions_roles(template: dict[str, Any]) -> None:
    properties = template["Resources"]["JobCompute"]["Properties"]

    assert properties["TrustedRoleArns"] == [
        {"Fn::GetAtt": [f"{function}Role", "Arn"]} for function in COMMAND_FUNCTIONS
    ]
