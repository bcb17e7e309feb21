"""The ``stepburst`` command line, against a deployed stack or the local engine.

    stepburst [--stack NAME | --local [--endpoint URL]] [--debug] COMMAND ...

Exit codes: 0 success, 1 the run failed, 2 bad usage or input, 3 AWS refused or failed the
request, 4 AWS could not be reached, 5 an unexpected error (--debug shows its traceback),
130 interrupted, 141 the output pipe closed. Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from stepburst import cli_documents
from stepburst.errors import (
    AwsError,
    AwsUnavailableError,
    ConnectionDroppedError,
    InvalidInputError,
    StepburstError,
)
from stepburst.statuses import RunStatus

# Everything that loads boto3, pydantic, Powertools or the X-Ray SDK is imported where a
# command needs it, so `stepburst --help` and completion stay fast.
if TYPE_CHECKING:
    from rich.console import Console

    from stepburst.operations import Operations, RunProgress
    from stepburst.triggers import ManualStart

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_AWS_ERROR = 3
EXIT_AWS_UNREACHABLE = 4
EXIT_UNEXPECTED = 5
# What a shell reports for a process that Ctrl-C or a closed pipe ended: 128 + the signal.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
AWS_SETUP_HINT = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_REGION; "
    "check the network and AWS_ENDPOINT_URL"
)
LOCAL_ENGINE_HINT = "start one with `stepburst local up`, or give its address with --endpoint"
# Where `stepburst local up` serves (stepburst.stack.LOCAL_ENDPOINT, kept here so that --help
# needs no AWS SDK).
LOCAL_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_STACK = "stepburst"
# How long `--local` waits for the engine's port to accept a connection before saying so.
LOCAL_PROBE_SECONDS = 2.0
# Entry-point group through which installed packages add commands.
PLUGIN_COMMANDS = "stepburst.commands"
PREVIEW_ROWS = 10


class UsageError(StepburstError):
    """The command line is wrong; the message says how."""


def _print_json(document: Mapping[str, Any], out: TextIO) -> None:
    out.write(cli_documents.dumps(document) + "\n")


def _console(out: TextIO) -> Console:
    from stepburst import cli_render

    return cli_render.console(out)


def _stack(args: argparse.Namespace) -> Any:
    from stepburst.stack import from_cloudformation, from_local

    if args.local:
        # botocore retries a refused connection for half a minute: ask the port first, so a
        # forgotten `stepburst local up` is said at once.
        if not local_engine_listens(args.endpoint):
            raise AwsUnavailableError(f"no local engine answers at {args.endpoint}")
        return from_local(args.endpoint)
    return from_cloudformation(args.stack)


def _operations(args: argparse.Namespace) -> Operations:
    from stepburst.operations import Operations

    stack = _stack(args)
    if args.jobs_dir is not None:
        return Operations(stack, Path(args.jobs_dir))
    # The jobs the stack was deployed with, so that any directory will do.
    from stepburst import job_catalogs

    ops = Operations(stack, Path(os.devnull))
    ledger_table = ops.settings.ledger_table
    ops.use_catalog(lambda: job_catalogs.read(ledger_table))
    return ops


def local_engine_listens(endpoint: str) -> bool:
    """Whether something accepts connections where ``endpoint`` points."""
    address = urlsplit(endpoint)
    if address.hostname is None:
        raise InvalidInputError("--endpoint", f"{endpoint!r} is not a URL like {LOCAL_ENDPOINT}")
    try:
        port = address.port or (443 if address.scheme == "https" else 80)
    except ValueError as error:
        raise InvalidInputError("--endpoint", f"{endpoint!r}: {error}") from error
    try:
        with socket.create_connection((address.hostname, port), timeout=LOCAL_PROBE_SECONDS):
            return True
    except OSError:
        return False


# -- commands ----------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace, out: TextIO) -> int:
    from stepburst.jobs import JobCatalog

    at_hand = not (args.local or args.stack_given) and Path("jobs").is_dir()
    if args.jobs_dir is not None or at_hand:
        # The files given or at hand (validating them is this command's other use); else the
        # jobs of the stack (--local, --stack, or the default stack).
        catalog = JobCatalog.from_directory(Path(args.jobs_dir or "jobs"))
    else:
        catalog = _operations(args).catalog
    if args.json:
        jobs = [job.model_dump(mode="json") for job in catalog]
        _print_json(cli_documents.document("jobs", jobs=jobs), out)
        return EXIT_OK
    from stepburst import cli_render

    rows = []
    for job in catalog:
        starts = [f"s3:{t.prefix}*{t.suffix}" for t in job.triggers.s3]
        if job.triggers.schedule:
            starts.append(f"{job.triggers.schedule.expression} {job.triggers.schedule.timezone}")
        if job.triggers.manual:
            starts.append("manual")
        split = next(name for name, value in job.split if value is not None)
        rows.append((job.name, split, job.compute.platform, ", ".join(starts)))
    cli_render.print_table(_console(out), ("JOB", "SPLIT", "PLATFORM", "STARTS"), rows)
    return EXIT_OK


def cmd_upload(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInputError("FILE", f"{path} is not a file")
    uploaded = _operations(args).upload(path, args.to, wait_seconds=args.wait)
    document = cli_documents.document(
        "upload",
        uri=f"s3://{uploaded.bucket}/{uploaded.key}",
        bucket=uploaded.bucket,
        key=uploaded.key,
        version_id=uploaded.version_id,
        job=uploaded.job,
        run_id=uploaded.run_id,
    )
    if args.json:
        _print_json(document, out)
        return EXIT_OK
    con = _console(out)
    con.print(f"uploaded {document['uri']}")
    if uploaded.job is None:
        con.print("no job matches this key: the uploads rule starts no run for it", style="yellow")
    elif uploaded.run_id:
        con.print(f"run {uploaded.run_id} (job {uploaded.job})")
    else:
        con.print(f"job {uploaded.job} will run; see `stepburst runs --job {uploaded.job}`")
    return EXIT_OK


def _manual_start(args: argparse.Namespace) -> ManualStart:
    from stepburst import operations
    from stepburst.triggers import ManualStart

    given: Any = {}
    if args.input:
        text = args.input
        if text.startswith("@"):
            text = operations.read_text_file(text[1:], "--input")
        try:
            given = json.loads(text)
        except ValueError as error:
            raise InvalidInputError("--input", f"not valid JSON: {error}") from error
        if not isinstance(given, dict):
            raise InvalidInputError("--input", "must be a JSON object")
    params = {}
    for pair in args.param:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInputError("--param", f"{pair!r} is not NAME=VALUE")
        params[name] = value
    if args.items is not None and args.items_file is not None:
        raise UsageError("give --items or --items-file, not both")
    if args.items is not None:
        given["items"] = args.items
    if args.items_file is not None:
        given["items"] = operations.read_items_file(args.items_file, sys.stdin)
    if args.prefix is not None:
        given["prefix"] = args.prefix
    if args.padding is not None:
        given["padding"] = args.padding
    if args.date is not None:
        given["date"] = args.date
    return ManualStart(job=args.job, input=given, params=params)


def cmd_start(args: argparse.Namespace, out: TextIO) -> int:
    from stepburst import operations

    # The command line's own files first: a typo in a path needs no AWS to be reported.
    manual_start = _manual_start(args)
    ops = _operations(args)
    # A job the stack does not run is refused before anything is uploaded or started.
    ops.catalog.get(manual_start.job)
    # The preview runs a split function here, as Plan does from the jobs layer: the planner
    # loads it from the file of the jobs directory the job files come from.
    start = ops.prepare(manual_start)
    draft = ops.preview(start)
    cost = operations.draft_cost(draft)
    planned = draft.summary
    summary = cli_documents.document(
        "start",
        job=draft.job.name,
        items=planned.items,
        units=planned.units,
        routes=draft.routes(),
        estimated_seconds=round(planned.estimated_seconds, 1),
        longest_item_seconds=planned.longest_item_seconds,
        estimated_cost_usd=cost.as_dict(),
        params=draft.params,
        applied=bool(args.apply),
        run_id=None,
        execution_arn=None,
    )
    if args.apply:
        started = ops.start(start, draft)
        summary.update(run_id=started.run_id, execution_arn=started.execution_arn)
    if args.json:
        _print_json(summary, out)
        return EXIT_OK
    from stepburst import cli_render

    con = _console(out)
    con.print(f"job {draft.job.name}: {planned.items} items in {planned.units} units")
    rows = [(item.what, item.route, f"{item.estimated_seconds:g}s") for item in planned.sample]
    cli_render.print_table(con, ("ITEM", "ROUTE", "ESTIMATE"), rows)
    if planned.items > len(planned.sample):
        con.print(f"… and {planned.items - len(planned.sample)} more", style="dim")
    routes = ", ".join(f"{route}: {count}" for route, count in sorted(draft.routes().items()))
    con.print(f"routes: {routes}")
    con.print(f"estimated: {summary['estimated_seconds']} s of work, about ${cost.total:.4f}")
    if draft.params:
        con.print("params: " + " ".join(f"{k}={v}" for k, v in draft.params.items()))
    if args.apply:
        con.print(f"started run {summary['run_id']}", style="green")
    else:
        con.print("preview only: nothing was started (add --apply to run)", style="yellow")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    runs = _operations(args).runs(args.job, args.limit)
    if args.json:
        _print_json(cli_documents.runs_document(runs), out)
        return EXIT_OK
    from stepburst import cli_render

    rows = [
        (
            run["run_id"],
            cli_render.styled_status(run.get("status")),
            run.get("planned_items"),
            run.get("succeeded", ""),
            run.get("failed", ""),
            run.get("started_at"),
        )
        for run in runs
    ]
    headers = ("RUN", "STATUS", "ITEMS", "SUCCEEDED", "FAILED", "STARTED")
    cli_render.print_table(_console(out), headers, rows)
    return EXIT_OK


def status_document(ops: Operations, status: RunProgress) -> dict[str, Any]:
    """``status --json``: the run without the ledger's keys, its counts and where its files are."""
    run = cli_documents.public(status.run)
    bucket = ops.settings.output_bucket
    summary_key = run.get("summary_key")
    prefix = run.get("output_prefix")
    return cli_documents.document(
        "status",
        run_id=run.get("run_id"),
        run=run,
        status=status.status,
        items=status.by_status,
        routes=status.by_route,
        execution_status=status.execution_status,
        elapsed_seconds=_elapsed(run),
        summary_uri=f"s3://{bucket}/{summary_key}" if summary_key else None,
        output_uri=f"s3://{bucket}/{prefix}" if prefix else None,
    )


def _timestamp(text: Any) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _elapsed(run: Mapping[str, Any]) -> float | None:
    """Seconds from the run's start to its end, or to now while it runs."""
    started = _timestamp(run.get("started_at"))
    if started is None:
        return None
    ended = _timestamp(run.get("finished_at")) if run.get("status") != RunStatus.RUNNING else None
    return round(max(0.0, (ended or time.time()) - started), 1)


def _status_exit(status: str) -> int:
    return EXIT_RUN_FAILED if status in {RunStatus.FAILED, RunStatus.CANCELLED} else EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    ops = _operations(args)
    if not args.watch:
        document = status_document(ops, ops.status(args.run))
        if args.json:
            _print_json(document, out)
        else:
            from stepburst import cli_render

            view = cli_render.status_view(document, document["elapsed_seconds"])
            cli_render.print_trimmed(_console(out), view)
        return _status_exit(document["status"])
    documents = _changes(
        status_document(ops, s) for s in ops.watch(args.run, interval=args.interval)
    )
    if args.json:
        # NDJSON: one document a line for each change, the final one last.
        last: Mapping[str, Any] = {}
        for last in documents:
            out.write(cli_documents.dumps(last, indent=None) + "\n")
            out.flush()
        return _status_exit(str(last["status"]))
    from stepburst import cli_render

    con = _console(out)
    if con.is_terminal:
        final = cli_render.watch(con, documents, lambda document: _elapsed(document["run"]))
        return _status_exit(str(final["status"]))
    # Not a terminal: one line a change, then the final view once.
    current: Mapping[str, Any] = {}
    for current in documents:
        planned = int(current["run"].get("planned_items") or 0)
        con.print(
            cli_render.progress_line(
                current["items"], planned, current["status"], current["elapsed_seconds"]
            )
        )
    view = cli_render.status_view(current, current["elapsed_seconds"], finished=True)
    cli_render.print_trimmed(con, view)
    return _status_exit(str(current["status"]))


def _changes(documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The documents that differ from the one before, elapsed time aside."""
    seen: Any = None
    for document in documents:
        compared = {k: v for k, v in document.items() if k != "elapsed_seconds"}
        compared["run"] = {k: v for k, v in document["run"].items() if k != "updated_at"}
        if compared != seen:
            seen = compared
            yield document


def cmd_items(args: argparse.Namespace, out: TextIO) -> int:
    items = _operations(args).items(args.run, failed_only=args.failed)
    if args.json:
        _print_json(cli_documents.items_document(args.run, items), out)
        return EXIT_OK
    from stepburst import cli_render

    headers = ("ITEM", "STATUS", "ROUTE", "ATTEMPTS", "EXIT", "SECONDS", "RECORDS", "ERROR")
    cli_render.print_table(_console(out), headers, cli_render.items_rows(items))
    return EXIT_OK


def _cancel_items(args: argparse.Namespace, out: TextIO, names: list[str]) -> int:
    cancelled = _operations(args).cancel_items(args.run, names)
    stopped = {
        "executions": 0,
        "ecs_tasks": len(
            {arn for each in cancelled if each.route == "ecs" for arn in each.stopped}
        ),
        "batch_jobs": len(
            {job for each in cancelled if each.route == "batch" for job in each.stopped}
        ),
    }
    if args.json:
        document = cli_documents.document(
            "cancel",
            run_id=args.run,
            stopped=stopped,
            items=[each.to_document() for each in cancelled],
        )
        _print_json(document, out)
        return EXIT_OK
    console = _console(out)
    for each in cancelled:
        if each.status != "CANCELLED":
            console.print(f"{each.name}: already ended {each.status}, not cancelled")
        elif each.stopped:
            console.print(f"{each.name}: cancelled; stopped {', '.join(each.stopped)}")
        else:
            console.print(f"{each.name}: cancelled; it is skipped when its unit starts")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    names = [name.strip() for given in args.item or [] for name in given.split(",")]
    if args.item is not None:
        names = list(dict.fromkeys(name for name in names if name))
        if not names:
            raise UsageError("--item needs an item name")
        return _cancel_items(args, out, names)
    stopped = _operations(args).cancel(args.run)
    if args.json:
        _print_json(cli_documents.document("cancel", run_id=args.run, stopped=stopped), out)
    else:
        _console(out).print(
            f"cancelled {args.run}: stopped {stopped['executions']} execution(s), "
            f"{stopped['ecs_tasks']} ECS task(s), {stopped['batch_jobs']} Batch job(s)"
        )
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace, out: TextIO) -> int:
    started = _operations(args).redrive(args.run)
    if args.json:
        document = cli_documents.document(
            "redrive", run_id=started.run_id, execution_arn=started.execution_arn
        )
        _print_json(document, out)
    else:
        _console(out).print(f"redriving the failed items of {args.run}")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    from stepburst import syncing

    source, target = args.source, args.target
    if args.local:
        _stack(args)  # points the S3 client at the local engine, as every other command
    if source.startswith("s3://") == target.startswith("s3://"):
        raise InvalidInputError("sync", "give one local directory and one s3://bucket/prefix")
    if source.startswith("s3://"):
        if args.zip_each:
            raise InvalidInputError("--zip-each", "zips what goes up: give a local source")
        bucket, prefix = syncing.parse_s3_uri(source)
        result = syncing.sync_down(
            bucket, prefix, Path(target), threads=args.threads, unzip=args.unzip
        )
    else:
        if args.unzip:
            raise InvalidInputError("--unzip", "unzips what comes down: give an s3:// source")
        bucket, prefix = syncing.parse_s3_uri(target)
        result = syncing.sync_up(
            Path(source), bucket, prefix, threads=args.threads, zip_each=args.zip_each
        )
    if args.json:
        _print_json(cli_documents.document("sync", **result.as_dict()), out)
    else:
        counts = result.as_dict()
        out.write(
            f"copied {counts['copied']} ({counts['bytes']:,} bytes), "
            f"skipped {counts['skipped']} unchanged"
            + (f", unzipped {counts['unzipped']}" if counts["unzipped"] else "")
            + "\n"
        )
    return EXIT_OK


def cmd_schedule_fire(args: argparse.Namespace, out: TextIO) -> int:
    day = _parse_day(args.date)
    at = _parse_clock_time(args.at) if args.at else None
    started, scheduled = _operations(args).fire_schedule(args.job, day, at)
    if args.json:
        document = cli_documents.document(
            "schedule",
            job=args.job,
            scheduled_time=scheduled.isoformat().replace("+00:00", "Z"),
            run_id=started.run_id,
            execution_arn=started.execution_arn or None,
            started=bool(started.execution_arn),
        )
        _print_json(document, out)
    elif started.execution_arn:
        out.write(f"fired {args.job}'s schedule for {day}: run {started.run_id}\n")
    else:
        out.write(f"{args.job}'s schedule for {day} was fired before: run {started.run_id}\n")
    return EXIT_OK


def _parse_day(text: str) -> date:
    for layout in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise InvalidInputError("--date", f"{text!r} is not a date (YYYY-MM-DD or YYYYMMDD)")


def _parse_clock_time(text: str) -> clock_time:
    try:
        return clock_time.fromisoformat(text)
    except ValueError:
        raise InvalidInputError("--at", f"{text!r} is not a time of day (HH:MM)") from None


def cmd_results(args: argparse.Namespace, out: TextIO) -> int:
    ops = _operations(args)
    run = ops.run(args.run)
    bucket, prefix = ops.settings.output_bucket, str(run["output_prefix"])
    downloaded = None
    if args.download is not None:
        files, size = ops.download(args.run, Path(args.download))
        downloaded = {"files": files, "bytes": size, "directory": args.download}
    document = cli_documents.document(
        "results",
        run_id=args.run,
        bucket=bucket,
        prefix=prefix,
        uri=f"s3://{bucket}/{prefix}",
        summary_uri=f"s3://{bucket}/{run['summary_key']}" if run.get("summary_key") else None,
        downloaded=downloaded,
    )
    if args.json:
        _print_json(document, out)
        return EXIT_OK
    con = _console(out)
    con.print(f"outputs: {document['uri']}")
    if document["summary_uri"]:
        con.print(f"summary: {document['summary_uri']}")
    if downloaded is not None:
        con.print(f"downloaded {downloaded['files']} files, {size:,} bytes, to {args.download}")
    else:
        con.print(f"download them with `stepburst results {args.run} --download DIR`", style="dim")
    return EXIT_OK


def cmd_cost(args: argparse.Namespace, out: TextIO) -> int:
    cost = _operations(args).cost(args.run).as_dict()
    if args.json:
        _print_json(cli_documents.document("cost", run_id=args.run, currency="USD", **cost), out)
        return EXIT_OK
    from stepburst import cli_render

    rows = [(name, f"${value:.6f}") for name, value in cost.items()]
    table = cli_render.table(("PART", "ESTIMATED COST"), rows, numeric=1)
    cli_render.print_trimmed(_console(out), table)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace, out: TextIO) -> int:
    from stepburst import run_logs

    ops = _operations(args)
    lines = run_logs.run_log_lines(ops, args.run, item=args.item, follow=args.follow)
    if args.json:
        for line in lines:
            out.write(cli_documents.dumps(line.document(), indent=None) + "\n")
            out.flush()
        return EXIT_OK
    from stepburst import cli_render

    con = _console(out)
    for line in lines:
        con.print(cli_render.log_line(line))
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    from stepburst import cli_completion

    out.write(cli_completion.script(args.shell, build_parser()))
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, TextIO], int]
DEBUG_HELP = "on an error, show its traceback too"
JSON_HELP = "print JSON for scripts (shapes in README, 'JSON output')"
RUN_HELP = "the run's id (see `stepburst runs`)"


def _package_version() -> str:
    try:
        return version("stepburst")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name.

    After the command they default to SUPPRESS, which leaves the value given (or defaulted)
    before the command alone when they are not repeated there.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--stack",
        default=default(None),
        help=f"the CloudFormation stack (default: $STEPBURST_STACK or {DEFAULT_STACK})",
    )
    where.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help="use the local engine of `stepburst local up`",
    )
    parser.add_argument(
        "--endpoint",
        default=default(os.environ.get("STEPBURST_LOCAL_ENDPOINT", LOCAL_ENDPOINT)),
        help=f"the local engine's endpoint (default: {LOCAL_ENDPOINT})",
    )
    parser.add_argument(
        "--jobs-dir",
        default=default(os.environ.get("STEPBURST_JOBS_DIR")),
        metavar="DIR",
        help="read the job files here instead of the stack's published jobs",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help=JSON_HELP)
    parser.add_argument("--debug", action="store_true", default=default(False), help=DEBUG_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepburst", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_package_version()}",
        help="print the version and exit",
    )
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_text: str) -> Any:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    add("jobs", cmd_jobs, "list and validate the jobs (the stack's, or --jobs-dir's)")

    upload = add("upload", cmd_upload, "upload a file to the input bucket")
    upload.add_argument("file", help="the file to upload")
    upload.add_argument("--to", help="key prefix (ending in /) or full key in the input bucket")
    upload.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the run id")

    start = add("start", cmd_start, "preview, or with --apply start, a run of a job")
    start.add_argument("job", help="the job's name (see `stepburst jobs`)")
    start.add_argument("--input", help="the run's input: JSON, or @file")
    start.add_argument("--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    start.add_argument("--items", help="work items, e.g. Dam001/Period01-16")
    start.add_argument("--items-file", help="a file of work items, one a line; - for stdin")
    start.add_argument("--prefix", help="prefix for --items names")
    start.add_argument("--padding", type=int, help="zero padding for --items numbers")
    start.add_argument("--date", help="the date for date jobs (YYYYMMDD)")
    start.add_argument("--apply", action="store_true", help="start the run (default: preview)")

    runs = add("runs", cmd_runs, "list runs, newest first")
    runs.add_argument("--job", help="only this job's runs")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (default: 20)")

    status = add("status", cmd_status, "a run's progress")
    status.add_argument("run", help=RUN_HELP)
    status.add_argument(
        "--watch", action="store_true", help="follow until the run ends (NDJSON with --json)"
    )
    status.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)

    items = add("items", cmd_items, "a run's items")
    items.add_argument("run", help=RUN_HELP)
    items.add_argument("--failed", action="store_true", help="only items that did not succeed")

    cancel = add("cancel", cmd_cancel, "stop a run and its running containers")
    cancel.add_argument("run", help=RUN_HELP)
    cancel.add_argument(
        "--item",
        action="append",
        metavar="NAME",
        help="cancel only this container item (repeat, or NAME,NAME); the others go on",
    )
    add("redrive", cmd_redrive, "run the failed items of a run again").add_argument(
        "run", help=RUN_HELP
    )

    results = add("results", cmd_results, "where a run's outputs are, or download them")
    results.add_argument("run", help=RUN_HELP)
    results.add_argument("--download", metavar="DIR", help="download every output to DIR")

    add("cost", cmd_cost, "estimated cost of a run").add_argument("run", help=RUN_HELP)

    logs = add("logs", cmd_logs, "a run's log lines, from its functions and workers")
    logs.add_argument("run", help=RUN_HELP)
    logs.add_argument("--item", metavar="NAME|INDEX", help="only this item's lines")
    logs.add_argument(
        "--follow", action="store_true", help="keep printing new lines until the run ends"
    )

    completion = add("completion", cmd_completion, "print a shell completion script")
    completion.add_argument(
        "shell", choices=("bash", "zsh", "fish"), help="the shell to complete in"
    )

    _add_schedule_command(commands)

    _add_sync_command(add)

    _add_plugin_commands(commands)
    for command in _all_commands(commands):
        _add_global_options(command, top=False)
    return parser


def _add_sync_command(add: Callable[..., Any]) -> None:
    sync = add("sync", cmd_sync, "copy a local directory to or from S3, skipping unchanged files")
    sync.add_argument("source", help="a local directory or s3://bucket/prefix/")
    sync.add_argument("target", help="an s3://bucket/prefix/ or a local directory")
    sync.add_argument("--threads", type=int, default=10, help="parallel transfers (default 10)")
    sync.add_argument(
        "--zip-each",
        metavar="PATTERN",
        help="upload each file or directory matching PATTERN (e.g. 'Dam*/Period*') as one zip",
    )
    sync.add_argument("--unzip", action="store_true", help="unzip each .zip downloaded")


def _add_schedule_command(commands: Any) -> None:
    schedule = commands.add_parser("schedule", help="a job's schedule")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
    fire = schedule_commands.add_parser(
        "fire", help="start the run a job's schedule starts for a day, now"
    )
    fire.add_argument("job", help="a job with a schedule")
    fire.add_argument("--date", required=True, help="the scheduled day in the schedule's time zone")
    fire.add_argument("--at", help="HH:MM, when the schedule fires more than once that day")
    fire.set_defaults(handler=cmd_schedule_fire)


def _all_commands(commands: Any) -> Iterator[argparse.ArgumentParser]:
    """Every command's parser, the nested ones (`local up`) too."""
    for command in commands.choices.values():
        yield command
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from _all_commands(action)


def _add_plugin_commands(commands: Any) -> None:
    """Commands that other installed packages add (the local engine adds `demo` and `local`).

    The product never imports them: each registers through an entry point of the group
    ``stepburst.commands``, whose object is called with the subparsers to extend.
    """
    for entry in entry_points(group=PLUGIN_COMMANDS):
        entry.load()(commands)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.local and args.stack is not None:
        raise UsageError("give --stack or --local, not both")
    args.stack_given = args.stack is not None or "STEPBURST_STACK" in os.environ
    if args.stack is None:
        args.stack = os.environ.get("STEPBURST_STACK", DEFAULT_STACK)
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; its exit code. Whatever goes wrong is one line on stderr."""
    stream = out or sys.stdout
    args: argparse.Namespace | None = None
    try:
        try:
            args = _parse(argv)
        except SystemExit as exit_:
            sys.stdout.flush()  # --help, so that `stepburst --help | head` ends here too
            return EXIT_USAGE if exit_.code else EXIT_OK
        handler: Command = args.handler
        code = handler(args, stream)
        # A reader that went away (`| head -1`) shows here, not as Python's complaint at exit.
        stream.flush()
        return code
    except BrokenPipeError:
        _discard_output(stream)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _complain("interrupted", error=False)
        return EXIT_INTERRUPTED
    except Exception as error:  # the edge: every failure becomes one line and an exit code
        if args is not None and args.debug:
            traceback.print_exception(error)
        code, message = _failure(error, local=bool(args is not None and args.local))
        _complain(message)
        return code


def _failure(error: Exception, *, local: bool) -> tuple[int, str]:
    """The exit code and message for an error that ended a command."""
    if isinstance(error, InvalidInputError):
        return EXIT_USAGE, f"invalid input: {error}"
    # Only a command that loaded the stack module can have raised its error.
    stack_module = sys.modules.get("stepburst.stack")
    if stack_module is not None and isinstance(error, stack_module.StackNotFoundError):
        # Nothing answering is a setup problem; a stack that is not there is a wrong name.
        unreachable = isinstance(error.__cause__, AwsUnavailableError)
        return (EXIT_AWS_UNREACHABLE if unreachable else EXIT_USAGE), str(error)
    if isinstance(error, AwsUnavailableError):
        return (
            EXIT_AWS_UNREACHABLE,
            f"{error} (hint: {LOCAL_ENGINE_HINT if local else AWS_SETUP_HINT})",
        )
    if isinstance(error, ConnectionDroppedError):
        return EXIT_AWS_ERROR, f"{error}; try again"
    if isinstance(error, AwsError):
        text = str(error)
        said = text if error.code in text else f"{error.code}: {text}"
        return EXIT_AWS_ERROR, f"AWS refused or failed the request: {said}"
    if isinstance(error, StepburstError):
        return EXIT_USAGE, _with_cause(error)
    if isinstance(error, OSError) and error.filename is not None:
        # A path given on the command line that cannot be read or written.
        return EXIT_USAGE, f"{error.filename}: {error.strerror}"
    return EXIT_UNEXPECTED, (
        f"unexpected error: {type(error).__name__}: {error} "
        "(run again with --debug to see the traceback)"
    )


def _with_cause(error: Exception) -> str:
    """The error's message, or its class and cause when it has no message of its own."""
    text = str(error)
    if text:
        return text
    cause = error.__cause__ or error.__context__
    named = type(error).__name__
    return f"{named}: {cause}" if cause is not None else f"{named} (no message)"


def _complain(message: str, *, error: bool = True) -> None:
    """One line on stderr, however many lines the message had: ``stepburst: error: ...``."""
    text = " ".join(message.split())
    with contextlib.suppress(OSError):  # stderr is gone too: nothing is left to tell
        label = "stepburst: error: " if error else "stepburst: "
        if sys.stderr.isatty() and "NO_COLOR" not in os.environ:
            label = f"\033[1;31m{label}\033[0m"
        print(f"{label}{text}", file=sys.stderr, flush=True)


def _discard_output(stream: TextIO) -> None:
    """Send what is still buffered for a closed pipe to /dev/null.

    Python flushes stdout once more at exit; without this, that flush fails again and prints
    "Exception ignored ... BrokenPipeError". https://docs.python.org/3/library/signal.html#note-on-sigpipe
    """
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):  # not a real file (a StringIO in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
