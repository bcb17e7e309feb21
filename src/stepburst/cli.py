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
import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime
from datetime import time as clock_time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from stepburst import operations, syncing
from stepburst.errors import (
    AwsError,
    AwsUnavailableError,
    ConnectionDroppedError,
    InvalidInputError,
    StepburstError,
)
from stepburst.jobs import JobCatalog
from stepburst.operations import Operations, RunProgress
from stepburst.stack import LOCAL_ENDPOINT, StackNotFoundError, from_cloudformation, from_local
from stepburst.statuses import ItemStatus, RunStatus
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
# How long `--local` waits for the engine's port to accept a connection before saying so.
LOCAL_PROBE_SECONDS = 2.0
BAR_WIDTH = 30
# Entry-point group through which installed packages add commands.
PLUGIN_COMMANDS = "stepburst.commands"


class UsageError(StepburstError):
    """The command line is wrong; the message says how."""


def _print_json(document: Any, out: TextIO) -> None:
    out.write(json.dumps(document, indent=2, default=str) + "\n")


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        out.write("\n")


def _operations(args: argparse.Namespace) -> Operations:
    if args.local:
        # botocore retries a refused connection for half a minute: ask the port first, so a
        # forgotten `stepburst local up` is said at once.
        if not local_engine_listens(args.endpoint):
            raise AwsUnavailableError(f"no local engine answers at {args.endpoint}")
        stack = from_local(args.endpoint)
    else:
        stack = from_cloudformation(args.stack)
    return Operations(stack, Path(args.jobs_dir))


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
    catalog = JobCatalog.from_directory(Path(args.jobs_dir))
    if args.json:
        _print_json([job.model_dump(mode="json") for job in catalog], out)
        return EXIT_OK
    rows = []
    for job in catalog:
        starts = [f"s3:{t.prefix}*{t.suffix}" for t in job.triggers.s3]
        if job.triggers.schedule:
            starts.append(f"{job.triggers.schedule.expression} {job.triggers.schedule.timezone}")
        if job.triggers.manual:
            starts.append("manual")
        split = next(name for name, value in job.split if value is not None)
        rows.append((job.name, split, job.compute.platform, ", ".join(starts)))
    _table(rows, ("JOB", "SPLIT", "PLATFORM", "STARTS"), out)
    return EXIT_OK


def cmd_upload(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInputError("FILE", f"{path} is not a file")
    uploaded = _operations(args).upload(path, args.to, wait_seconds=args.wait)
    document = {
        "uri": f"s3://{uploaded.bucket}/{uploaded.key}",
        "version_id": uploaded.version_id,
        "job": uploaded.job,
        "run_id": uploaded.run_id,
    }
    if args.json:
        _print_json(document, out)
    else:
        out.write(f"uploaded {document['uri']}\n")
        if uploaded.job is None:
            out.write("no job matches this key: the upload is recorded as ignored\n")
        elif uploaded.run_id:
            out.write(f"run {uploaded.run_id} (job {uploaded.job})\n")
        else:
            out.write(f"job {uploaded.job} will run; see `stepburst runs --job {uploaded.job}`\n")
    return EXIT_OK


def _manual_start(args: argparse.Namespace) -> ManualStart:
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
    # The command line's own files first: a typo in a path needs no AWS to be reported.
    manual_start = _manual_start(args)
    ops = _operations(args)
    # The preview runs a split function here, as Plan does from the jobs layer: import it from
    # the same jobs directory the job files come from.
    jobs_path = str(Path(args.jobs_dir).resolve())
    if jobs_path not in sys.path:
        sys.path.insert(0, jobs_path)
    start = ops.prepare(manual_start)
    draft = ops.preview(start)
    cost = operations.draft_cost(draft)
    planned = draft.summary
    summary = {
        "job": draft.job.name,
        "items": planned.items,
        "units": planned.units,
        "routes": draft.routes(),
        "estimated_seconds": round(planned.estimated_seconds, 1),
        "longest_item_seconds": planned.longest_item_seconds,
        "estimated_cost_usd": cost.as_dict(),
        "params": draft.params,
        "applied": bool(args.apply),
    }
    if args.apply:
        started = ops.start(start, draft)
        summary.update(run_id=started.run_id, execution_arn=started.execution_arn)
    if args.json:
        _print_json(summary, out)
        return EXIT_OK
    out.write(f"job {draft.job.name}: {planned.items} items in {planned.units} units\n")
    rows = [
        (item.index, item.what, item.route, f"{item.estimated_seconds:g}s")
        for item in planned.sample
    ]
    _table(rows, ("ITEM", "WHAT", "ROUTE", "ESTIMATE"), out)
    if planned.items > len(planned.sample):
        out.write(f"… and {planned.items - len(planned.sample)} more\n")
    routes = ", ".join(f"{route}: {count}" for route, count in sorted(draft.routes().items()))
    out.write(f"routes: {routes}\n")
    out.write(f"estimated: {summary['estimated_seconds']} s of work, about ${cost.total:.4f}\n")
    if draft.params:
        out.write("params: " + " ".join(f"{k}={v}" for k, v in draft.params.items()) + "\n")
    if args.apply:
        out.write(f"started run {summary['run_id']}\n")
    else:
        out.write("preview only: nothing was started (add --apply to run)\n")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    runs = _operations(args).runs(args.job, args.limit)
    if args.json:
        _print_json(runs, out)
        return EXIT_OK
    rows = [
        (
            run["run_id"],
            run.get("status"),
            run.get("planned_items"),
            run.get("succeeded", ""),
            run.get("failed", ""),
            run.get("started_at"),
        )
        for run in runs
    ]
    _table(rows, ("RUN", "STATUS", "ITEMS", "SUCCEEDED", "FAILED", "STARTED"), out)
    return EXIT_OK


def _progress(status: RunProgress) -> str:
    planned = max(status.planned, 1)
    done = status.by_status.get(ItemStatus.SUCCEEDED, 0)
    failed = status.by_status.get(ItemStatus.FAILED, 0)
    running = status.by_status.get(ItemStatus.RUNNING, 0)
    filled = round(BAR_WIDTH * done / planned)
    broken = round(BAR_WIDTH * failed / planned)
    bar = "#" * filled + "x" * broken + "." * max(0, BAR_WIDTH - filled - broken)
    return (
        f"[{bar}] {done}/{status.planned} done, {failed} failed, {running} running  {status.status}"
    )


def _write_status(status: RunProgress, out: TextIO) -> None:
    run = status.run
    out.write(f"run {run['run_id']}  job {run.get('job')}  {status.status}\n")
    out.write(_progress(status) + "\n")
    rows = [
        (
            route,
            counts.get(ItemStatus.SUCCEEDED, 0),
            counts.get(ItemStatus.FAILED, 0),
            counts.get(ItemStatus.RUNNING, 0),
        )
        for route, counts in sorted(status.by_route.items())
    ]
    if rows:
        _table(rows, ("ROUTE", "SUCCEEDED", "FAILED", "RUNNING"), out)
    if run.get("cause"):
        out.write(f"cause: {run['cause']}\n")
    if run.get("summary_key"):
        out.write(f"summary: s3://…/{run['summary_key']}\n")


def _status_exit(status: RunProgress) -> int:
    return EXIT_RUN_FAILED if status.status in {RunStatus.FAILED, RunStatus.CANCELLED} else EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    ops = _operations(args)
    if not args.watch:
        status = ops.status(args.run)
        if args.json:
            _print_json(status.as_dict(), out)
        else:
            _write_status(status, out)
        return _status_exit(status)
    last: RunProgress | None = None
    live = out.isatty()
    for status in ops.watch(args.run, interval=args.interval):
        last = status
        if args.json:
            continue
        out.write(("\r" if live else "") + _progress(status) + ("" if live else "\n"))
        out.flush()
    assert last is not None
    if args.json:
        _print_json(last.as_dict(), out)
    else:
        out.write("\n" if live else "")
        _write_status(last, out)
    return _status_exit(last)


def cmd_items(args: argparse.Namespace, out: TextIO) -> int:
    items = _operations(args).items(args.run, failed_only=args.failed)
    if args.json:
        _print_json(items, out)
        return EXIT_OK
    rows = [
        (
            item["item"],
            item.get("status"),
            item.get("route"),
            item.get("attempts"),
            item.get("exit_code", ""),
            item.get("duration_seconds", ""),
            item.get("records", ""),
            (item.get("error") or "")[:40],
        )
        for item in items
    ]
    _table(
        rows, ("ITEM", "STATUS", "ROUTE", "ATTEMPTS", "EXIT", "SECONDS", "RECORDS", "ERROR"), out
    )
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    stopped = _operations(args).cancel(args.run)
    if args.json:
        _print_json(stopped, out)
    else:
        out.write(
            f"cancelled {args.run}: stopped {stopped['executions']} execution(s), "
            f"{stopped['ecs_tasks']} ECS task(s), {stopped['batch_jobs']} Batch job(s)\n"
        )
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace, out: TextIO) -> int:
    started = _operations(args).redrive(args.run)
    if args.json:
        _print_json({"run_id": started.run_id, "execution_arn": started.execution_arn}, out)
    else:
        out.write(f"redriving the failed items of {args.run}\n")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    source, target = args.source, args.target
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
        _print_json(result.as_dict(), out)
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
    started = _operations(args).fire_schedule(args.job, day, at)
    if args.json:
        _print_json({"run_id": started.run_id, "execution_arn": started.execution_arn}, out)
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
    if args.download is None:
        run = ops.run(args.run)
        _print_json({"bucket": ops.settings.output_bucket, "prefix": run["output_prefix"]}, out)
        return EXIT_OK
    files, size = ops.download(args.run, Path(args.download))
    if args.json:
        _print_json({"files": files, "bytes": size, "directory": args.download}, out)
    else:
        out.write(f"downloaded {files} files, {size:,} bytes, to {args.download}\n")
    return EXIT_OK


def cmd_cost(args: argparse.Namespace, out: TextIO) -> int:
    cost = _operations(args).cost(args.run)
    if args.json:
        _print_json(cost.as_dict(), out)
    else:
        for name, value in cost.as_dict().items():
            out.write(f"{name:<16} ${value:.6f}\n")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, TextIO], int]
DEBUG_HELP = "on an error, show its traceback too"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepburst", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--stack",
        default=os.environ.get("STEPBURST_STACK", "stepburst"),
        help="the CloudFormation stack (default: $STEPBURST_STACK or stepburst)",
    )
    where.add_argument("--local", action="store_true", help="use `stepburst local up`")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("STEPBURST_LOCAL_ENDPOINT", LOCAL_ENDPOINT),
        help=f"the local engine's endpoint (default: {LOCAL_ENDPOINT})",
    )
    parser.add_argument("--jobs-dir", default="jobs", help="the job files (default: jobs)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Command, help_text: str, *, listing: bool = True) -> Any:
        command = commands.add_parser(name, help=help_text)
        if listing:
            command.add_argument("--json", action="store_true", help="print JSON")
        command.set_defaults(handler=handler)
        return command

    add("jobs", cmd_jobs, "list and validate the job files")

    upload = add("upload", cmd_upload, "upload a file to the input bucket")
    upload.add_argument("file")
    upload.add_argument("--to", help="key prefix (ending in /) or full key in the input bucket")
    upload.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the run id")

    start = add("start", cmd_start, "preview, or with --apply start, a run of a job")
    start.add_argument("job")
    start.add_argument("--input", help="the run's input: JSON, or @file")
    start.add_argument("--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    start.add_argument("--items", help="work items, e.g. Dam001/Period01-16")
    start.add_argument("--items-file", help="a file of work items, one a line; - for stdin")
    start.add_argument("--prefix", help="prefix for --items names")
    start.add_argument("--padding", type=int, help="zero padding for --items numbers")
    start.add_argument("--date", help="the date for date jobs (YYYYMMDD)")
    start.add_argument("--apply", action="store_true", help="start the run (default: preview)")

    runs = add("runs", cmd_runs, "list runs, newest first")
    runs.add_argument("--job")
    runs.add_argument("--limit", type=int, default=20)

    status = add("status", cmd_status, "a run's progress")
    status.add_argument("run")
    status.add_argument("--watch", action="store_true", help="follow until the run ends")
    status.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)

    items = add("items", cmd_items, "a run's items")
    items.add_argument("run")
    items.add_argument("--failed", action="store_true", help="only items that did not succeed")

    add("cancel", cmd_cancel, "stop a run and its running containers").add_argument("run")
    add("redrive", cmd_redrive, "run the failed items of a run again").add_argument("run")

    results = add("results", cmd_results, "where a run's outputs are, or download them")
    results.add_argument("run")
    results.add_argument("--download", metavar="DIR", help="download every output to DIR")

    add("cost", cmd_cost, "estimated cost of a run").add_argument("run")

    _add_schedule_command(commands)

    _add_sync_command(add)

    _add_plugin_commands(commands)
    for command in commands.choices.values():
        # Also after the command, where it is natural to add it when rerunning one: a default
        # of SUPPRESS leaves the global flag's value alone when it is not given here.
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
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
    fire.add_argument("--json", action="store_true", help="print JSON")
    fire.set_defaults(handler=cmd_schedule_fire)


def _add_plugin_commands(commands: Any) -> None:
    """Commands that other installed packages add (the local engine adds `demo` and `local`).

    The product never imports them: each registers through an entry point of the group
    ``stepburst.commands``, whose object is called with the subparsers to extend.
    """
    for entry in entry_points(group=PLUGIN_COMMANDS):
        entry.load()(commands)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; its exit code. Whatever goes wrong is one line on stderr."""
    stream = out or sys.stdout
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
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
        _complain("interrupted")
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
    if isinstance(error, StackNotFoundError):
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
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError) and error.filename is not None:
        # A path given on the command line that cannot be read or written.
        return EXIT_USAGE, f"{error.filename}: {error.strerror}"
    return EXIT_UNEXPECTED, (
        f"unexpected error: {type(error).__name__}: {error} "
        "(run again with --debug to see the traceback)"
    )


def _complain(message: str) -> None:
    """One line on stderr, however many lines the message had."""
    with contextlib.suppress(OSError):  # stderr is gone too: nothing is left to tell
        print(f"stepburst: {' '.join(message.split())}", file=sys.stderr, flush=True)


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
