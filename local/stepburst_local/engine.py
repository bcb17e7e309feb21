"""The embedded local engine: the deployed template and state machine, on an in-memory AWS.

::

    with LocalEngine(Path(".")) as engine:
        engine.upload("incoming/yelp/businesses.jsonl", Path("businesses.jsonl"))
        (arn,) = engine.executions_for_upload("incoming/yelp/businesses.jsonl")
        result = engine.wait_for_execution(arn, timeout=60)

The engine reads ``template.yaml`` unchanged (:mod:`stepburst_local.cfn`), creates its
resources in moto (:mod:`stepburst_local.deploy`), runs ``statemachines/*.asl.json`` on moto's
interpreter with the adaptations in :mod:`stepburst_local.patches`, calls the functions' real
handlers in-process and runs the worker container's entrypoint for ECS tasks and Batch jobs.
What it knows of stepburst itself is in :mod:`stepburst_local.product`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3

from stepburst_local import binding, logs, product
from stepburst_local.cfn import Resource, Stack, TemplateError, load_template
from stepburst_local.cloud import ExecutionTimeoutError, LocalCloud
from stepburst_local.compute import (
    ContainerImage,
    FunctionSpec,
    parse_entrypoint,
    unload_handlers,
    unload_modules_from,
)
from stepburst_local.deploy import Deployer
from stepburst_local.patches.distributed_map import map_run_children
from stepburst_local.patches.map_run import ChildRun

__all__ = ["DeployError", "ExecutionTimeoutError", "LocalEngine", "TemplateError"]

# Where custom resources answer, as they answer CloudFormation on a pre-signed URL.
_RESPONSES_BUCKET = "stepburst-local-cloudformation-responses"
_LAYER_ROOT = "/opt/python"
"""Where Lambda unpacks a layer's Python content."""


class DeployError(Exception):
    """The local deploy failed as the CloudFormation one would (a custom resource said why)."""


class LocalEngine(LocalCloud):
    """The stack of ``project_root/template.yaml``, running locally.

    ``jobs_dir`` replaces the jobs layer for the functions and the workers, e.g.
    with fixture jobs in tests. ``time_scale`` scales Retry intervals and Wait states (0.01
    turns 10 s into 0.1 s). ``function_timeouts`` overrides a function's ``Timeout`` by
    logical id, in seconds. ``containers`` is ``"process"`` (the worker entrypoint as a local
    process) or ``"docker"`` (the real image; needs a Docker engine). ``quiet`` lowers the
    functions' and workers' log level and turns metrics output off.
    """

    def __init__(
        self,
        project_root: Path,
        *,
        jobs_dir: Path | None = None,
        time_scale: float = 1.0,
        function_timeouts: Mapping[str, float] | None = None,
        containers: str = "process",
        port: int = 0,
        host: str = "127.0.0.1",
        stack_name: str = product.STACK_NAME,
        parameters: Mapping[str, Any] | None = None,
        quiet: bool = False,
        map_workers: int = binding.DEFAULT_MAP_WORKERS,
        history_limit: int = binding.HISTORY_EVENT_LIMIT,
        worker_image: str = product.WORKER_IMAGE,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(
            time_scale=time_scale,
            port=port,
            host=host,
            containers=containers,
            map_workers=map_workers,
            history_limit=history_limit,
            log_dir=log_dir,
        )
        self.project_root = project_root.resolve()
        self.template_path = self.project_root / "template.yaml"
        self.jobs_dir = jobs_dir.resolve() if jobs_dir is not None else None
        self.function_timeouts = dict(function_timeouts or {})
        self.stack_name = stack_name
        self.parameters = dict(parameters or {})
        self.quiet = quiet
        self.worker_image = worker_image
        self.stack: Stack | None = None
        self.deployer: Deployer | None = None
        self.outputs: dict[str, Any] = {}
        self._sys_path_added: list[str] = []
        self._log_handlers: list[tuple[logging.Logger, Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        template = load_template(self.template_path)
        super().start()
        try:
            self._deploy(template)
        except BaseException:
            self.stop()
            raise

    def _teardown(self) -> None:
        logs.detach(self._log_handlers)
        self._log_handlers.clear()
        super()._teardown()
        unload_handlers(self.lambda_runtime.functions)
        if self.stack is not None:
            # The job modules only: the product's own package may come from a layer too.
            unload_modules_from([self.resolved_jobs_dir])
        for entry in self._sys_path_added:
            if entry in sys.path:
                sys.path.remove(entry)
        self._sys_path_added.clear()

    def _deploy(self, template: dict[str, Any]) -> None:
        # WorkerImageTag has no default; locally the workers run `worker_image` whatever it says.
        self.stack = Stack(
            template,
            stack_name=self.stack_name,
            parameters={"WorkerImageTag": "local", **self.parameters},
            region=self.region,
            account_id=self.account_id,
        )
        self.deployer = Deployer(self.stack, self, self.template_path.parent)
        self.deployer.deploy()
        layers = self._layer_dirs()
        for directory in layers.values():
            self._add_sys_path(directory)
        self.register_functions(self._function_specs(layers))
        self._configure_workers()
        self._ship_logs()
        self.outputs = self._outputs()
        if self.quiet:
            self._quiet_loggers()
        self.run_custom_resources("Create")
        product.publish_outputs(self.client("ssm"), self.outputs)

    def run_custom_resources(self, request_type: str = "Update") -> dict[str, dict[str, Any]]:
        """Send each custom resource its CloudFormation request, as a deploy does.

        The function answers on a pre-signed URL of the local S3, as it would to CloudFormation;
        a FAILED answer fails the deploy with the function's reason, as on AWS.
        """
        assert self.stack is not None
        answers: dict[str, dict[str, Any]] = {}
        for resource in self.stack.resources.values():
            if not resource.type.startswith("Custom::") and (
                resource.type != "AWS::CloudFormation::CustomResource"
            ):
                continue
            properties = self.stack.properties(resource.logical_id)
            key = f"{resource.logical_id}/{uuid.uuid4()}"
            event = {
                "RequestType": request_type,
                "ResponseURL": self._response_url(key),
                "StackId": self._stack_id(),
                "RequestId": str(uuid.uuid4()),
                "LogicalResourceId": resource.logical_id,
                "ResourceType": resource.type,
                "ResourceProperties": properties,
            }
            if request_type != "Create":
                event["PhysicalResourceId"] = resource.ref or resource.logical_id
            headers: dict[str, str] = {}
            token = str(properties["ServiceToken"])
            self.lambda_runtime.invoke(token, json.dumps(event).encode(), headers)
            answer = json.loads(
                self.client("s3").get_object(Bucket=_RESPONSES_BUCKET, Key=key)["Body"].read()
            )
            if answer.get("Status") != "SUCCESS":
                raise DeployError(f"{resource.logical_id}: {answer.get('Reason', 'no reason')}")
            answers[resource.logical_id] = answer
        return answers

    def _response_url(self, key: str) -> str:
        s3 = self.client("s3")
        if _RESPONSES_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=_RESPONSES_BUCKET)
        presigner = boto3.session.Session(region_name=self.region).client(
            "s3", endpoint_url=self.endpoint_url
        )
        url: str = presigner.generate_presigned_url(
            "put_object", Params={"Bucket": _RESPONSES_BUCKET, "Key": key}, ExpiresIn=600
        )
        return url

    def _stack_id(self) -> str:
        return (
            f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/"
            f"{self.stack_name}/{uuid.uuid5(uuid.NAMESPACE_URL, self.stack_name)}"
        )

    def _ship_logs(self) -> None:
        """Send the functions' and workers' lines to CloudWatch Logs, as on AWS."""
        assert self.stack is not None
        shipper = logs.LogShipper(lambda: self.client("logs"))
        for resource in self.stack.of_type("AWS::Logs::LogGroup"):
            props = self.stack.properties(resource.logical_id)
            name = props.get("LogGroupName")
            if isinstance(name, str):
                retention = props.get("RetentionInDays")
                shipper.create_group(name, int(retention) if retention else None)
        services = {
            spec.environment.get(product.LOGGER_VARIABLE, product.DEFAULT_LOGGER)
            for spec in self.lambda_runtime.functions
        }
        self._log_handlers = logs.attach(shipper, services)
        worker_group = self._worker_log_group()
        if self.runner is not None and worker_group is not None:

            def ship(run: Any) -> None:
                # The awslogs driver's stream name: prefix/container/task id.
                prefix = "ecs" if run.kind == "ecs" else "batch"
                stream = f"{prefix}/worker/{run.ident.rsplit('/', 1)[-1]}"
                shipper.ship_file(worker_group, stream, run.log_path)

            self.runner.on_exit = ship

    def _worker_log_group(self) -> str | None:
        assert self.stack is not None
        for resource in self.stack.of_type("AWS::ECS::TaskDefinition"):
            for container in self.stack.properties(resource.logical_id).get(
                "ContainerDefinitions", []
            ):
                options = (container.get("LogConfiguration") or {}).get("Options") or {}
                group = options.get("awslogs-group")
                if isinstance(group, str):
                    return group
        return None

    def _quiet_loggers(self) -> None:
        """Powertools loggers read their level once: lower the ones already built."""
        services = {
            spec.environment.get(product.LOGGER_VARIABLE, product.DEFAULT_LOGGER)
            for spec in self.lambda_runtime.functions
        }
        for service in services:
            logger = logging.getLogger(service)
            self._saved_levels.setdefault(service, logger.level)
            logger.setLevel(logging.WARNING)

    def _add_sys_path(self, directory: Path) -> None:
        # What Lambda's runtime does with /opt/python: a layer's content is importable.
        entry = str(directory)
        if entry not in sys.path:
            sys.path.insert(0, entry)
            self._sys_path_added.append(entry)

    # -- the stack's pieces ------------------------------------------------------------------

    @property
    def resolved_jobs_dir(self) -> Path:
        if self.jobs_dir is not None:
            return self.jobs_dir
        for resource in self._layers():
            if self._is_jobs_layer(resource):
                return self._content_dir(resource)
        return self.project_root / product.JOBS_DIRECTORY

    def _layers(self) -> list[Resource]:
        assert self.stack is not None
        return self.stack.of_type("AWS::Lambda::LayerVersion")

    def _content_dir(self, resource: Resource) -> Path:
        assert self.stack is not None
        path = self.stack.local_path(resource.logical_id, "Content")
        return (self.template_path.parent / path).resolve()

    def _is_jobs_layer(self, resource: Resource) -> bool:
        assert self.stack is not None
        content = self._content_dir(resource)
        # SAM names a layer's version resource <LogicalId><hash> and, without a LayerName,
        # the layer after its logical id.
        layer_name = str(self.stack.properties(resource.logical_id).get("LayerName", ""))
        return product.holds_jobs(layer_name, content, self.project_root)

    def _layer_dirs(self) -> dict[str, Path]:
        """Each layer's content on this machine: what Lambda unpacks into /opt/python."""
        dirs: dict[str, Path] = {}
        for resource in self._layers():
            if self._is_jobs_layer(resource):
                dirs[resource.ref] = self.resolved_jobs_dir
            else:
                dirs[resource.ref] = self._content_dir(resource)
        return dirs

    def _overrides(self) -> dict[str, str]:
        return dict(product.QUIET_ENVIRONMENT) if self.quiet else {}

    def _function_specs(self, layers: Mapping[str, Path]) -> list[FunctionSpec]:
        assert self.stack is not None
        specs = []
        jobs_dir = str(self.resolved_jobs_dir)
        for resource in self.stack.of_type("AWS::Lambda::Function"):
            props = self.stack.properties(resource.logical_id)
            code_uri = self.stack.local_path(resource.logical_id, "Code")
            variables = props.get("Environment", {}).get("Variables", {})
            environment = {str(k): _env_value(v) for k, v in variables.items()}
            for key, value in environment.items():
                if value == _LAYER_ROOT or value.startswith(f"{_LAYER_ROOT}/"):
                    environment[key] = jobs_dir + value[len(_LAYER_ROOT) :]
            environment.setdefault(product.JOBS_DIR_VARIABLE, jobs_dir)
            for key, value in product.FUNCTION_DEFAULTS.items():
                environment.setdefault(key, value)
            # A function's own processes (an item's command) reach the local AWS, as a
            # Lambda's children reach AWS.
            environment.update(self.environment())
            environment.update(self._overrides())
            timeout = self.function_timeouts.get(resource.logical_id, props.get("Timeout", 3))
            specs.append(
                FunctionSpec(
                    logical_id=resource.logical_id,
                    name=resource.name,
                    arn=resource.attributes["Arn"],
                    code_dir=(self.template_path.parent / code_uri).resolve(),
                    handler=str(props.get("Handler", "app.lambda_handler")),
                    environment=environment,
                    timeout_seconds=float(timeout),
                    memory_mb=int(props.get("MemorySize", 128)),
                    log_group=_log_group_name(props.get("LoggingConfig", {}).get("LogGroup")),
                )
            )
        return specs

    def _configure_workers(self) -> None:
        dockerfile = self.project_root / product.WORKER_DOCKERFILE
        if dockerfile.is_file():
            entrypoint = parse_entrypoint(dockerfile)
        else:
            entrypoint = list(product.WORKER_ENTRYPOINT)
        environment = {
            product.JOBS_DIR_VARIABLE: str(self.resolved_jobs_dir),
            **self._overrides(),
        }
        self.configure_containers(
            ContainerImage(
                entrypoint=entrypoint,
                image=self.worker_image,
                dockerfile=product.WORKER_DOCKERFILE,
                mounts=((str(self.resolved_jobs_dir), product.IMAGE_JOBS_DIR),),
                docker_environment={product.JOBS_DIR_VARIABLE: product.IMAGE_JOBS_DIR},
            ),
            environment,
            python_path=[self.project_root / product.SOURCE_DIRECTORY, self.resolved_jobs_dir],
        )

    def _outputs(self) -> dict[str, Any]:
        assert self.stack is not None
        outputs = self.stack.outputs()
        functions = self.lambda_runtime.functions
        if functions:
            environment = functions[0].environment
            for output, variable in product.OUTPUT_VARIABLES.items():
                if output not in outputs and variable in environment:
                    outputs[output] = environment[variable]
        if "StateMachineArn" not in outputs:
            machines = self.stack.of_type("AWS::StepFunctions::StateMachine")
            if len(machines) == 1:
                outputs["StateMachineArn"] = machines[0].ref
        return outputs

    @property
    def state_machine_arn(self) -> str:
        return str(self.outputs["StateMachineArn"])

    # -- using it ----------------------------------------------------------------------------

    def upload(
        self, key: str, data: bytes | str | Path, *, bucket: str | None = None
    ) -> dict[str, Any]:
        """Put an object (as a user's ``aws s3 cp`` would); S3 -> EventBridge starts a run."""
        body = data.read_bytes() if isinstance(data, Path) else data
        target = bucket or str(self.outputs["InputBucketName"])
        response = self.client("s3").put_object(
            Bucket=target, Key=key, Body=body.encode() if isinstance(body, str) else body
        )
        return {
            "Bucket": target,
            "Key": key,
            "ETag": response.get("ETag", "").strip('"'),
            "VersionId": response.get("VersionId"),
        }

    def start_execution(self, execution_input: Any, name: str | None = None) -> str:
        """Start the stack's state machine (as ``aws stepfunctions start-execution``)."""
        return self.start_state_machine(self.state_machine_arn, execution_input, name)

    def executions_for_upload(
        self,
        key: str,
        *,
        bucket: str | None = None,
        timeout: float = 10.0,
        expected: int = 1,
    ) -> list[str]:
        """The executions an upload of ``key`` started (wait until ``expected`` exist)."""
        target = bucket or str(self.outputs["InputBucketName"])
        deadline = time.monotonic() + timeout
        sfn = self.client("stepfunctions")
        while True:
            found = []
            for execution in self.iter_executions(self.state_machine_arn):
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                event = json.loads(described.get("input") or "{}")
                detail = event.get("detail", {}) if isinstance(event, dict) else {}
                if (
                    detail.get("bucket", {}).get("name") == target
                    and unquote_plus(str(detail.get("object", {}).get("key", ""))) == key
                ):
                    found.append(str(execution["executionArn"]))
            if len(found) >= expected:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(found)} execution(s) for s3://{target}/{key} after {timeout} s "
                    f"(expected {expected})"
                )
            time.sleep(0.02)

    def map_run_children(self, execution_arn: str) -> list[ChildRun]:
        """The child executions of every Distributed Map run of an execution, by index."""
        return map_run_children(self.account_id, self.region, execution_arn)

    def ledger(self) -> Any:
        """The stack's ledger (``stepburst.ledger.Ledger``), for tests and the demo."""
        environment = self.lambda_runtime.functions[0].environment
        return product.ledger(str(self.outputs["LedgerTableName"]), environment)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _log_group_name(value: Any) -> str | None:
    """A LoggingConfig.LogGroup, resolved to the group's name (a Ref of it is its name)."""
    return value if isinstance(value, str) and value else None
