"""Create a resolved stack's resources in the in-memory AWS.

The stack is plain CloudFormation (SAM's translator has expanded the ``AWS::Serverless::*``
resources). Resources the local engine needs are created with the properties the template
gives them, converted from CloudFormation's casing to each API's (from botocore's shapes):
roles with the inline and managed policies SAM generated, layers, functions, permissions, the
state machine, rules. Resources that only matter on AWS (alarms, KMS keys, log groups, ECR
repositories, bucket policies) keep the names and ARNs the template would give them but are
not created; :attr:`Deployer.skipped` lists them.

Functions and layers are created with a placeholder package: the engine runs their code from
the template's local directories (:mod:`stepburst_local.compute`).
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepburst_local.cfn import Resource, Stack, TemplateError, substitute_definition
from stepburst_local.cloud import LocalCloud
from stepburst_local.moto_internals import AWSManagedPolicy, iam_backends
from stepburst_local.sam import aws_managed_policy
from stepburst_local.shapes import operation_model

LOG = logging.getLogger(__name__)

# EC2 first: its ids are not predictable and everything else may refer to them.
_ORDER = [
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::Batch::ComputeEnvironment",
    "AWS::Batch::JobQueue",
    "AWS::Batch::JobDefinition",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Function",
    "AWS::StepFunctions::StateMachine",
    "AWS::Events::Rule",
    "AWS::Lambda::Permission",
    "AWS::Scheduler::ScheduleGroup",
]


def api_params(service: str, action: str, properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation properties as the API's request: keys matched case-insensitively to the
    operation's input shape (unknown keys dropped), scalars coerced to the shape's types."""
    operation = operation_model(service, action)
    if operation is None:
        raise TemplateError(f"botocore has no {service}.{action}")
    converted = _convert(properties, operation.input_shape)
    return converted if isinstance(converted, dict) else {}


def _convert(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = {name.lower(): (name, member) for name, member in shape.members.items()}
        result: dict[str, Any] = {}
        for key, item in value.items():
            match = members.get(str(key).lower())
            if match is not None:
                result[match[0]] = _convert(item, match[1])
        return result
    if kind == "list" and isinstance(value, list):
        return [_convert(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, list):  # CloudFormation's [{Key, Value}] tags
        value = {item["Key"]: item["Value"] for item in value if isinstance(item, dict)}
    if kind == "map" and isinstance(value, dict):
        return {str(key): _convert(item, shape.value) for key, item in value.items()}
    if kind in ("integer", "long") and isinstance(value, str):
        return int(value)
    if kind in ("double", "float") and isinstance(value, str):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    if kind == "string" and isinstance(value, int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


class Deployer:
    """Creates the stack's resources in a running :class:`LocalCloud`."""

    def __init__(self, stack: Stack, cloud: LocalCloud, template_dir: Path) -> None:
        self.stack = stack
        self.cloud = cloud
        self.template_dir = template_dir
        self.created: list[str] = []
        self.skipped: list[str] = []
        self._handlers: dict[str, Callable[[Resource], None]] = {
            "AWS::EC2::VPC": self._vpc,
            "AWS::EC2::Subnet": self._subnet,
            "AWS::EC2::SecurityGroup": self._security_group,
            "AWS::IAM::Role": self._role,
            "AWS::IAM::InstanceProfile": self._instance_profile,
            "AWS::S3::Bucket": self._bucket,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::ECS::Cluster": self._cluster,
            "AWS::ECS::TaskDefinition": self._task_definition,
            "AWS::Batch::ComputeEnvironment": self._compute_environment,
            "AWS::Batch::JobQueue": self._job_queue,
            "AWS::Batch::JobDefinition": self._job_definition,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::Permission": self._permission,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._rule,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
        }

    def deploy(self) -> None:
        rank = {kind: index for index, kind in enumerate(_ORDER)}
        resources = sorted(
            self.stack.resources.values(), key=lambda r: rank.get(r.type, len(_ORDER))
        )
        for resource in resources:
            handler = self._handlers.get(resource.type)
            if handler is None:
                self.skipped.append(f"{resource.logical_id} ({resource.type})")
                continue
            handler(resource)
            self.created.append(resource.logical_id)

    def _client(self, service: str) -> Any:
        return self.cloud.client(service)

    # -- network ---------------------------------------------------------------------------

    def _vpc(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        ec2 = self._client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock=props.get("CidrBlock", "10.0.0.0/16"))["Vpc"]["VpcId"]
        # moto's ECS needs DNS hostnames for awsvpc tasks (as a default VPC has).
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        self.stack.set_physical(resource.logical_id, vpc_id, {"VpcId": vpc_id})

    def _subnet(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        kwargs = {"VpcId": props["VpcId"], "CidrBlock": props["CidrBlock"]}
        if props.get("AvailabilityZone"):
            kwargs["AvailabilityZone"] = props["AvailabilityZone"]
        subnet_id = self._client("ec2").create_subnet(**kwargs)["Subnet"]["SubnetId"]
        self.stack.set_physical(resource.logical_id, subnet_id, {"SubnetId": subnet_id})

    def _security_group(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        kwargs = {
            "GroupName": props.get("GroupName", resource.name),
            "Description": props.get("GroupDescription", resource.logical_id),
        }
        if props.get("VpcId"):
            kwargs["VpcId"] = props["VpcId"]
        group_id = self._client("ec2").create_security_group(**kwargs)["GroupId"]
        self.stack.set_physical(
            resource.logical_id, group_id, {"GroupId": group_id, "VpcId": kwargs.get("VpcId", "")}
        )

    # -- identity and storage ----------------------------------------------------------------

    def _role(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        document = props.get("AssumeRolePolicyDocument") or {
            "Version": "2012-10-17",
            "Statement": [],
        }
        iam = self._client("iam")
        role = iam.create_role(
            RoleName=resource.name, AssumeRolePolicyDocument=json.dumps(document)
        )["Role"]
        self._expect(resource, role["Arn"], resource.attributes["Arn"])
        for policy in props.get("Policies", []):
            # SAM's policy templates omit Version; IAM then reads them as 2008-10-17, which
            # differs from 2012-10-17 only in policy variables (none in SAM's). moto refuses
            # a document without 2012-10-17.
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=resource.name,
                PolicyName=str(policy["PolicyName"]),
                PolicyDocument=json.dumps(document),
            )
        for arn in props.get("ManagedPolicyArns", []):
            self._ensure_aws_managed_policy(str(arn))
            iam.attach_role_policy(RoleName=resource.name, PolicyArn=str(arn))

    def _ensure_aws_managed_policy(self, arn: str) -> None:
        """Give moto's IAM the AWS managed policy ``arn`` (from the copy moto ships).

        moto loads all ~1,600 of them only when asked to, at ~3 s per start; the engine adds
        the ones the roles attach."""
        found = aws_managed_policy(arn)
        if found is None:
            return  # a customer managed policy: the template creates it
        name, data = found
        account = self.cloud.account_id
        iam = iam_backends[account]["global"]
        if arn not in iam.managed_policies:
            policy = AWSManagedPolicy.from_data(name, account, self.cloud.region, data)
            iam.managed_policies[policy.arn] = policy

    def _instance_profile(self, resource: Resource) -> None:
        # Batch's managed EC2 environments name it (the stack's and the jobs' own ones).
        props = self.stack.properties(resource.logical_id)
        iam = self._client("iam")
        profile = iam.create_instance_profile(InstanceProfileName=resource.name)["InstanceProfile"]
        for role in props.get("Roles") or []:
            iam.add_role_to_instance_profile(InstanceProfileName=resource.name, RoleName=str(role))
        self._expect(resource, profile["Arn"], resource.attributes["Arn"])

    def _bucket(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        s3 = self._client("s3")
        s3.create_bucket(Bucket=resource.name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(
                Bucket=resource.name, VersioningConfiguration={"Status": "Enabled"}
            )
        eventbridge = props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")
        if eventbridge and eventbridge.get("EventBridgeEnabled", True) not in (False, "false"):
            s3.put_bucket_notification_configuration(
                Bucket=resource.name,
                NotificationConfiguration={"EventBridgeConfiguration": {}},
            )

    def _table(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("dynamodb", "create_table", props)
        params["TableName"] = resource.name
        params.setdefault("BillingMode", "PROVISIONED")
        if not params.get("SSESpecification"):
            params.pop("SSESpecification", None)
        ddb = self._client("dynamodb")
        ddb.create_table(**params)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") in (True, "true"):
            ddb.update_time_to_live(
                TableName=resource.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _queue(self, resource: Resource) -> None:
        url = self._client("sqs").create_queue(QueueName=resource.name)["QueueUrl"]
        self._expect(resource, url, resource.ref)

    def _schedule_group(self, resource: Resource) -> None:
        name = str(self.stack.properties(resource.logical_id).get("Name") or resource.name)
        arn = self._client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self.stack.set_physical(resource.logical_id, name, {"Arn": arn})

    def _event_bus(self, resource: Resource) -> None:
        self._client("events").create_event_bus(Name=resource.name)

    # -- compute -----------------------------------------------------------------------------

    def _cluster(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("ecs", "create_cluster", props)
        params["clusterName"] = resource.name
        arn = self._client("ecs").create_cluster(**params)["cluster"]["clusterArn"]
        self._expect(resource, arn, resource.attributes["Arn"])

    def _task_definition(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("ecs", "register_task_definition", props)
        params["family"] = resource.name
        described = self._client("ecs").register_task_definition(**params)
        self._expect(resource, described["taskDefinition"]["taskDefinitionArn"], resource.ref)

    def _compute_environment(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("batch", "create_compute_environment", props)
        params["computeEnvironmentName"] = resource.name
        # Without a ServiceRole, AWS uses Batch's service-linked role; moto requires one.
        params.setdefault("serviceRole", self._batch_service_linked_role())
        batch = self._client("batch")
        try:
            created = batch.create_compute_environment(**params)
        except Exception as exc:  # moto validates EC2 details a Fargate environment lacks
            LOG.debug("compute environment %s as UNMANAGED: %s", resource.name, exc)
            created = batch.create_compute_environment(
                computeEnvironmentName=resource.name,
                type="UNMANAGED",
                state=params.get("state", "ENABLED"),
                serviceRole=params["serviceRole"],
            )
        self._expect(resource, created["computeEnvironmentArn"], resource.ref)

    def _batch_service_linked_role(self) -> str:
        iam = self._client("iam")
        name = "AWSServiceRoleForBatch"
        try:
            return str(iam.get_role(RoleName=name)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            document = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            return str(
                iam.create_role(
                    RoleName=name,
                    Path="/aws-service-role/batch.amazonaws.com/",
                    AssumeRolePolicyDocument=json.dumps(document),
                )["Role"]["Arn"]
            )

    def _job_queue(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("batch", "create_job_queue", props)
        params["jobQueueName"] = resource.name
        params.pop("jobStateTimeLimitActions", None)
        arn = self._client("batch").create_job_queue(**params)["jobQueueArn"]
        self._expect(resource, arn, resource.ref)

    def _job_definition(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("batch", "register_job_definition", props)
        params["jobDefinitionName"] = resource.name
        arn = self._client("batch").register_job_definition(**params)["jobDefinitionArn"]
        self._expect(resource, arn, resource.ref)

    # -- functions ---------------------------------------------------------------------------

    def _layer(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        self.stack.local_path(resource.logical_id, "Content")  # a local directory, or say so
        params = api_params("lambda", "publish_layer_version", props)
        params["LayerName"] = resource.name
        params["Content"] = {"ZipFile": _placeholder_package(resource.logical_id)}
        arn = self._client("lambda").publish_layer_version(**params)["LayerVersionArn"]
        self._expect(resource, arn, resource.ref)

    def _function(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        self.stack.local_path(resource.logical_id, "Code")
        params = api_params("lambda", "create_function", props)
        params["FunctionName"] = resource.name
        params["Code"] = {"ZipFile": _placeholder_package(resource.logical_id)}
        # Destinations that only matter on AWS; moto would look them up.
        for key in ("DeadLetterConfig", "KMSKeyArn", "VpcConfig", "FileSystemConfigs"):
            params.pop(key, None)
        lambda_ = self._client("lambda")
        arn = lambda_.create_function(**params)["FunctionArn"]
        self._expect(resource, arn, resource.attributes["Arn"])
        reserved = props.get("ReservedConcurrentExecutions")
        if reserved is not None:
            lambda_.put_function_concurrency(
                FunctionName=resource.name, ReservedConcurrentExecutions=int(reserved)
            )

    def _permission(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        params = api_params("lambda", "add_permission", props)
        params["StatementId"] = resource.name
        self._client("lambda").add_permission(**params)

    # -- orchestration -----------------------------------------------------------------------

    def definition(self, resource: Resource) -> str:
        """The state machine definition as deployed: the file with its substitutions."""
        props = self.stack.properties(resource.logical_id)
        if "Definition" in props:
            text = json.dumps(props["Definition"])
        elif "DefinitionS3Location" in props:
            path = self.stack.local_path(resource.logical_id, "DefinitionS3Location")
            text = (self.template_dir / path).read_text(encoding="utf-8")
        elif "DefinitionString" in props:
            text = str(props["DefinitionString"])
        else:
            raise TemplateError(f"{resource.logical_id}: no definition")
        return substitute_definition(text, props.get("DefinitionSubstitutions", {}))

    def _state_machine(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        arn = self._client("stepfunctions").create_state_machine(
            name=resource.name,
            definition=self.definition(resource),
            roleArn=str(props["RoleArn"]),
            type=str(props.get("StateMachineType", "STANDARD")),
        )["stateMachineArn"]
        self._expect(resource, arn, resource.ref)

    def _rule(self, resource: Resource) -> None:
        props = self.stack.properties(resource.logical_id)
        events = self._client("events")
        rule: dict[str, Any] = {"Name": resource.name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            rule["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        if props.get("EventBusName"):
            rule["EventBusName"] = props["EventBusName"]
        events.put_rule(**rule)
        targets = []
        for target in props.get("Targets", []):
            entry = {key: target[key] for key in ("Id", "Arn", "RoleArn") if key in target}
            for key in ("Input", "InputPath", "InputTransformer"):
                if key in target:
                    value = target[key]
                    entry[key] = (
                        json.dumps(value)
                        if key == "Input" and not isinstance(value, str)
                        else value
                    )
            targets.append(entry)
        if targets:
            kwargs: dict[str, Any] = {"Rule": resource.name, "Targets": targets}
            if props.get("EventBusName"):
                kwargs["EventBusName"] = props["EventBusName"]
            events.put_targets(**kwargs)

    @staticmethod
    def _expect(resource: Resource, actual: str, predicted: str) -> None:
        if actual != predicted:
            raise TemplateError(
                f"{resource.logical_id}: the in-memory AWS named it {actual}, "
                f"the template resolution predicted {predicted}"
            )


def _placeholder_package(logical_id: str) -> bytes:
    """A deployment package that says where the code really is: the engine runs it from the
    template's local path, never from the package."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr(
            "LOCAL-ENGINE.txt",
            f"{logical_id} runs from the local path its template names, not from this package.\n",
        )
    return buffer.getvalue()
