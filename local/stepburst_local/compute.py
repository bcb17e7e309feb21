"""Compute that really runs: Lambda handlers in-process, containers as local processes.

:class:`LambdaRuntime` calls the handler a function's ``CodeUri``/``Handler`` name, with that
function's environment from the template, a Lambda-like context and its ``Timeout``. Each
function's ``app.py`` is imported once, as its own module, after its environment is set (it
reads its configuration at cold start, as on Lambda).

:class:`ContainerRunner` runs the worker image's entrypoint for each ECS task and Batch job:
as a subprocess of this interpreter (``containers="process"``), or with ``docker run`` when a
Docker engine is present (``containers="docker"``).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import importlib.util
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from stepburst_local import ids, logs
from stepburst_local.faults import Faults

LOG = logging.getLogger(__name__)
# What ECS says of a Fargate Spot task it reclaimed ("Amazon ECS stopped task error codes").
SPOT_INTERRUPTED = "Your Spot Task was interrupted."

ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"


class LambdaThrottledError(Exception):
    """An armed throttle fault rejected an invocation (the Lambda service answers 429)."""


# ------------------------------------------------------------------------------------------
# Lambda


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template, ready to run in-process."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: Mapping[str, str]
    timeout_seconds: float
    memory_mb: int = 128
    # LoggingConfig.LogGroup: where the function's log lines go (stepburst_local.logs).
    log_group: str | None = None


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"{datetime.date.today():%Y/%m/%d}/[$LATEST]{request_id[:32]}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaTimeout(BaseException):
    """Raised inside a handler thread that outlived its function's timeout (the sandbox is
    gone on AWS; here the thread is interrupted at its next Python instruction)."""


class LambdaProcessExit(BaseException):
    """Raised inside a handler thread whose runtime process an armed fault ended."""


def _interrupt(thread: threading.Thread, exception: type[BaseException] = LambdaTimeout) -> None:
    ident = thread.ident
    if ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(exception)
        )


class LambdaRuntime:
    """Invokes the template's functions in this process."""

    def __init__(self, functions: Sequence[FunctionSpec], faults: Faults) -> None:
        self._functions: dict[str, FunctionSpec] = {}
        for spec in functions:
            for alias in (spec.logical_id, spec.name, spec.arn):
                self._functions[alias] = spec
        self._faults = faults
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._import_lock = threading.Lock()
        self._env_lock = threading.Lock()
        self.invocations: dict[str, int] = {}

    def spec(self, name: str) -> FunctionSpec | None:
        spec = self._functions.get(name)
        if spec is None and name.startswith("arn:"):
            # arn:aws:lambda:region:account:function:name[:qualifier]
            parts = name.split(":")
            spec = self._functions.get(parts[6]) if len(parts) > 6 else None
        return spec

    @property
    def functions(self) -> list[FunctionSpec]:
        return list({spec.logical_id: spec for spec in self._functions.values()}.values())

    def _apply_environment(self, spec: FunctionSpec) -> None:
        with self._env_lock:
            for key, value in spec.environment.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        handler = self._handlers.get(spec.logical_id)
        if handler is not None:
            return handler
        with self._import_lock:
            handler = self._handlers.get(spec.logical_id)
            if handler is None:
                handler = _load_handler(spec)
                self._handlers[spec.logical_id] = handler
        return handler

    def invoke(self, name: str, payload: bytes, response_headers: dict[str, str]) -> bytes | None:
        """Run the function like the Lambda service would; ``None`` if it is not ours."""
        spec = self.spec(name)
        if spec is None:
            return None
        if self._faults.take_lambda_throttle(spec.logical_id, spec.name):
            raise LambdaThrottledError(spec.name)
        self.invocations[spec.logical_id] = self.invocations.get(spec.logical_id, 0) + 1
        process_exit = self._faults.take_running("lambda_process_exit", spec.logical_id, spec.name)
        event = json.loads(payload or b"{}")
        request_id = str(ids.uuid4())
        self._apply_environment(spec)
        deadline = time.monotonic() + spec.timeout_seconds
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                handler = self._handler(spec)
                context = LambdaContext(spec, request_id, deadline)
                with logs.invocation(spec.log_group, spec.name):
                    outcome["result"] = handler(event, context)
            except (LambdaTimeout, LambdaProcessExit):
                outcome["timed_out"] = True
            except BaseException as exc:  # the handler failed: report it like Lambda does
                outcome["error"] = exc
                # The handler's frames only, as Lambda's runtime reports them.
                frames = traceback.StackSummary.from_list(
                    traceback.extract_tb(exc.__traceback__)[1:]
                )
                outcome["trace"] = [line.rstrip("\n") for line in frames.format()]

        thread = threading.Thread(target=run, name=f"lambda-{spec.logical_id}", daemon=True)
        thread.start()
        if process_exit is None:
            thread.join(spec.timeout_seconds)
        else:
            while thread.is_alive() and time.monotonic() < deadline:
                if process_exit.due():
                    # The runtime's process is gone mid-invocation: what it wrote stays.
                    _interrupt(thread, LambdaProcessExit)
                    thread.join(1.0)
                    response_headers["x-amz-function-error"] = "Unhandled"
                    return _json_bytes(
                        {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"RequestId: {request_id} Error: Runtime exited "
                            "with error: exit status 1",
                        }
                    )
                thread.join(0.02)
        if thread.is_alive():
            _interrupt(thread)
            response_headers["x-amz-function-error"] = "Unhandled"
            return _json_bytes(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": (
                        f"RequestId: {request_id} Error: Task timed out after "
                        f"{spec.timeout_seconds:.2f} seconds"
                    ),
                }
            )
        if "error" in outcome:
            error: BaseException = outcome["error"]
            response_headers["x-amz-function-error"] = "Unhandled"
            return _json_bytes(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": request_id,
                    "stackTrace": outcome["trace"],
                }
            )
        try:
            return _json_bytes(outcome.get("result"))
        except (TypeError, ValueError) as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _json_bytes(
                {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": request_id,
                }
            )


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    module_path, _, attribute = spec.handler.rpartition(".")
    source = spec.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
    if not source.is_file():
        raise FileNotFoundError(f"{spec.logical_id}: handler module {source} does not exist")
    module_name = f"stepburst_local_fn_{spec.logical_id}"
    module_spec = importlib.util.spec_from_file_location(module_name, source)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"{spec.logical_id}: cannot import {source}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise AttributeError(f"{spec.logical_id}: {source} has no handler {attribute!r}")
    return handler  # type: ignore[no-any-return]


def unload_handlers(specs: Sequence[FunctionSpec]) -> None:
    """Forget imported handler modules (the next engine gets a cold start)."""
    for spec in specs:
        sys.modules.pop(f"stepburst_local_fn_{spec.logical_id}", None)


def unload_modules_from(directories: Sequence[Path]) -> list[str]:
    """Forget every module imported from ``directories`` (an engine's layers: the job modules
    its handlers imported by name). The next engine may have a jobs directory with a module of
    the same name, which an import would otherwise answer from ``sys.modules``."""
    roots = [directory.resolve() for directory in directories]
    unloaded = []
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if source is None:
            continue
        path = Path(source).resolve()
        if any(path.is_relative_to(root) for root in roots):
            sys.modules.pop(name, None)
            unloaded.append(name)
    return unloaded


# ------------------------------------------------------------------------------------------
# Containers


def parse_entrypoint(dockerfile: Path) -> list[str]:
    """The exec-form ``ENTRYPOINT [...]`` (plus exec-form ``CMD``) of a Dockerfile."""
    entrypoint: list[str] = []
    command: list[str] = []
    lines = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    for line in lines:
        stripped = line.strip()
        instruction, _, rest = stripped.partition(" ")
        if instruction.upper() not in ("ENTRYPOINT", "CMD"):
            continue
        rest = rest.strip()
        try:
            value = json.loads(rest)
        except ValueError:
            value = ["/bin/sh", "-c", rest]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{dockerfile}: cannot read {instruction} {rest}")
        if instruction.upper() == "ENTRYPOINT":
            entrypoint = value
        else:
            command = value
    if not entrypoint and not command:
        raise ValueError(f"{dockerfile}: no ENTRYPOINT or CMD")
    return entrypoint or command


@dataclass
class ContainerRun:
    kind: str
    ident: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    stopped_by: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ContainerImage:
    """The worker image as the engine runs it.

    ``mounts`` (host path, container path) and ``docker_environment`` apply to
    ``containers="docker"`` only: e.g. the jobs directory mounted where the image expects it.
    """

    entrypoint: list[str]
    image: str = "worker:local"
    workdir: Path | None = None
    dockerfile: Path | None = None
    """The image's Dockerfile (project-relative), for the hint when the image is missing."""
    mounts: tuple[tuple[str, str], ...] = ()
    docker_environment: Mapping[str, str] = field(default_factory=dict)


_HOST_ONLY = frozenset({"PATH", "HOME", "PYTHONPATH", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT"})


def docker_command(
    image: ContainerImage, argv: Sequence[str], env: Mapping[str, str], name: str
) -> list[str]:
    """The ``docker run`` for one task or job: the image's entrypoint with the task's command,
    its environment, on the host network so ``AWS_ENDPOINT_URL`` (127.0.0.1) reaches the
    engine. Linux only: Docker Desktop's host networking does not reach the host's loopback.
    """
    command = ["docker", "run", "--rm", "--name", name, "--network", "host"]
    for host_path, container_path in image.mounts:
        command += ["--volume", f"{host_path}:{container_path}:ro"]
    merged = {**env, **image.docker_environment}
    for key in sorted(merged):
        if key not in _HOST_ONLY:
            command += ["--env", f"{key}={merged[key]}"]
    command += ["--entrypoint", argv[0], image.image, *argv[1:]]
    return command


def _check_docker_image(image: ContainerImage) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise RuntimeError("containers='docker' needs the docker CLI and a Docker engine")
    found = subprocess.run(
        [docker, "image", "inspect", image.image], capture_output=True, check=False, timeout=30
    )
    if found.returncode != 0:
        dockerfile = f"-f {image.dockerfile} " if image.dockerfile is not None else ""
        raise RuntimeError(
            f"no image {image.image}: build it first with "
            f"docker build {dockerfile}-t {image.image} ."
        )


class ContainerRunner:
    """Runs ECS tasks and Batch jobs of the in-memory AWS as real processes."""

    def __init__(
        self,
        *,
        image: ContainerImage,
        environment: Mapping[str, str],
        log_dir: Path,
        mode: str = "process",
        python_path: Sequence[Path] = (),
        faults: Faults | None = None,
    ) -> None:
        if mode not in ("process", "docker"):
            raise ValueError("containers must be 'process' or 'docker'")
        if mode == "docker":
            _check_docker_image(image)
        self.image = image
        self.environment = dict(environment)
        self.log_dir = log_dir
        self.mode = mode
        self.python_path = [str(path) for path in python_path]
        self.faults = faults or Faults()
        self.runs: dict[str, ContainerRun] = {}
        # Called with each run when its process has ended (the engine ships its log).
        self.on_exit: Callable[[ContainerRun], None] | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- what a task or job runs ----------------------------------------------------------

    def _argv(self, command: Sequence[str]) -> list[str]:
        argv = [*self.image.entrypoint, *command]
        if self.mode == "process" and argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv

    def _process_env(self, env: Mapping[str, str]) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")
        }
        merged = {**base, **env, **self.environment}
        python_path = [*self.python_path, merged.get("PYTHONPATH", "")]
        merged["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
        merged["PYTHONUNBUFFERED"] = "1"
        return merged

    def _spawn(self, run: ContainerRun, env: Mapping[str, str]) -> None:
        with run.log_path.open("wb") as log:
            log.write(f"$ {shlex.join(run.argv)}\n".encode())
        log_handle = run.log_path.open("ab")
        try:
            if self.mode == "docker":
                name = f"stepburst-{run.kind}-{run.ident.rsplit('/', 1)[-1]}"
                argv = docker_command(self.image, run.argv, self._process_env(env), name)
            else:
                argv = run.argv
            run.process = subprocess.Popen(
                argv,
                env=None if self.mode == "docker" else self._process_env(env),
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.image.workdir) if self.image.workdir else None,
                # A group of its own, like a container's PID namespace: stopping the "container"
                # ends every process it started, not only its entrypoint.
                start_new_session=self.mode != "docker",
            )
        finally:
            log_handle.close()

    def _supervise(
        self, run: ContainerRun, env: Mapping[str, str], should_stop: Callable[[], str | None]
    ) -> None:
        try:
            self._spawn(run, env)
        except OSError as exc:
            LOG.error("cannot start %s %s: %s", run.kind, run.ident, exc)
            run.exit_code = 127
            run.done.set()
            return
        process = run.process
        assert process is not None
        while True:
            try:
                run.exit_code = process.wait(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                reason = should_stop()
                if reason is not None and run.stopped_by is None:
                    run.stopped_by = reason
                    _signal_group(process, signal.SIGTERM)
                    try:
                        process.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        _signal_group(process, signal.SIGKILL)
        if run.exit_code is not None and run.exit_code < 0:
            run.exit_code = 128 - run.exit_code  # killed by a signal: 128 + signal, as Docker
        if self.on_exit is not None:
            try:
                self.on_exit(run)
            except Exception:  # shipping its log must not change how the container ended
                LOG.exception("cannot ship the log of %s %s", run.kind, run.ident)
        run.done.set()

    def _register(self, kind: str, ident: str, command: Sequence[str]) -> ContainerRun:
        run = ContainerRun(
            kind=kind,
            ident=ident,
            argv=self._argv(command),
            log_path=self.log_dir / f"{kind}-{ident.rsplit('/', 1)[-1]}.log",
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is stopping")
            self.runs[ident] = run
        return run

    # -- ECS ---------------------------------------------------------------------------------

    def start_ecs_task(self, task: Any, container_environment: Mapping[str, str]) -> bool:
        container = task.containers[0]
        overrides = _container_override(task.overrides, container.name)
        command = overrides.get("command") or container.command or []
        env = dict(container_environment)
        env.update(_name_values(container.environment))
        env.update(_name_values(overrides.get("environment")))
        env.update({"ECS_CONTAINER_METADATA_URI_V4": "", "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"})
        run = self._register("ecs", task.task_arn, command)
        now = datetime.datetime.now(tz=datetime.UTC)
        task.status = "RUNNING"
        task.desired_status = "RUNNING"
        task.started_at = now
        task.pull_started_at = now
        task.pull_stopped_at = now
        container.last_status = "RUNNING"
        container.exitCode = None
        container.task_arn = task.task_arn
        container.container_arn = f"{task.task_arn.replace(':task/', ':container/')}/{ids.uuid4()}"
        if not task.launch_type and task.capacity_provider_name in ("FARGATE", "FARGATE_SPOT"):
            task.launch_type = "FARGATE"

        interrupted = self.faults.take_ecs_spot_interruption()
        reclaim = self.faults.take_running("ecs_spot_interruption_running", command=command)

        def should_stop() -> str | None:
            if task.desired_status == "STOPPED":
                return str(task.stopped_reason or "Task stopped by user")
            if reclaim is not None and reclaim.due():
                return SPOT_INTERRUPTED
            return None

        def supervise() -> None:
            if interrupted:
                run.stopped_by = SPOT_INTERRUPTED
                run.done.set()
            else:
                self._supervise(run, env, should_stop)
            stopped = datetime.datetime.now(tz=datetime.UTC)
            container.exitCode = run.exit_code
            container.last_status = "STOPPED"
            task.desired_status = "STOPPED"
            if run.stopped_by is None:
                task.stopped_reason = ESSENTIAL_CONTAINER_EXITED
                task.stop_code = "EssentialContainerExited"
            elif interrupted or (reclaim is not None and reclaim.fired):
                task.stopped_reason = SPOT_INTERRUPTED
                task.stop_code = "SpotInterruption"
            else:
                task.stopped_reason = run.stopped_by
                task.stop_code = "UserInitiated"
            task.stopping_at = stopped
            task.execution_stopped_at = stopped
            task.stopped_at = stopped
            task.status = "STOPPED"

        threading.Thread(target=supervise, name=f"ecs-{task.id}", daemon=True).start()
        return True

    # -- Batch -------------------------------------------------------------------------------

    def start_batch_job(self, job: Any, container_environment: Mapping[str, str]) -> bool:
        properties = job.job_definition.container_properties or {}
        command = job.container_overrides.get("command") or properties.get("command") or []
        env = dict(container_environment)
        env.update(_name_values(properties.get("environment")))
        env.update(_name_values(job.container_overrides.get("environment")))
        env["AWS_BATCH_JOB_ID"] = job.job_id
        env["AWS_BATCH_JQ_NAME"] = job.job_queue.name
        run = self._register("batch", job.job_id, command)

        host_lost = self.faults.take_running("batch_host_termination", command=command)

        def should_stop() -> str | None:
            if job.stop:
                return str(job.job_stopped_reason or "Terminated")
            if host_lost is not None and host_lost.due():
                return host_terminated()
            return None

        def supervise() -> None:
            self._supervise(run, env, should_stop)
            container: dict[str, Any] = {"exitCode": run.exit_code}
            status_reason = ESSENTIAL_CONTAINER_EXITED
            if host_lost is not None and host_lost.fired:
                # The instance is gone with its container: no exit code, the host's reason.
                run.exit_code = None
                container = {"reason": "Host terminated"}
                status_reason = job.job_stopped_reason = str(run.stopped_by)
            elif run.stopped_by is not None:
                container["reason"] = run.stopped_by
            job.exit_code = run.exit_code
            job.local_container = container
            if job.latest_attempt is not None:
                job.latest_attempt["container"].update(container)
                job.latest_attempt["statusReason"] = status_reason
            if run.stopped_by is None:
                job.job_stopped_reason = ESSENTIAL_CONTAINER_EXITED
            job._mark_stopped(success=run.exit_code == 0 and run.stopped_by is None)

        threading.Thread(target=supervise, name=f"batch-{job.job_id}", daemon=True).start()
        return True

    # -- shutdown ----------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            runs = list(self.runs.values())
        for run in runs:
            if run.process is not None and run.process.poll() is None:
                run.stopped_by = run.stopped_by or "Engine stopped"
                _signal_group(run.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for run in runs:
            if run.process is not None:
                try:
                    run.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(run.process, signal.SIGKILL)

    def log_tail(self, ident: str, lines: int = 20) -> str:
        run = self.runs.get(ident)
        if run is None or not run.log_path.exists():
            return ""
        text = run.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def host_terminated() -> str:
    """How Batch reports a job whose EC2 host (a reclaimed Spot instance) went away:
    "Host EC2 (instance i-...) terminated." ("Troubleshooting AWS Batch")."""
    return f"Host EC2 (instance i-{ids.uuid4().hex[:17]}) terminated."


def _container_override(overrides: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    for override in (overrides or {}).get("containerOverrides", []) or []:
        if override.get("name") in (None, name):
            return dict(override)
    return {}


def _name_values(pairs: Any) -> dict[str, str]:
    if not pairs:
        return {}
    return {str(pair["name"]): str(pair["value"]) for pair in pairs if "name" in pair}


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal a local container's whole process group (its entrypoint leads it); a Docker
    client process is signalled alone, and Docker stops the container."""
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
