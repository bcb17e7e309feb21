"""``stepburst local up``: the stack on the local engine, served until stopped.

boto3 and the AWS CLI reach it with ``--endpoint-url`` (S3, DynamoDB, Step Functions, ECS,
Batch, EventBridge ...). An upload to the input bucket starts a run exactly as on AWS.

The port asked for answers only once the stack is deployed, so no client ever meets an empty
AWS: it is reserved (bound) first, which makes a busy port fail at once, and listened on after
the deploy. The engine itself deploys and runs behind a private endpoint of its own (an
ephemeral port of 127.0.0.1, which the functions and containers use); both serve the same
in-memory AWS. SIGINT and SIGTERM stop it at any time: before the stack is ready they unwind
the deploy at once, after that they end the serving loop.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

import yaml
from werkzeug.serving import BaseWSGIServer, get_sockaddr, make_server, select_address_family

from stepburst_local.engine import DeployError, LocalEngine, TemplateError
from stepburst_local.moto_internals import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from stepburst_local.schedules import EngineClock, ScheduleFirer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the serving loop looks at the stop event (a signal sets it at once).
STOP_POLL_SECONDS = 0.5
LISTEN_BACKLOG = 128


class _Stopped(BaseException):
    """A stop signal arrived before the stack was ready; unwinds the deploy.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way
    swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class _StopSignals:
    """SIGINT and SIGTERM stop ``local up``; only the main thread can receive them.

    The first one raises :class:`_Stopped` until :meth:`settle` is called (the stack is ready,
    or the stop under way); every one sets ``stopping``.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._interrupting = True
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def settle(self) -> None:
        """From now on a signal only sets ``stopping``: the loop, or a cleanup, is not cut."""
        self._interrupting = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping.set()
        if self._interrupting:
            self._interrupting = False  # a second signal must not cut the unwinding short
            raise _Stopped(signum)


class PublicEndpoint:
    """The port that clients use: moto's server application on the reserved socket."""

    def __init__(self, reserved: socket.socket, host: str) -> None:
        reserved.listen(LISTEN_BACKLOG)
        port = int(reserved.getsockname()[1])
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=reserved.fileno(),
        )
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        self.url = f"http://{shown}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="stepburst-local-up", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and not yet listening: connections are refused.

    Raises OSError (EADDRINUSE when something else holds the port).
    """
    family = select_address_family(host, port)
    reserved = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As werkzeug does: a restart may reuse the port while the connections of the last
        # run linger in TIME_WAIT. A port that something listens on still fails to bind.
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.bind(get_sockaddr(host, port, family))
    except BaseException:
        reserved.close()
        raise
    return reserved


def _port_problem(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"local up: port {port} on {host} is already in use: stop what serves there, "
            "or choose another port with --port"
        )
    return f"local up: cannot serve on {host}:{port}: {error.strerror or error}"


def _complain(message: str) -> None:
    print(f"stepburst: {message}", file=sys.stderr, flush=True)


def aws_cli() -> str:
    """The AWS CLI installed beside this Python (the project's dev requirements install one;
    it reads AWS_ENDPOINT_URL, as botocore does since 1.31), else the one on PATH."""
    beside = Path(sys.executable).parent / "aws"
    return str(beside) if beside.is_file() else "aws"


def describe(engine: LocalEngine, endpoint: str) -> str:
    """What a user needs to use the running stack: endpoint, names, example commands."""
    outputs = engine.outputs
    lines = [
        f"stepburst local engine on {endpoint}  (region {engine.region}, account "
        f"{engine.account_id}, any credentials)",
        "",
    ]
    width = max((len(name) for name in outputs), default=0)
    lines += [f"  {name:<{width}}  {value}" for name, value in sorted(outputs.items())]
    input_bucket = outputs.get("InputBucketName")
    aws = aws_cli()
    lines += [
        "",
        "Try:",
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test "
        f"AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={engine.region}",
    ]
    if input_bucket:
        lines.append(f"  {aws} s3 cp businesses.jsonl s3://{input_bucket}/incoming/yelp/")
    if "StateMachineArn" in outputs:
        lines.append(
            f"  {aws} stepfunctions list-executions --state-machine-arn "
            f"{outputs['StateMachineArn']}"
        )
    lines += ["", "Ctrl-C stops it (everything is in memory and goes away)."]
    return "\n".join(lines)


def _clock_line(clock: EngineClock) -> str:
    now = clock.now().isoformat(timespec="seconds")
    if clock.speed == 1:
        return f"Schedules fire on the engine's clock, now {now}."
    return f"Schedules fire on the engine's clock, now {now}, running {clock.speed:g} times faster."


def serve(
    project: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 4566,
    out: TextIO | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    clock: EngineClock | None = None,
) -> int:
    """Run the stack until SIGINT/SIGTERM (or ``stop`` is set); 0 on a clean stop.

    2 when the port cannot be had, 1 when the stack does not deploy, 128 + the signal when one
    stopped it before the stack was ready.
    """
    stream = out or sys.stdout
    stopping = stop or threading.Event()
    with _StopSignals(stopping) as signals:
        try:
            try:
                reserved = reserve_port(host, port)
            except OSError as error:
                _complain(_port_problem(host, port, error))
                return EXIT_USAGE
            with reserved:
                return _deploy_and_serve(
                    project,
                    reserved,
                    host=host,
                    stream=stream,
                    ready=ready,
                    stopping=stopping,
                    signals=signals,
                    clock=clock or EngineClock(),
                )
        except _Stopped as stopped:
            _complain(f"local up: stopped by {stopped} before the stack was ready")
            return 128 + stopped.signum


def _deploy_and_serve(
    project: Path,
    reserved: socket.socket,
    *,
    host: str,
    stream: TextIO,
    ready: threading.Event | None,
    stopping: threading.Event,
    signals: _StopSignals,
    clock: EngineClock,
) -> int:
    port = int(reserved.getsockname()[1])
    print(f"deploying {project / 'template.yaml'} on the local engine ...", file=stream, flush=True)
    engine = LocalEngine(project, quiet=True)
    endpoint: PublicEndpoint | None = None
    firer: ScheduleFirer | None = None
    try:
        try:
            engine.start()
        # A template CloudFormation would refuse, or a custom resource that answered FAILED.
        except (TemplateError, DeployError, yaml.YAMLError) as error:
            reason = " ".join(str(error).split())
            _complain(f"local up: the stack did not deploy: {reason}")
            return EXIT_FAILED
        try:
            endpoint = PublicEndpoint(reserved, host)
        except OSError as error:  # taken meanwhile by another `local up` that bound it too
            _complain(_port_problem(host, port, error))
            return EXIT_USAGE
        clock.begin()
        firer = ScheduleFirer(engine.client, clock=clock)
        firer.start()
        signals.settle()
        print(describe(engine, endpoint.url), file=stream, flush=True)
        print(_clock_line(clock), file=stream, flush=True)
        if ready is not None:
            ready.set()
        while not stopping.wait(STOP_POLL_SECONDS):
            pass
        print("stopping", file=stream, flush=True)
    finally:
        signals.settle()
        if firer is not None:
            firer.stop()
        if endpoint is not None:
            endpoint.close()
        engine.stop()
    return EXIT_OK
