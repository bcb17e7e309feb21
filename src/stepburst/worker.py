"""The worker container's entrypoint: ``python -m stepburst.worker run-unit ...`` (or
``combine --run <run id>`` for a job's combine step on ECS).

ECS and Batch run it with the command the state machine passes. The unit is read from the
run's manifest in S3 (container overrides are limited to 8 KiB, so they carry only indexes).
Exit codes: 0 every item succeeded; 3 some items failed (each cause is in the ledger);
2 bad usage or configuration; anything else is a crash.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stepburst import components, placement, storage
from stepburst.errors import ItemsFailedError, StepburstError
from stepburst.manifest import Unit
from stepburst.observability import bind_run, logger
from stepburst.settings import ConfigurationError, settings
from stepburst.statuses import CombineStatus
from stepburst.steps import BATCH_PARAMETER

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_ITEMS_FAILED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepburst-worker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_unit = commands.add_parser("run-unit", help="run one work unit of a run")
    run_unit.add_argument("--run", required=True, help="the run id")
    run_unit.add_argument("--unit", required=True, type=int, help="the unit's index")
    run_unit.add_argument("--attempt", type=int, default=1)
    run_unit.add_argument("--route", choices=("ecs", "batch", "lambda"), default="ecs")
    combine = commands.add_parser("combine", help="run a run's combine step")
    combine.add_argument("--run", required=True, help="the run id")
    return parser


def _combine(run_id: str) -> int:
    """The combine step on a container: its outcome goes to the ledger either way; a failed
    one also exits non-zero, so the task's exit code tells the same story."""
    logger.append_keys(run_id=run_id, step="combine")
    try:
        status = components.combiner().run(run_id)
    except (ConfigurationError, StepburstError):
        logger.exception("cannot run the combine step")
        return EXIT_USAGE
    return EXIT_OK if status == CombineStatus.SUCCEEDED else EXIT_ITEMS_FAILED


def without_unset_parameters(argv: Sequence[str]) -> list[str]:
    """``argv`` less the ``Ref::name`` placeholders Batch left unset (it passes them on as
    literal text), each with the option it was the value of.
    https://docs.aws.amazon.com/batch/latest/userguide/example-use-parameters.html
    """
    kept: list[str] = []
    for argument in argv:
        if BATCH_PARAMETER.match(argument):
            if kept and kept[-1].startswith("--"):
                kept.pop()
            continue
        kept.append(argument)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(
            without_unset_parameters(sys.argv[1:] if argv is None else argv)
        )
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK
    if args.command == "combine":
        bind_run(args.run)
        return _combine(args.run)
    logger.append_keys(unit=args.unit, route=args.route)
    bind_run(args.run)
    try:
        config = settings()
        run = components.ledger().get_run(args.run)
        if run is None:
            logger.error("no such run in the ledger")
            return EXIT_USAGE
        # A redrive points the run at a manifest of its own: read the run's current one.
        units = storage.get_json(config.work_bucket, str(run["manifest_key"]))
        if not 0 <= args.unit < len(units):
            logger.error("no such unit", extra={"units": len(units)})
            return EXIT_USAGE
        unit = Unit.model_validate(units[args.unit])
        bind_run(args.run, str(run["job"]))
        job = components.catalog().get(str(run["job"]))
        params = {str(name): str(value) for name, value in (run.get("params") or {}).items()}
        components.unit_runner().run(
            job,
            args.run,
            unit,
            attempt=args.attempt,
            route=args.route,
            params=params,
            placement=placement.in_container(args.route),
        )
    except ItemsFailedError as failure:
        logger.warning("items failed", extra={"reason": str(failure)})
        return EXIT_ITEMS_FAILED
    except (ConfigurationError, StepburstError):
        logger.exception("cannot run the unit")
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
