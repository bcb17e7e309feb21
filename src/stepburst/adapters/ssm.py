"""SSM Parameter Store: read a parameter."""

from __future__ import annotations

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ParameterNotFoundError

# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
_CODES: Codes = {"ParameterNotFound": ParameterNotFoundError}


def get_parameter(name: str) -> str:
    """The parameter's value; ParameterNotFoundError if there is no such parameter."""
    with translated(f"reading parameter {name}", _CODES):
        response = aws.client("ssm").get_parameter(Name=name)
    return response["Parameter"]["Value"]
