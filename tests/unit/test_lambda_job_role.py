"""Commands on Lambda run with the job's role: the role's ARN, where it comes from on each
route, and who its trust policy lets assume it."""

from __future__ import annotations

import fnmatch

import pytest

from stepburst.job_compute import StackCompute, access_policy, job_role_trust, task_definition
from stepburst.job_credentials import JOB_ROLE_VARIABLE, job_role_arn, job_role_for
from stepburst.jobs import parse_job
from stepburst.layout import combine_manifest_key

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-worker"
PROCESS_ITEMS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-ProcessItemsFunctionRole-A1"
COMBINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-CombineFunctionRole-B2"
PROCESS_ITEMS = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:stepburst-ProcessItems-X"
# What the functions' roles may assume (template.yaml, RunCommandsAsTheirJob), for stack
# "stepburst" in the aws partition.
ASSUMABLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst/stepburst/stepburst-job-*"


def stack(**changes: object) -> StackCompute:
    fields: dict[str, object] = {
        "stack": "stepburst",
        "partition": "aws",
        "region": "us-east-1",
        "account": ACCOUNT,
        "worker_image": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/worker:v1",
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/stepburst-execution",
        "worker_role_arn": WORKER_ROLE,
        "log_group": "/stepburst/stepburst/worker",
        "assign_public_ip": "ENABLED",
        "input_bucket": "input",
        "output_bucket": "output",
        "environment": {},
        "trusted_role_arns": [PROCESS_ITEMS_ROLE, COMBINE_ROLE],
    }
    fields.update(changes)
    return StackCompute(**fields)  # type: ignore[arg-type]


def test_on_lambda_the_role_is_the_one_the_jobs_containers_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(JOB_ROLE_VARIABLE, raising=False)
    job = parse_job(
        {
            "name": "dam-periods",
            "split": {"items": {}},
            "run": {"command": "python -m dams {ITEM}"},
            "output": {"prefix": "dams/"},
        },
        "dam-periods.yaml",
    )
    (container,) = task_definition(stack(), job)["containerDefinitions"]
    given = {pair["name"]: pair["value"] for pair in container["environment"]}

    on_lambda = job_role_for("stepburst", "dam-periods", PROCESS_ITEMS)

    assert on_lambda == given[JOB_ROLE_VARIABLE]
    assert on_lambda == f"arn:aws:iam::{ACCOUNT}:role/stepburst/stepburst/stepburst-job-dam-periods"
    assert fnmatch.fnmatchcase(on_lambda, ASSUMABLE)


def test_the_role_is_in_the_functions_own_partition_and_account() -> None:
    function = "arn:aws-cn:lambda:cn-north-1:210987654321:function:stepburst-Combine-Y:live"

    assert job_role_for("stepburst", "rios", function) == (
        "arn:aws-cn:iam::210987654321:role/stepburst/stepburst/stepburst-job-rios"
    )


def test_on_lambda_the_functions_environment_names_no_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A variable in the function's environment cannot point its commands at another role."""
    monkeypatch.setenv(JOB_ROLE_VARIABLE, f"arn:aws:iam::{ACCOUNT}:role/somebody-else")

    assert job_role_for("stepburst", "rios", PROCESS_ITEMS) == job_role_arn(
        "aws", ACCOUNT, "stepburst", "rios"
    )


def test_in_a_container_the_role_is_the_one_its_definition_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = job_role_arn("aws", ACCOUNT, "stepburst", "rios")
    monkeypatch.setenv(JOB_ROLE_VARIABLE, role)
    assert job_role_for("stepburst", "rios") == role
    monkeypatch.delenv(JOB_ROLE_VARIABLE)
    assert job_role_for("stepburst", "rios") is None


def test_what_is_not_a_functions_arn_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a Lambda function's ARN"):
        job_role_for("stepburst", "rios", WORKER_ROLE)


def test_a_job_role_trusts_the_worker_and_the_functions_that_run_commands() -> None:
    trust = job_role_trust(stack())
    (statement,) = trust["Statement"]

    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {
        "AWS": sorted([WORKER_ROLE, PROCESS_ITEMS_ROLE, COMBINE_ROLE])
    }
    assert "Condition" not in statement


def test_without_trusted_functions_a_job_role_trusts_the_worker_alone() -> None:
    (statement,) = job_role_trust(stack(trusted_role_arns=[]))["Statement"]

    assert statement["Principal"] == {"AWS": [WORKER_ROLE]}


def test_a_combine_command_may_read_its_own_runs_manifests_only() -> None:
    spec = {
        "split": {"items": {}},
        "run": {"command": "python -m dams {ITEM}"},
        "combine": {"command": "python -m dams_total {COMBINE_MANIFEST} {COMBINE_RESULT}"},
        "output": {"prefix": "dams/"},
    }
    job = parse_job({"name": "dam", **spec}, "dam.yaml")
    work = stack(environment={"STEPBURST_WORK_BUCKET": "work"})
    grants = {s["Sid"]: s for s in access_policy(work, job)["Statement"]}
    pattern = grants["ReadCombineManifests"]["Resource"].replace("arn:aws:s3:::", "", 1)

    def readable(run_id: str) -> bool:
        return fnmatch.fnmatchcase(f"work/{combine_manifest_key(run_id)}", pattern)

    assert grants["ReadCombineManifests"]["Action"] == "s3:GetObject"
    assert readable("dam-20260301T120000Z-1a2b3c4d")
    assert not readable("dam-periods-20260301T120000Z-1a2b3c4d")
    assert not readable("dams-20260301T120000Z-1a2b3c4d")
    without = parse_job({"name": "dam", **{**spec, "combine": None}}, "dam.yaml")
    assert "ReadCombineManifests" not in {
        s["Sid"] for s in access_policy(work, without)["Statement"]
    }
