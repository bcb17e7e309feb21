"""The project's template.yaml as the tests read it: decoded by cfn-lint, with the few derived
facts that fixtures need (the ledger's schema, the functions' environment) taken from it, so a
fixture never repeats by hand what the template declares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"

# The table properties that describe its keys and indexes, as CreateTable takes them.
TABLE_SCHEMA_PROPERTIES = (
    "BillingMode",
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
)


class TemplateModelError(Exception):
    """The template holds something a test fixture cannot derive; the message names it."""


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, with short-form intrinsics (!Ref, !Sub, ...) expanded."""
    template, problems = decode(str(path))
    assert not problems, [str(problem) for problem in problems]
    assert template is not None
    # Round-trip through JSON to drop cfn-lint's node classes and their line bookkeeping.
    return dict(json.loads(json.dumps(template)))


@cache
def _project_template_text() -> str:
    return json.dumps(load_template())


def project_template() -> dict[str, Any]:
    """The repository's template.yaml, decoded once per process; a fresh copy on each call."""
    return dict(json.loads(_project_template_text()))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def table_schema(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """CreateTable's key, attribute and index arguments for the template's table ``logical_id``."""
    resource = template["Resources"][logical_id]
    if resource["Type"] != "AWS::DynamoDB::Table":
        raise TemplateModelError(f"{logical_id} is {resource['Type']}, not AWS::DynamoDB::Table")
    properties = resource["Properties"]
    return {name: properties[name] for name in TABLE_SCHEMA_PROPERTIES if name in properties}


def bucket_versioning(template: dict[str, Any], logical_id: str) -> str | None:
    """The versioning status the template gives the bucket ``logical_id`` (None: left off)."""
    properties = template["Resources"][logical_id].get("Properties", {})
    status = properties.get("VersioningConfiguration", {}).get("Status")
    return str(status) if status is not None else None


def function_environment(
    template: dict[str, Any], function_id: str, refs: Mapping[str, str]
) -> dict[str, str]:
    """The environment Lambda gives ``function_id``: the Globals' variables, then its own.

    ``refs`` names the physical resource each ``!Ref`` stands for; a ``!Ref`` to a parameter
    takes the parameter's default. Any other intrinsic fails, naming the variable.
    """
    globals_ = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][function_id].get("Properties", {})
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **own.get("Environment", {}).get("Variables", {}),
    }
    parameters = template.get("Parameters", {})
    return {
        name: _resolve(name, value, refs, parameters, function_id)
        for name, value in variables.items()
    }


def _resolve(
    name: str,
    value: Any,
    refs: Mapping[str, str],
    parameters: Mapping[str, Any],
    function_id: str,
) -> str:
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and list(value) == ["Ref"]:
        target = value["Ref"]
        if target in refs:
            return refs[target]
        if target in parameters and "Default" in parameters[target]:
            return str(parameters[target]["Default"])
        raise TemplateModelError(
            f"{function_id} {name}: !Ref {target} is neither given nor a parameter with a default"
        )
    raise TemplateModelError(f"{function_id} {name}: cannot derive {value!r}")
