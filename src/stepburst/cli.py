"""The ``stepburst`` command line.

Exit codes: 0 success, 1 the run failed, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stepburst.errors import JobSpecError
from stepburst.jobs import JobCatalog

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2


def _jobs(args: argparse.Namespace) -> int:
    try:
        catalog = JobCatalog.from_directory(Path(args.jobs_dir))
    except JobSpecError as error:
        print(f"invalid job: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps([job.model_dump(mode="json") for job in catalog], indent=2))
        return EXIT_OK
    for job in catalog:
        triggers = ", ".join(f"s3://…/{t.prefix}*{t.suffix}" for t in job.triggers.s3)
        print(f"{job.name:<28} {job.compute.platform:<7} {triggers or 'manual'}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from stepburst.local.demo import run_demo

    code: int = run_demo(Path(args.project))
    return code


def _local_up(args: argparse.Namespace) -> int:
    from stepburst.local.server import serve

    return serve(Path(args.project), host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepburst", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    jobs = commands.add_parser("jobs", help="list and validate the job files")
    jobs.add_argument("--jobs-dir", default="jobs", help="the jobs directory (default: jobs)")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.set_defaults(handler=_jobs)

    demo = commands.add_parser("demo", help="run the main job end to end on the local engine")
    demo.add_argument("--project", default=".", help="the project directory")
    demo.set_defaults(handler=_demo)

    local = commands.add_parser("local", help="the embedded local engine")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="serve the local AWS on 127.0.0.1 until stopped")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--project", default=".", help="the project directory")
    up.set_defaults(handler=_local_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
