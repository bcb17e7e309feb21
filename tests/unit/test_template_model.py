"""What the fixtures derive from template.yaml: a table's schema, a function's environment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template_model import (
    TemplateModelError,
    bucket_versioning,
    function_environment,
    project_template,
    table_schema,
)

pytestmark = pytest.mark.unit

TEMPLATE: dict[str, Any] = {
    "Parameters": {"Days": {"Type": "Number", "Default": 90}, "Bare": {"Type": "String"}},
    "Globals": {
        "Function": {
            "Environment": {
                "Variables": {"TABLE": {"Ref": "Table"}, "DAYS": {"Ref": "Days"}, "MODE": "a"}
            }
        }
    },
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "Versioned": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        },
        "Plain": {"Type": "AWS::S3::Bucket"},
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Environment": {"Variables": {"MODE": "b", "FLAG": True}}},
        },
        "Odd": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Environment": {"Variables": {"NAME": {"Fn::Sub": "${Table}-x"}}}},
        },
        "Orphan": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Environment": {"Variables": {"BARE": {"Ref": "Bare"}}}},
        },
    },
}


def test_a_function_gets_the_globals_then_its_own_variables() -> None:
    environment = function_environment(TEMPLATE, "Fn", {"Table": "ledger"})

    assert environment == {"TABLE": "ledger", "DAYS": "90", "MODE": "b", "FLAG": "true"}


@pytest.mark.parametrize(
    ("function_id", "refs", "named"),
    [
        ("Fn", {}, "Fn TABLE: !Ref Table"),
        ("Odd", {"Table": "ledger"}, "Odd NAME: cannot derive"),
        ("Orphan", {"Table": "ledger"}, "Orphan BARE: !Ref Bare"),
    ],
)
def test_what_cannot_be_derived_is_named(
    function_id: str, refs: dict[str, str], named: str
) -> None:
    with pytest.raises(TemplateModelError, match=named):
        function_environment(TEMPLATE, function_id, refs)


def test_a_table_schema_is_its_keys_attributes_and_billing_only() -> None:
    assert table_schema(TEMPLATE, "Table") == {
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    }
    with pytest.raises(TemplateModelError, match="Plain is AWS::S3::Bucket, not"):
        table_schema(TEMPLATE, "Plain")


def test_bucket_versioning_is_read_where_the_template_sets_it() -> None:
    assert bucket_versioning(TEMPLATE, "Versioned") == "Enabled"
    assert bucket_versioning(TEMPLATE, "Plain") is None


def test_the_project_ledger_has_the_index_the_runs_listing_queries() -> None:
    schema = table_schema(project_template(), "LedgerTable")

    assert [index["IndexName"] for index in schema["GlobalSecondaryIndexes"]] == ["ByJob"]
    defined = {attribute["AttributeName"] for attribute in schema["AttributeDefinitions"]}
    keyed = {key["AttributeName"] for key in schema["KeySchema"]} | {
        key["AttributeName"] for key in schema["GlobalSecondaryIndexes"][0]["KeySchema"]
    }
    assert defined == keyed


def test_project_template_hands_out_copies() -> None:
    first = project_template()
    first["Resources"].clear()

    assert project_template()["Resources"]
