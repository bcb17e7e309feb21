"""EC2: the launch templates of jobs whose Batch compute environments need one (a bigger
root volume)."""

from __future__ import annotations

from typing import Any

from stepburst import aws
from stepburst.adapters.translation import translated


def launch_templates(prefix: str) -> dict[str, int]:
    """Launch templates whose names start with ``prefix``: name -> latest version number."""
    with translated(f"listing launch templates {prefix}*"):
        pages = aws.client("ec2").get_paginator("describe_launch_templates").paginate()
        return {
            template["LaunchTemplateName"]: int(template["LatestVersionNumber"])
            for page in pages
            for template in page["LaunchTemplates"]
            if template["LaunchTemplateName"].startswith(prefix)
        }


def launch_template_description(name: str, version: int) -> str:
    """The description of one version of a launch template ("" without one)."""
    with translated(f"describing launch template {name} version {version}"):
        found = aws.client("ec2").describe_launch_template_versions(
            LaunchTemplateName=name, Versions=[str(version)]
        )
    (described,) = found["LaunchTemplateVersions"]
    return str(described.get("VersionDescription") or "")


def create_launch_template(
    name: str, data: dict[str, Any], *, description: str, tags: dict[str, str]
) -> int:
    """Create a launch template; returns its first version number."""
    with translated(f"creating launch template {name}"):
        created = aws.client("ec2").create_launch_template(
            LaunchTemplateName=name,
            VersionDescription=description,
            LaunchTemplateData=data,  # type: ignore[arg-type]
            TagSpecifications=[
                {
                    "ResourceType": "launch-template",
                    "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            ],
        )
    return int(created["LaunchTemplate"]["LatestVersionNumber"])


def create_launch_template_version(name: str, data: dict[str, Any], *, description: str) -> int:
    """Add a version to a launch template and make it the default; returns its number."""
    ec2 = aws.client("ec2")
    with translated(f"adding a version to launch template {name}"):
        created = ec2.create_launch_template_version(
            LaunchTemplateName=name,
            VersionDescription=description,
            LaunchTemplateData=data,  # type: ignore[arg-type]
        )
        number = int(created["LaunchTemplateVersion"]["VersionNumber"])
        ec2.modify_launch_template(LaunchTemplateName=name, DefaultVersion=str(number))
    return number


def delete_launch_template(name: str) -> None:
    with translated(f"deleting launch template {name}"):
        aws.client("ec2").delete_launch_template(LaunchTemplateName=name)
