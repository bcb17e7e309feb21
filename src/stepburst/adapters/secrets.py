"""Secret values: Secrets Manager secrets and SSM SecureString parameters.

A source is a Secrets Manager secret ARN (full, or partial without the random suffix), or an
SSM parameter name or ARN. Error messages name the source, never the value.
"""

from __future__ import annotations

import re

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ParameterNotFoundError, ResourceNotFoundError

# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
_SECRET_CODES: Codes = {"ResourceNotFoundException": ResourceNotFoundError}
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
_PARAMETER_CODES: Codes = {"ParameterNotFound": ParameterNotFoundError}
_SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:")


def read_secret(source: str) -> str:
    """The current value of a Secrets Manager secret or an SSM parameter, decrypted."""
    if _SECRETS_MANAGER_ARN.match(source):
        return _secrets_manager_value(source)
    return _parameter_value(source)


def _secrets_manager_value(arn: str) -> str:
    with translated(f"reading secret {arn}", _SECRET_CODES):
        response = aws.client("secretsmanager").get_secret_value(SecretId=arn)
    # A secret holds SecretString or SecretBinary, whichever it was created with.
    if "SecretString" in response:
        return response["SecretString"]
    return bytes(response["SecretBinary"]).decode("utf-8")


def _parameter_value(name: str) -> str:
    # GetParameter takes a name or a parameter ARN alike.
    with translated(f"reading parameter {name}", _PARAMETER_CODES):
        response = aws.client("ssm").get_parameter(Name=name, WithDecryption=True)
    return response["Parameter"]["Value"]
