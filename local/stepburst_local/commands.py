"""The commands the local engine adds to ``stepburst``: ``demo`` and ``local up``.

Registered through the ``stepburst.commands`` entry point, so the product's CLI offers them
without importing the engine. The engine's modules (and moto) load only when one of these
commands runs; without the ``local`` extra they say how to install it instead of failing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

EXIT_USAGE = 2
# The seed systems' workloads `stepburst demo NAME` runs (stepburst_local.workloads; named here
# so that `--help` does not load the engine).
WORKLOAD_NAMES = ("ztf", "rios", "dam-periods", "triage")
INSTALL_HINT = "the local engine needs its extra: pip install 'stepburst[local]'"


def register(commands: Any) -> None:
    """Add ``demo`` and ``local up`` to the ``stepburst`` subparsers."""
    demo = commands.add_parser(
        "demo", help="run the main job, or a seed system's workload, end to end locally"
    )
    demo.add_argument(
        "workload",
        nargs="?",
        choices=WORKLOAD_NAMES,
        help="a seed system's workload (default: the JSONL job on upload)",
    )
    demo.add_argument("--project", default=".", help="the project directory")
    demo.set_defaults(handler=_demo)

    local = commands.add_parser("local", help="the embedded local engine")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="serve the local AWS on 127.0.0.1 until stopped")
    up.add_argument("--port", type=int, default=4566, help="the port to serve on")
    up.add_argument("--host", default="127.0.0.1", help="the address to serve on")
    up.add_argument("--project", default=".", help="the project directory")
    up.add_argument(
        "--clock-start",
        help="start the engine's clock at this instant (ISO 8601 with a zone, e.g. "
        "2026-03-08T05:59:00-08:00), to try a scheduled job now",
    )
    up.add_argument(
        "--clock-speed",
        type=float,
        default=1.0,
        help="how many times faster than real time the engine's clock runs (default 1)",
    )
    up.set_defaults(handler=_local_up)


def _engine_missing(error: ModuleNotFoundError) -> int:
    print(f"stepburst: {INSTALL_HINT} ({error.name} is not installed)", file=sys.stderr)
    return EXIT_USAGE


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from stepburst_local.demo import run_demo
        from stepburst_local.workloads import run_workload
    except ModuleNotFoundError as error:
        return _engine_missing(error)
    if args.workload:
        return run_workload(args.workload, Path(args.project))
    return run_demo(Path(args.project))


def _local_up(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from stepburst_local.schedules import EngineClock
        from stepburst_local.server import serve
    except ModuleNotFoundError as error:
        return _engine_missing(error)
    try:
        start = datetime.fromisoformat(args.clock_start) if args.clock_start else None
        clock = EngineClock(start=start, speed=args.clock_speed)
    except ValueError as error:
        print(f"stepburst: local up: --clock-start/--clock-speed: {error}", file=sys.stderr)
        return EXIT_USAGE
    return serve(Path(args.project), host=args.host, port=args.port, clock=clock)
