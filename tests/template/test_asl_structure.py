"""Every state machine definition is wired correctly: transitions and substitutions.

Step Functions rejects a definition with a dangling transition only at deploy time, and an
unknown `${Name}` survives as literal text until the state runs. Both are caught here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.template

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((REPO / "statemachines").glob("*.asl.json"))
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


def load_definition(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def state_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Serverless state machines by the definition file they load."""
    return {
        resource["Properties"]["DefinitionUri"]: resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        and isinstance(resource["Properties"].get("DefinitionUri"), str)
    }


def scopes(machine: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The machine and every nested machine (Map processors, Parallel branches), with a path."""
    yield path or "<root>", machine
    for name, state in machine["States"].items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is not None:
            yield from scopes(processor, f"{path}/{name}")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{path}/{name}[{index}]")


def transitions(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def reachable(machine: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [machine["StartAt"]]
    while pending:
        name = pending.pop()
        if name in seen or name not in machine["States"]:
            continue
        seen.add(name)
        pending.extend(transitions(machine["States"][name]))
    return seen


def invoked_functions(machine: dict[str, Any]) -> Iterator[str]:
    """The FunctionName (or bare Resource) of every Lambda task, at any depth."""
    for _, scope in scopes(machine):
        for state in scope["States"].values():
            if state.get("Type") != "Task":
                continue
            resource = state.get("Resource", "")
            if resource.startswith(LAMBDA_INVOKE):
                arguments = state.get("Parameters") or state.get("Arguments") or {}
                yield arguments["FunctionName"]
            elif SUBSTITUTION.fullmatch(resource):
                yield resource


def test_there_are_definitions() -> None:
    assert DEFINITIONS, "no statemachines/*.asl.json found"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.name)
def test_every_transition_targets_a_state_in_its_scope(path: Path) -> None:
    problems = []
    for where, machine in scopes(load_definition(path)):
        names = set(machine["States"])
        if machine["StartAt"] not in names:
            problems.append(f"{where}: StartAt {machine['StartAt']!r} is not a state")
        for name, state in machine["States"].items():
            problems.extend(
                f"{where}/{name}: goes to unknown state {target!r}"
                for target in transitions(state)
                if target not in names
            )
            terminal = state["Type"] in {"Choice", "Succeed", "Fail"}
            if not terminal and ("Next" in state) == bool(state.get("End")):
                problems.append(f"{where}/{name}: needs exactly one of Next and End")
        problems.extend(
            f"{where}/{name}: unreachable from {machine['StartAt']!r}"
            for name in sorted(names - reachable(machine))
        )

    assert problems == []


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.name)
def test_substitutions_match_the_template_exactly(path: Path, template: dict[str, Any]) -> None:
    uri = path.relative_to(REPO).as_posix()
    machines = state_machines(template)
    assert uri in machines, f"{uri} is not the DefinitionUri of any state machine"
    defined = set(machines[uri]["Properties"].get("DefinitionSubstitutions", {}))
    used = set(SUBSTITUTION.findall(path.read_text()))

    assert sorted(used - defined) == [], "used in the definition but not substituted"
    assert sorted(defined - used) == [], "substituted but never used"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda path: path.name)
def test_lambda_tasks_invoke_functions_of_this_template(
    path: Path, template: dict[str, Any]
) -> None:
    machine = state_machines(template)[path.relative_to(REPO).as_posix()]
    substitutions = machine["Properties"].get("DefinitionSubstitutions", {})
    functions = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Lambda::Function"}
    }
    targets = list(invoked_functions(load_definition(path)))
    assert targets, "expected at least one Lambda task"

    for target in targets:
        match = SUBSTITUTION.fullmatch(target)
        assert match, f"Lambda task hard-codes {target!r} instead of a substitution"
        value = substitutions[match.group(1)]
        assert value in [{"Fn::GetAtt": [name, "Arn"]} for name in functions] or value in [
            {"Ref": name} for name in functions
        ], f"{match.group(1)} is {value!r}, not a function of this template"
