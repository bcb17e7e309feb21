"""IAM: the per-job roles that follow the job files."""

from __future__ import annotations

import json
from typing import Any

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ResourceNotFoundError

# https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html
_CODES: Codes = {"NoSuchEntity": ResourceNotFoundError}


def role_names(path: str) -> list[str]:
    """Names of the roles under an IAM path."""
    with translated(f"listing roles under {path}", _CODES):
        pages = aws.client("iam").get_paginator("list_roles").paginate(PathPrefix=path)
        return [role["RoleName"] for page in pages for role in page["Roles"]]


def put_role(
    *,
    name: str,
    path: str,
    trust: dict[str, Any],
    policies: dict[str, dict[str, Any]],
    description: str,
    tags: dict[str, str],
) -> str:
    """Create the role or bring its trust and inline policies to these; returns its ARN."""
    iam = aws.client("iam")
    trust_document = json.dumps(trust)
    with translated(f"creating or updating role {name}", _CODES):
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(
                RoleName=name,
                Path=path,
                AssumeRolePolicyDocument=trust_document,
                Description=description[:1000],
                Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
            )["Role"]["Arn"]
        else:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust_document)
        present = set(iam.list_role_policies(RoleName=name)["PolicyNames"])
        for policy_name, document in policies.items():
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
        for stale in sorted(present - set(policies)):
            iam.delete_role_policy(RoleName=name, PolicyName=stale)
    return str(arn)


def role_policies(name: str) -> dict[str, dict[str, Any]]:
    """A role's inline policies, by name."""
    iam = aws.client("iam")
    with translated(f"reading the policies of role {name}", _CODES):
        names = iam.list_role_policies(RoleName=name)["PolicyNames"]
        found: dict[str, dict[str, Any]] = {}
        for policy_name in names:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            found[policy_name] = (
                json.loads(document) if isinstance(document, str) else dict(document)
            )
        return found


def delete_role(name: str) -> None:
    """Delete a role and its inline policies."""
    iam = aws.client("iam")
    with translated(f"deleting role {name}", _CODES):
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
