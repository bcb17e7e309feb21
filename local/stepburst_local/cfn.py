"""Read ``template.yaml`` as CloudFormation would, for the local engine.

The template is loaded unchanged: short-form tags (``!Ref``, ``!Sub`` ...) become their long
forms, SAM's own translator expands the ``AWS::Serverless::*`` resources into plain
CloudFormation (:mod:`stepburst_local.sam`), every resource gets a physical name, and the
intrinsic functions the template uses are resolved: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` (both
forms), ``Fn::Join``, ``Fn::If`` with conditions, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``,
``Fn::Equals``/``And``/``Or``/``Not``, ``Fn::Base64``, ``Fn::GetAZs``.

Nothing here talks to AWS; :mod:`stepburst_local.engine` turns the resolved resources into
moto resources.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stepburst_local import sam

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()
"""What ``Ref: AWS::NoValue`` resolves to: the property is dropped."""

_SHORT_FORMS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Not": "Fn::Not",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class TemplateError(Exception):
    """The template uses something the local engine cannot resolve; the message names it."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short forms into long forms."""


def _construct_tag(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    long_form = _SHORT_FORMS[tag]

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {long_form: value}

    return construct


for _tag in _SHORT_FORMS:
    _CfnLoader.add_constructor(f"!{_tag}", _construct_tag(_tag))


def load_template(path: Path) -> dict[str, Any]:
    """The template as a plain dict, with every short form in its long form."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return document


@dataclass
class Resource:
    """One resource of the translated template: its type, properties and physical ids."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    raw: dict[str, Any]
    name: str = ""
    ref: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    condition: str | None = None


def _short_name(stack: str, logical_id: str, limit: int, *, lower: bool = False) -> str:
    """A CloudFormation-style generated name: ``<stack>-<LogicalId>-<suffix>``."""
    suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12]
    name = f"{stack}-{logical_id}"[: max(1, limit - len(suffix) - 1)] + f"-{suffix}"
    return name.lower() if lower else name


_NAME_PROPERTIES: dict[str, tuple[str, int, bool]] = {
    # type: (property naming the resource, max length, lower-case)
    "AWS::S3::Bucket": ("BucketName", 63, True),
    "AWS::DynamoDB::Table": ("TableName", 255, False),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80, False),
    "AWS::Lambda::Function": ("FunctionName", 64, False),
    "AWS::ECS::Cluster": ("ClusterName", 255, False),
    "AWS::ECS::TaskDefinition": ("Family", 255, False),
    "AWS::Batch::JobQueue": ("JobQueueName", 128, False),
    "AWS::Batch::JobDefinition": ("JobDefinitionName", 128, False),
    "AWS::Batch::ComputeEnvironment": ("ComputeEnvironmentName", 128, False),
    "AWS::IAM::Role": ("RoleName", 64, False),
    "AWS::IAM::InstanceProfile": ("InstanceProfileName", 128, False),
    "AWS::Events::Rule": ("Name", 64, False),
    "AWS::Events::EventBus": ("Name", 256, False),
    "AWS::Logs::LogGroup": ("LogGroupName", 512, False),
    "AWS::SQS::Queue": ("QueueName", 80, False),
    "AWS::SNS::Topic": ("TopicName", 256, False),
    "AWS::ECR::Repository": ("RepositoryName", 256, True),
    "AWS::Scheduler::Schedule": ("Name", 64, False),
    "AWS::Scheduler::ScheduleGroup": ("Name", 64, False),
    "AWS::CloudWatch::Alarm": ("AlarmName", 255, False),
    "AWS::Lambda::LayerVersion": ("LayerName", 140, False),
}


class Stack:
    """A template resolved for one local deployment.

    A SAM template is first expanded by SAM's own translator, as the transform does on AWS.
    ``parameters`` overrides the template's parameter defaults (the engine passes the ids of
    the VPC, subnets and security group it creates in the in-memory AWS).
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        stack_name: str = "local",
        parameters: Mapping[str, Any] | None = None,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        try:
            self.translation = sam.translate(
                template,
                parameters=parameters or {},
                region=region,
                account_id=account_id,
                stack_name=stack_name,
            )
        except sam.TranslationError as exc:
            raise TemplateError(str(exc)) from None
        self.template = self.translation.template
        self.parameters = self._parameter_values(parameters or {})
        self.mappings: dict[str, Any] = self.template.get("Mappings", {})
        self._conditions_raw: dict[str, Any] = self.template.get("Conditions", {})
        self._conditions: dict[str, bool] = {}
        self.resources: dict[str, Resource] = {}
        self._naming: set[str] = set()
        self._read_resources()
        self._name_resources()

    # -- parameters and conditions ------------------------------------------------------

    def _parameter_values(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default and no local value")
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == (
                "CommaDelimitedList"
            ):
                value = value if isinstance(value, list) else str(value).split(",")
            values[name] = value
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._conditions_raw:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._conditions_raw[name]))
        return self._conditions[name]

    # -- resources ----------------------------------------------------------------------

    def _read_resources(self) -> None:
        for logical_id, raw in self.template["Resources"].items():
            if "Condition" in raw and not self.condition(raw["Condition"]):
                continue
            resource_type = str(raw.get("Type"))
            if resource_type.startswith("AWS::Serverless::"):
                raise TemplateError(f"{logical_id}: {resource_type} left after SAM's transform")
            properties = copy.deepcopy(raw.get("Properties", {}))
            self.resources[logical_id] = Resource(
                logical_id, resource_type, properties, raw, condition=raw.get("Condition")
            )

    def local_path(self, logical_id: str, location_property: str) -> str:
        """The local file or directory behind a resource's translated S3 location (a
        function's ``Code``, a layer's ``Content``, a state machine's
        ``DefinitionS3Location``), as the template's ``CodeUri``/``ContentUri``/
        ``DefinitionUri`` named it."""
        location = self.properties(logical_id).get(location_property)
        path = self.translation.local_path(location)
        if path is None:
            raise TemplateError(
                f"{logical_id}: {location_property} must come from a local path in the template"
            )
        return path

    # -- physical names -----------------------------------------------------------------

    def _name_resources(self) -> None:
        for logical_id in self.resources:
            self._ensure_named(logical_id)

    def _ensure_named(self, logical_id: str) -> None:
        """Give a resource its physical name; a name may refer to other resources' names
        (``!Sub "/aws/lambda/${PlanFunction}"``), which are named first."""
        resource = self.resources[logical_id]
        if resource.name:
            return
        if logical_id in self._naming:
            raise TemplateError(f"the names of {sorted(self._naming)} refer to each other")
        self._naming.add(logical_id)
        try:
            prop, limit, lower = _NAME_PROPERTIES.get(resource.type, ("", 64, False))
            explicit = resource.properties.get(prop) if prop else None
            if explicit is not None:
                name = str(self.resolve(explicit))
            else:
                name = _short_name(self.stack_name, resource.logical_id, limit, lower=lower)
            resource.name = name
            resource.ref, resource.attributes = self._identities(resource)
        finally:
            self._naming.discard(logical_id)

    def _arn(
        self, service: str, resource: str, *, region: bool = True, account: bool = True
    ) -> str:
        return ":".join(
            [
                "arn",
                PARTITION,
                service,
                self.region if region else "",
                self.account_id if account else "",
                resource,
            ]
        )

    def _identities(self, resource: Resource) -> tuple[str, dict[str, str]]:
        """The resource's ``Ref`` value and ``Fn::GetAtt`` attributes, as CloudFormation's."""
        special = _SPECIAL_IDENTITIES.get(resource.type)
        if special is not None:
            return special(self, resource)
        if resource.type.startswith("AWS::EC2::"):
            return _ec2_identities(self, resource)
        naming = _ARN_NAMING.get(resource.type)
        if naming is None:  # a type the engine does not create: an ARN of the usual shape
            kind = resource.type
            service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "unknown"
            naming = _ArnNaming(service, "{name}")
        name = resource.name
        arn = self._arn(naming.service, naming.resource.format(name=name), region=naming.regional)
        attributes = {naming.arn_attribute: arn}
        if naming.extra is not None:
            attributes.update(naming.extra(self, name, arn))
        return (arn if naming.ref_is_arn else name), attributes

    def set_physical(
        self, logical_id: str, ref: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Record the ids a created resource really got (EC2 ids are not predictable)."""
        resource = self.resources[logical_id]
        resource.ref = ref
        resource.attributes.update(attributes or {})

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic resolved, as of now."""
        resolved = self.resolve(self.resources[logical_id].properties)
        return resolved if isinstance(resolved, dict) else {}

    # -- intrinsic functions ------------------------------------------------------------

    def resolve(self, value: Any, *, allow_resource_refs: bool = True) -> Any:
        """Resolve every intrinsic function in ``value``; ``AWS::NoValue`` drops the key."""
        if isinstance(value, list):
            items = [self.resolve(v, allow_resource_refs=allow_resource_refs) for v in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, argument, allow_resource_refs)
        resolved: dict[str, Any] = {}
        for key, item in value.items():
            result = self.resolve(item, allow_resource_refs=allow_resource_refs)
            if result is not NO_VALUE:
                resolved[key] = result
        return resolved

    def _intrinsic(self, function: str, argument: Any, allow_refs: bool) -> Any:
        on_template = _TEMPLATE_INTRINSICS.get(function)
        if on_template is not None:
            return on_template(self, argument, allow_refs)
        # The other functions take their arguments resolved.
        args = self.resolve(argument, allow_resource_refs=allow_refs)
        on_values = _VALUE_INTRINSICS.get(function)
        if on_values is None:
            raise TemplateError(f"the local engine does not support {function}")
        return on_values(self, args)

    def _get_att_intrinsic(self, argument: Any, allow_refs: bool) -> Any:
        parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
        return self.get_att(str(parts[0]), str(self.resolve(parts[1])), allow_refs)

    def _if_intrinsic(self, argument: Any, allow_refs: bool) -> Any:
        name, when_true, when_false = argument
        chosen = when_true if self.condition(name) else when_false
        return self.resolve(chosen, allow_resource_refs=allow_refs)

    def _find_in_map(self, args: Any) -> Any:
        map_name, top, second = args[:3]
        try:
            return self.mappings[map_name][top][second]
        except KeyError:
            if len(args) > 3 and isinstance(args[3], dict) and "DefaultValue" in args[3]:
                return args[3]["DefaultValue"]
            raise TemplateError(f"Fn::FindInMap: no {map_name}.{top}.{second}") from None

    def ref(self, name: str, allow_refs: bool = True) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self._arn("cloudformation", f"stack/{self.stack_name}/local"),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            if not allow_refs:
                raise TemplateError(f"a resource name refers to resource {name}")
            self._ensure_named(name)
            return self.resources[name].ref
        raise TemplateError(f"Ref to unknown {name}")

    def get_att(self, logical_id: str, attribute: str, allow_refs: bool = True) -> Any:
        if not allow_refs:
            raise TemplateError(f"a resource name refers to {logical_id}.{attribute}")
        resource = self.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt to unknown resource {logical_id}")
        self._ensure_named(logical_id)
        if attribute in resource.attributes:
            return resource.attributes[attribute]
        if attribute == "Name":
            return resource.name
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not known locally")

    _SUB = re.compile(r"\$\{([^}!][^}]*)\}")

    def _sub(self, argument: Any, allow_refs: bool) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1], allow_resource_refs=allow_refs)
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1).strip()
            if token in variables:
                return str(variables[token])
            if "." in token and not token.startswith("AWS::"):
                logical_id, attribute = token.split(".", 1)
                return str(self.get_att(logical_id, attribute, allow_refs))
            return str(self.ref(token, allow_refs))

        replaced = self._SUB.sub(replace, str(text))
        return replaced.replace("${!", "${")

    # -- queries --------------------------------------------------------------------------

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    def outputs(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            values[name] = self.resolve(output.get("Value"))
        return values


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# -- intrinsic functions ----------------------------------------------------------------------

_TEMPLATE_INTRINSICS: dict[str, Callable[[Stack, Any, bool], Any]] = {
    # These read their argument as written (names, conditions, a template string).
    "Ref": lambda stack, argument, refs: stack.ref(str(argument), refs),
    "Condition": lambda stack, argument, refs: stack.condition(str(argument)),
    "Fn::GetAtt": Stack._get_att_intrinsic,
    "Fn::Sub": Stack._sub,
    "Fn::If": Stack._if_intrinsic,
}


def _join(stack: Stack, args: Any) -> str:
    delimiter, values = args
    return str(delimiter).join(str(v) for v in values)


def _select(stack: Stack, args: Any) -> Any:
    index, values = args
    return values[int(index)]


def _split(stack: Stack, args: Any) -> list[str]:
    delimiter, text = args
    return str(text).split(str(delimiter))


def _equals(stack: Stack, args: Any) -> bool:
    left, right = args
    return str(left) == str(right)


_VALUE_INTRINSICS: dict[str, Callable[[Stack, Any], Any]] = {
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": Stack._find_in_map,
    "Fn::Equals": _equals,
    "Fn::And": lambda stack, args: all(bool(a) for a in args),
    "Fn::Or": lambda stack, args: any(bool(a) for a in args),
    "Fn::Not": lambda stack, args: not bool(args[0]),
    "Fn::Base64": lambda stack, args: base64.b64encode(str(args).encode()).decode(),
    "Fn::GetAZs": lambda stack, args: [f"{stack.region}{zone}" for zone in "abc"],
    "Fn::Length": lambda stack, args: len(args),
    "Fn::ToJsonString": lambda stack, args: json.dumps(args, separators=(",", ":")),
}


# -- physical ids -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArnNaming:
    """How a resource type's ARN is built from its name, and what Ref and GetAtt give."""

    service: str
    resource: str
    """The ARN's resource part, with ``{name}``."""
    ref_is_arn: bool = False
    arn_attribute: str = "Arn"
    regional: bool = True
    extra: Callable[[Stack, str, str], dict[str, str]] | None = None
    """More attributes, from the stack, the name and the ARN."""


def _named(stack: Stack, name: str, arn: str) -> dict[str, str]:
    return {"Name": name}


_STATE_MACHINE = _ArnNaming("states", "stateMachine:{name}", ref_is_arn=True, extra=_named)
_FUNCTION = _ArnNaming("lambda", "function:{name}")
_LAYER = _ArnNaming("lambda", "layer:{name}:1", ref_is_arn=True, arn_attribute="LayerVersionArn")

_ARN_NAMING: dict[str, _ArnNaming] = {
    "AWS::DynamoDB::Table": _ArnNaming(
        "dynamodb",
        "table/{name}",
        extra=lambda stack, name, arn: {"StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"},
    ),
    "AWS::StepFunctions::StateMachine": _STATE_MACHINE,
    "AWS::Lambda::Function": _FUNCTION,
    "AWS::ECS::Cluster": _ArnNaming("ecs", "cluster/{name}"),
    "AWS::ECS::TaskDefinition": _ArnNaming(
        "ecs", "task-definition/{name}:1", ref_is_arn=True, arn_attribute="TaskDefinitionArn"
    ),
    "AWS::Batch::JobQueue": _ArnNaming(
        "batch", "job-queue/{name}", ref_is_arn=True, arn_attribute="JobQueueArn"
    ),
    "AWS::Batch::JobDefinition": _ArnNaming(
        "batch", "job-definition/{name}:1", ref_is_arn=True, arn_attribute="JobDefinitionArn"
    ),
    "AWS::Batch::ComputeEnvironment": _ArnNaming(
        "batch",
        "compute-environment/{name}",
        ref_is_arn=True,
        arn_attribute="ComputeEnvironmentArn",
    ),
    "AWS::IAM::Role": _ArnNaming(
        "iam",
        "role/{name}",
        regional=False,
        extra=lambda stack, name, arn: {"RoleId": f"AROA{_digest(name, 17).upper()}"},
    ),
    "AWS::IAM::InstanceProfile": _ArnNaming("iam", "instance-profile/{name}", regional=False),
    "AWS::Events::EventBus": _ArnNaming("events", "event-bus/{name}", extra=_named),
    "AWS::Logs::LogGroup": _ArnNaming("logs", "log-group:{name}:*"),
    "AWS::SNS::Topic": _ArnNaming(
        "sns",
        "{name}",
        ref_is_arn=True,
        arn_attribute="TopicArn",
        extra=lambda stack, name, arn: {"TopicName": name},
    ),
    "AWS::Lambda::LayerVersion": _LAYER,
    "AWS::ECR::Repository": _ArnNaming(
        "ecr",
        "repository/{name}",
        extra=lambda stack, name, arn: {
            "RepositoryUri": f"{stack.account_id}.dkr.ecr.{stack.region}.amazonaws.com/{name}"
        },
    ),
    "AWS::Scheduler::Schedule": _ArnNaming("scheduler", "schedule/default/{name}"),
    "AWS::Scheduler::ScheduleGroup": _ArnNaming("scheduler", "schedule-group/{name}"),
}


def _bucket_identities(stack: Stack, resource: Resource) -> tuple[str, dict[str, str]]:
    name = resource.name
    return name, {
        "Arn": f"arn:{PARTITION}:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{stack.region}.amazonaws.com",
    }


def _rule_identities(stack: Stack, resource: Resource) -> tuple[str, dict[str, str]]:
    bus = resource.properties.get("EventBusName")
    bus_name = bus if isinstance(bus, str) and bus != "default" else None
    path = f"rule/{bus_name}/{resource.name}" if bus_name else f"rule/{resource.name}"
    return resource.name, {"Arn": stack._arn("events", path)}


def _queue_identities(stack: Stack, resource: Resource) -> tuple[str, dict[str, str]]:
    name = resource.name
    url = f"https://sqs.{stack.region}.amazonaws.com/{stack.account_id}/{name}"
    return url, {"Arn": stack._arn("sqs", name), "QueueName": name, "QueueUrl": url}


def _ec2_identities(stack: Stack, resource: Resource) -> tuple[str, dict[str, str]]:
    # EC2 ids are the service's to choose; the deployer records the real ones.
    if resource.type == "AWS::EC2::SecurityGroup":
        group = f"sg-{_digest(resource.logical_id, 17)}"
        return group, {"GroupId": group, "VpcId": ""}
    prefix = {"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet"}.get(resource.type, "res")
    ident = f"{prefix}-{_digest(resource.logical_id, 17)}"
    return ident, {"VpcId": ident, "SubnetId": ident}


_SPECIAL_IDENTITIES: dict[str, Callable[[Stack, Resource], tuple[str, dict[str, str]]]] = {
    "AWS::S3::Bucket": _bucket_identities,
    "AWS::Events::Rule": _rule_identities,
    "AWS::SQS::Queue": _queue_identities,
}


def substitute_definition(definition: str, substitutions: Mapping[str, Any]) -> str:
    """Apply a state machine's ``DefinitionSubstitutions`` the way SAM/CloudFormation do."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            return match.group(0)
        value = substitutions[key]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", replace, definition)
