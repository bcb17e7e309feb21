"""The in-memory AWS: moto in this process, served on 127.0.0.1, with the engine's hooks.

:class:`LocalCloud` owns moto's lifetime, the HTTP endpoint that containers and the AWS CLI
use, the process environment while it runs (restored on exit), and the compute the hooks
call: the Lambda runtime and the container runner. It knows nothing about the template;
:class:`stepburst_local.engine.LocalEngine` deploys the stack into it. One runs per process
at a time (moto's backends, its mock and the environment are the process's).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config

from stepburst_local import binding, patches, product
from stepburst_local.cfn import ACCOUNT_ID, REGION
from stepburst_local.compute import ContainerImage, ContainerRunner, FunctionSpec, LambdaRuntime
from stepburst_local.faults import Faults
from stepburst_local.moto_internals import (
    DefaultConfig,
    ThreadedMotoServer,
    batch_backends,
    ecs_backends,
    mock_aws,
    stepfunctions_parser_backends,
)

LOG = logging.getLogger(__name__)

MOTO_CONFIG: DefaultConfig = {
    "lambda": {"use_docker": False},
    "batch": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
    "core": {"reset_boto3_session": True},
}

QUIET_LOGGERS = {
    "werkzeug": logging.ERROR,
    "moto.stepfunctions": logging.CRITICAL,
}

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class ExecutionTimeoutError(TimeoutError):
    """An execution did not finish before the deadline; carries its last description."""

    def __init__(self, arn: str, last: Mapping[str, Any]) -> None:
        self.arn = arn
        self.last = dict(last)
        super().__init__(f"{arn} is still {last.get('status', 'unknown')} at the deadline")


class LocalCloud:
    """moto with the hooks, an endpoint on 127.0.0.1 and real compute.

    Use it as a context manager. ``port=0`` binds a free port (safe under pytest-xdist).
    """

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        port: int = 0,
        host: str = "127.0.0.1",
        containers: str = "process",
        map_workers: int = binding.DEFAULT_MAP_WORKERS,
        history_limit: int = binding.HISTORY_EVENT_LIMIT,
        log_dir: Path | None = None,
        region: str = REGION,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self.map_workers = map_workers
        self.history_limit = history_limit
        self.region = region
        self.account_id = ACCOUNT_ID
        self.faults = Faults()
        self.containers = containers
        self._requested_port = port
        self._host = host
        self._log_dir = log_dir
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._mock: Any = None
        self._server: Any = None
        self._saved_env: dict[str, str] | None = None
        self._saved_levels: dict[str, int] = {}
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self._client_lock = threading.Lock()
        self._tracked: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._stopped_executions: set[str] = set()
        self._tracked_lock = threading.Lock()
        self.lambda_runtime = LambdaRuntime([], self.faults)
        self.runner: ContainerRunner | None = None
        self.endpoint_url = ""
        self.port = 0
        self.running = False

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.running:
            return
        patches.install()
        self._saved_env = dict(os.environ)
        try:
            for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
                os.environ.pop(name, None)
            os.environ.update(CREDENTIALS)
            os.environ["AWS_DEFAULT_REGION"] = self.region
            os.environ["AWS_REGION"] = self.region
            # moto logs every caught state error (expected in Retry/Catch flows) at ERROR.
            for name, level in QUIET_LOGGERS.items():
                logger = logging.getLogger(name)
                self._saved_levels[name] = logger.level
                logger.setLevel(level)
            self._server = ThreadedMotoServer(
                ip_address=self._host, port=self._requested_port, verbose=False
            )
            self._server.start()
            self.port = int(self._server.get_host_and_port()[1])
            shown = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
            self.endpoint_url = f"http://{shown}:{self.port}"
            os.environ["MOTO_PORT"] = str(self.port)
            self._mock = mock_aws(config=MOTO_CONFIG)
            self._mock.start()
            if self._log_dir is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="stepburst-local-")
                self._log_dir = Path(self._tempdir.name)
            self._log_dir.mkdir(parents=True, exist_ok=True)
            patches.bind(self)
            self.running = True
            product.reset_caches()
        except BaseException:
            self._teardown()
            raise

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._teardown()

    def _teardown(self) -> None:
        self._stop_running_executions()
        if self.runner is not None:
            self.runner.close()
        patches.unbind(self)
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._clients.clear()
        self._session = None
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)
        self._saved_levels.clear()
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None
        product.reset_caches()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self._log_dir = None

    def _stop_running_executions(self, grace: float = 2.0) -> None:
        """Abort what still runs, so no interpreter thread outlives the in-memory AWS."""
        if self._mock is None:
            return
        backend = stepfunctions_parser_backends[self.account_id][self.region]
        running = [
            execution
            for machine in backend.state_machines
            for execution in machine.executions
            if execution.status == "RUNNING"
        ]
        for execution in running:
            try:
                backend.stop_execution(execution.execution_arn)
            except Exception:  # it ended meanwhile
                LOG.debug("could not stop %s", execution.execution_arn, exc_info=True)
        deadline = time.monotonic() + grace
        while any(e.status == "RUNNING" for e in running) and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def log_dir(self) -> Path:
        if self._log_dir is None:
            raise RuntimeError("the local cloud is not running")
        return self._log_dir

    # -- clients -----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client on the in-memory AWS (in-process; cached)."""
        with self._client_lock:
            client = self._clients.get(service)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session(region_name=self.region)
                client = self._session.client(
                    service,
                    config=Config(retries={"mode": "standard", "max_attempts": 2}),
                )
                self._clients[service] = client
            return client

    def environment(self) -> dict[str, str]:
        """What a process outside this one needs to talk to the in-memory AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **CREDENTIALS,
        }

    # -- compute -----------------------------------------------------------------------------

    def register_functions(self, functions: list[FunctionSpec]) -> None:
        self.lambda_runtime = LambdaRuntime(
            [*self.lambda_runtime.functions, *functions], self.faults
        )

    def configure_containers(
        self,
        image: ContainerImage,
        environment: Mapping[str, str],
        python_path: list[Path] | None = None,
    ) -> None:
        self.runner = ContainerRunner(
            image=image,
            environment={**self.environment(), **environment},
            log_dir=self.log_dir,
            mode=self.containers,
            python_path=python_path or [],
            faults=self.faults,
        )

    # binding.Bindings -------------------------------------------------------------------------

    def invoke_function(
        self, name: str, payload: bytes, response_headers: dict[str, str]
    ) -> bytes | None:
        return self.lambda_runtime.invoke(name, payload, response_headers)

    def start_ecs_task(self, task: Any) -> bool:
        if self.runner is None:
            return False
        return self.runner.start_ecs_task(task, {})

    def start_batch_job(self, job: Any) -> bool:
        if self.runner is None:
            return False
        return self.runner.start_batch_job(job, {})

    def track(self, execution_arn: str, kind: str, ident: tuple[str, ...]) -> None:
        """Record that an execution started a task or job (after the container started)."""
        with self._tracked_lock:
            if execution_arn not in self._stopped_executions:
                self._tracked.setdefault(execution_arn, []).append((kind, ident))
                return
        # The execution was stopped between the container's start and this record.
        self._stop_container(kind, ident)

    def execution_stopped(self, execution_arn: str) -> None:
        """Stop every task and job the execution started, and those it has yet to record."""
        with self._tracked_lock:
            self._stopped_executions.add(execution_arn)
            started = self._tracked.pop(execution_arn, [])
        for kind, ident in started:
            self._stop_container(kind, ident)

    def _stop_container(self, kind: str, ident: tuple[str, ...]) -> None:
        reason = "Execution stopped by user"
        try:
            if kind == "ecs":
                ecs_backends[self.account_id][self.region].stop_task(ident[0], ident[1], reason)
            elif kind == "batch":
                batch_backends[self.account_id][self.region].terminate_job(ident[0], reason)
        except Exception:  # already finished: nothing to stop
            LOG.debug("could not stop %s %s", kind, ident, exc_info=True)

    # -- executions --------------------------------------------------------------------------

    def start_state_machine(
        self, state_machine_arn: str, execution_input: Any, name: str | None = None
    ) -> str:
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn,
            name=name or f"local-{time.time_ns():x}",
            input=json.dumps(execution_input),
        )
        return str(response["executionArn"])

    def describe_execution(self, arn: str) -> dict[str, Any]:
        described = self.client("stepfunctions").describe_execution(executionArn=arn)
        described.pop("ResponseMetadata", None)
        return dict(described)

    def wait_for_execution(
        self, arn: str, timeout: float = 60.0, poll: float = 0.02
    ) -> dict[str, Any]:
        """Poll until the execution ends; raise :class:`ExecutionTimeoutError` at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.describe_execution(arn)
            if described["status"] in TERMINAL_STATUSES:
                return described
            if time.monotonic() >= deadline:
                raise ExecutionTimeoutError(arn, described)
            time.sleep(poll)

    def history(self, arn: str) -> list[dict[str, Any]]:
        client = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = client.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def iter_executions(self, state_machine_arn: str) -> Iterator[dict[str, Any]]:
        paginator = self.client("stepfunctions").get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=state_machine_arn):
            yield from page["executions"]
