"""What a job's own Batch compute environment needs in the in-memory AWS: the stack's subnets,
security group and instance profile, and Batch's service-linked role (all of which the real
stack, or Batch itself, has made before the JobCompute resource runs)."""

from __future__ import annotations

import json
from typing import Any

import boto3


def create_batch_network() -> dict[str, Any]:
    """Create them; returns the JobCompute resource's properties that name them."""
    ec2 = boto3.client("ec2")
    iam = boto3.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24")["Subnet"]["SubnetId"]
        for index in range(2)
    ]
    group = ec2.create_security_group(GroupName="workers", Description="workers", VpcId=vpc)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(
        RoleName="stepburst-BatchInstanceRole", AssumeRolePolicyDocument=json.dumps(trust)
    )
    profile = iam.create_instance_profile(InstanceProfileName="stepburst-BatchInstanceProfile")
    iam.add_role_to_instance_profile(
        InstanceProfileName="stepburst-BatchInstanceProfile", RoleName="stepburst-BatchInstanceRole"
    )
    iam.create_role(
        RoleName="AWSServiceRoleForBatch",
        Path="/aws-service-role/batch.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(
            {
                **trust,
                "Statement": [
                    {**trust["Statement"][0], "Principal": {"Service": "batch.amazonaws.com"}}
                ],
            }
        ),
    )
    return {
        "Subnets": subnets,
        "SecurityGroupIds": [group["GroupId"]],
        "InstanceProfileArn": profile["InstanceProfile"]["Arn"],
        "MaxVcpus": "64",
    }
