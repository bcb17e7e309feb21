"""botocore's models of the AWS APIs, loaded once: the deployer's and the interpreter's casing.

CloudFormation properties and Step Functions parameters are PascalCase; the APIs behind them
use their own casing. Both conversions read the operation's shapes from botocore.
"""

from __future__ import annotations

import functools
from typing import Any


def operation_model(service: str, action: str) -> Any:
    """botocore's model of ``service``'s operation ``action`` (snake_case), or None."""
    return _operations(service).get(action)


def modeled_errors(service: str) -> frozenset[str]:
    """The error codes ``service``'s model declares (each an exception class of the SDK)."""
    return _modeled_errors(service)


@functools.cache
def _botocore_session() -> Any:
    from botocore.session import get_session

    # One session for every model: each new session re-reads botocore's data files.
    return get_session()


@functools.cache
def _service_model(service: str) -> Any:
    return _botocore_session().get_service_model(service)


@functools.cache
def _operations(service: str) -> dict[str, Any]:
    from botocore import xform_name

    model = _service_model(service)
    return {xform_name(name): model.operation_model(name) for name in model.operation_names}


@functools.cache
def _modeled_errors(service: str) -> frozenset[str]:
    return frozenset(shape.name for shape in _service_model(service).error_shapes)
