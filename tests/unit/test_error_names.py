"""The error names the state machine matches are the domain errors that stepburst raises."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest

import stepburst
from stepburst import errors
from stepburst.errors import STATE_MACHINE_ERRORS, StepburstError

from .asl_support import all_states

pytestmark = pytest.mark.unit

# Errors Step Functions and the services it calls name themselves.
AWS_PREFIXES = frozenset({"States", "Lambda", "Sandbox", "ECS", "AmazonECS", "Batch", "DynamoDB"})
# Errors the state machine raises itself, from its Fail and Pass states.
OWN_PREFIX = "Stepburst"


def matched_names() -> set[str]:
    """Every name in an ErrorEquals of a Retry or Catch rule."""
    return {
        name
        for _, state in all_states()
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]
        for name in rule["ErrorEquals"]
    }


def raised_by_the_state_machine() -> set[str]:
    raised = set()
    for _, state in all_states():
        if state["Type"] == "Fail" and "Error" in state:
            raised.add(state["Error"])
        if state["Type"] == "Pass" and "Error" in state.get("Parameters", {}):
            raised.add(state["Parameters"]["Error"])
    return raised


def subclasses(cls: type[StepburstError]) -> Iterator[type[StepburstError]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from subclasses(subclass)


def test_every_custom_error_name_is_a_domain_error_the_state_machine_expects() -> None:
    custom = {name for name in matched_names() if "." not in name}
    assert custom == {error.__name__ for error in STATE_MACHINE_ERRORS}


def test_every_error_the_state_machine_expects_is_a_domain_error() -> None:
    for error in STATE_MACHINE_ERRORS:
        assert issubclass(error, StepburstError)
        assert getattr(errors, error.__name__) is error


def test_every_dotted_error_name_is_aws_or_raised_by_the_state_machine() -> None:
    dotted = {name for name in matched_names() if "." in name}
    prefixes = {name.split(".", 1)[0] for name in dotted}
    assert prefixes <= AWS_PREFIXES | {OWN_PREFIX}
    own = {name for name in dotted if name.startswith(f"{OWN_PREFIX}.")}
    assert own <= raised_by_the_state_machine()


def test_no_other_error_class_shares_a_name_the_state_machine_matches() -> None:
    """Lambda reports a bare class name: a namesake elsewhere would be caught the same way."""
    for module in pkgutil.walk_packages(stepburst.__path__, "stepburst."):
        importlib.import_module(module.name)
    expected = {error.__name__ for error in STATE_MACHINE_ERRORS}
    namesakes = [error for error in subclasses(StepburstError) if error.__name__ in expected]
    assert sorted(error.__name__ for error in namesakes) == sorted(expected)
