"""CloudFormation: read a deployed stack's outputs."""

from __future__ import annotations

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ResourceNotFoundError

# DescribeStacks answers ValidationError for a stack that does not exist.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
_CODES: Codes = {"ValidationError": ResourceNotFoundError}


def stack_outputs(stack_name: str) -> dict[str, str]:
    """The stack's outputs by key; ResourceNotFoundError if there is no such stack."""
    with translated(f"describing stack {stack_name}", _CODES):
        response = aws.client("cloudformation").describe_stacks(StackName=stack_name)
    (stack,) = response["Stacks"]
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stack.get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
