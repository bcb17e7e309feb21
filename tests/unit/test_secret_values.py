"""Secret values: redaction and the environment an item function sees."""

from __future__ import annotations

import os

import pytest

from stepburst.secret_values import NO_SECRETS, SecretValues, read_secrets

pytestmark = pytest.mark.unit


def test_redaction_replaces_whole_values_longest_first() -> None:
    secrets = SecretValues({"SHORT": "abc", "LONG": "abcdef", "EMPTY": ""})
    assert secrets.redact("x abcdef y abc z") == "x *** y *** z"
    assert secrets.redact_value({"k": ["abc", 1, {"abcdef": "ok"}]}) == {
        "k": ["***", 1, {"***": "ok"}]
    }
    assert "abc" not in repr(secrets)
    assert NO_SECRETS.redact("abc") == "abc"


def test_functions_see_secrets_in_the_environment_only_while_they_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEPT", "before")
    monkeypatch.delenv("ADDED", raising=False)
    secrets = SecretValues({"KEPT": "during", "ADDED": "new"})
    with secrets.in_environment():
        assert (os.environ["KEPT"], os.environ["ADDED"]) == ("during", "new")
    assert os.environ["KEPT"] == "before"
    assert "ADDED" not in os.environ


def test_a_variable_already_set_is_used_without_reading_aws() -> None:
    # No AWS is reachable in unit tests: a read would fail.
    values = read_secrets({"TOKEN": "/never/read"}, environ={"TOKEN": "from-task"})
    assert values.as_environment() == {"TOKEN": "from-task"}
