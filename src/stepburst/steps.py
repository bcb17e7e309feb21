"""Run one work item's steps in a scratch directory of its own.

A pipeline is ``run.steps`` (``run.command`` is a pipeline of one command step). The steps run
in order in a fresh scratch directory, which is removed when the item ends, whatever happened:
Lambda's ``/tmp`` and a container's disk are finite and a worker runs many items.

- ``fetch`` downloads one object or every object under a prefix (input bucket, or
  ``s3://bucket/...``), optionally unpacking zips;
- ``command`` runs a command line there, its output appended to the item's log;
- ``function`` calls ``f(scratch_dir, item, params)``, with the secrets in ``os.environ``;
- ``store`` uploads the files a glob matches, one object each or one zip archive, under the
  run's output prefix (or ``s3://bucket/...``).

A step that fails stops the item with :class:`StepFailedError`, which names the step (index and
kind) and carries the exit code and the tail of the item's output, with every secret value
replaced by ``***``. S3 is reached through :mod:`stepburst.storage` only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stepburst import storage
from stepburst.errors import StepburstError
from stepburst.job_credentials import job_environment
from stepburst.jobs.pipeline import S3_URI, VARIABLE, FetchStep, Step, StoreStep, field_path
from stepburst.records import import_function
from stepburst.secret_values import NO_SECRETS, SecretValues

# What an item's output leaves in the ledger: enough to see why it failed.
OUTPUT_TAIL_BYTES = 4096
RECORDED_TAIL_CHARS = 1000
# An item function's result lives in its ledger record, and DynamoDB items hold 400 KB.
MAX_RESULT_BYTES = 64 * 1024
BINARY = "application/octet-stream"
# An argument that is a whole AWS Batch parameter placeholder, as in a job definition's
# command: https://docs.aws.amazon.com/batch/latest/userguide/example-use-parameters.html
BATCH_PARAMETER = re.compile(r"^Ref::([A-Za-z_][A-Za-z0-9_]*)$")
ZIP = "application/zip"

StepFunction = Callable[[Path, str, Mapping[str, str]], Mapping[str, Any] | None]


class ItemResultError(StepburstError):
    """An item function returned something its ledger record cannot keep."""


class StepFailedError(StepburstError):
    """A step of an item failed; the item stops there.

    ``error`` names what went wrong (the class of the step's own exception, or
    ``CommandFailedError``); ``index`` and ``kind`` name the step.
    """

    def __init__(
        self,
        index: int,
        kind: str,
        cause: str,
        *,
        error: str | None = None,
        exit_code: int | None = None,
        output_tail: str = "",
    ) -> None:
        self.index = index
        self.kind = kind
        self.error = error or type(self).__name__
        self.exit_code = exit_code
        self.output_tail = output_tail
        super().__init__(f"step {index} ({kind}): {cause}")


class CommandFailedError(StepFailedError):
    """An item's command exited non-zero."""

    def __init__(self, index: int, exit_code: int, output_tail: str) -> None:
        super().__init__(
            index,
            "command",
            f"the command exited with code {exit_code}: {output_tail[-500:]}",
            exit_code=exit_code,
            output_tail=output_tail,
        )


@dataclass(frozen=True)
class ItemContext:
    """What an item's steps see: its names, where data lives, its secrets."""

    item: str
    variables: Mapping[str, str]
    input_bucket: str
    output_bucket: str
    output_prefix: str
    jobs_dir: Path
    secrets: SecretValues = NO_SECRETS
    # run.command's {VAR} may name any environment variable; run.steps' names are checked.
    variables_from_environment: bool = False
    # The role commands run with (stepburst.job_credentials.job_role_for); None: the process's.
    job_role_arn: str | None = None


@dataclass
class _Tally:
    fetched_objects: int = 0
    fetched_bytes: int = 0
    stored_files: int = 0
    stored_bytes: int = 0
    outputs: list[str] = field(default_factory=list)
    commands: int = 0
    result: dict[str, Any] = field(default_factory=dict)


def run_steps(steps: Sequence[Step], context: ItemContext) -> dict[str, Any]:
    """Run the steps in order; what the item's ledger record keeps of a successful run."""
    with tempfile.TemporaryDirectory(prefix="stepburst-item-") as root:
        pipeline = _Pipeline(context, Path(root))
        for index, step in enumerate(steps):
            try:
                pipeline.run(index, step)
            except StepFailedError:
                raise
            except Exception as exc:  # a step's own failure stops the item, named by its step
                raise StepFailedError(
                    index,
                    step.kind,
                    f"{type(exc).__name__}: {exc}",
                    error=type(exc).__name__,
                    output_tail=pipeline.tail(),
                ) from exc
        return pipeline.summary()


class _Pipeline:
    def __init__(self, context: ItemContext, root: Path) -> None:
        self.context = context
        self.root = root
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        self.log_path = root / "output.log"
        self.log_path.touch()
        self.tally = _Tally()

    # -- the steps ---------------------------------------------------------------------------

    def run(self, index: int, step: Step) -> None:
        if step.fetch is not None:
            self._fetch(index, step.fetch)
        elif step.command is not None:
            self._command(index, step.command)
        elif step.function is not None:
            self._function(step.function)
        elif step.store is not None:
            self._store(index, step.store)

    def _fetch(self, index: int, fetch: FetchStep) -> None:
        where = ("run", "steps", index, "fetch")
        into = self._inside(self.scratch / self._fill(fetch.into, (*where, "into")))
        into.mkdir(parents=True, exist_ok=True)
        if fetch.key is not None:
            bucket, key = self._location(fetch.key, (*where, "key"), self.context.input_bucket, "")
            name = key.rsplit("/", 1)[-1]
            if not name:
                raise StepburstError(f"s3://{bucket}/{key} names a folder: use prefix")
            downloaded = [self._download(bucket, key, into / name)]
        else:
            assert fetch.prefix is not None
            bucket, prefix = self._location(
                fetch.prefix, (*where, "prefix"), self.context.input_bucket, ""
            )
            # Keys keep their path below the prefix's last folder.
            base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
            downloaded = [
                self._download(bucket, listed.key, into / listed.key[len(base) :])
                for listed in storage.iter_objects(bucket, prefix)
                if not listed.key.endswith("/")
            ]
            if not downloaded:
                raise StepburstError(f"no objects under s3://{bucket}/{prefix}")
        if fetch.unzip:
            for path in downloaded:
                if zipfile.is_zipfile(path):
                    self._unzip(path)
                elif fetch.key is not None:
                    raise StepburstError(f"{path.name} is not a zip archive")

    def _download(self, bucket: str, key: str, path: Path) -> Path:
        path = self._inside(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.download_file(storage.S3Object(bucket, key), path)
        self.tally.fetched_objects += 1
        self.tally.fetched_bytes += path.stat().st_size
        return path

    def _unzip(self, path: Path) -> None:
        # zipfile drops absolute paths and '..' from member names: nothing lands outside.
        with zipfile.ZipFile(path) as archive:
            archive.extractall(path.parent)
        path.unlink()

    def _command(self, index: int, command: str) -> None:
        import_path = [str(self.context.jobs_dir), str(Path(__file__).resolve().parent.parent)]
        if os.environ.get("PYTHONPATH"):
            import_path.append(os.environ["PYTHONPATH"])
        secrets = self.context.secrets.as_environment()
        environment = {
            **os.environ,
            **self.context.variables,
            **secrets,
            "PYTHONPATH": os.pathsep.join(import_path),
        }
        values = (
            environment
            if self.context.variables_from_environment
            else {**self.context.variables, **secrets}
        )
        where = ("run", "command") if self.context.variables_from_environment else None
        path = where or ("run", "steps", index, "command")
        arguments = []
        for argument in shlex.split(command):
            parameter = BATCH_PARAMETER.match(argument)
            if parameter is None:
                arguments.append(self._fill(argument, path, values))
            elif values.get(parameter[1]):
                # As Batch substitutes a job definition's Ref::name; an unset or empty one is
                # left out rather than passed as an empty argument (``replace: ""`` means no
                # flag). https://docs.aws.amazon.com/batch/latest/userguide/example-use-parameters.html
                arguments.append(values[parameter[1]])
        # A leading python is this interpreter, with the jobs directory and stepburst
        # importable, so a job's own modules run the same on Lambda, in the container, locally.
        if arguments and arguments[0] in ("python", "python3"):
            arguments[0] = sys.executable
        names = self.context.variables
        session = f"{names.get('JOB', 'job')}-{names.get('ITEM_INDEX', '0')}"
        with (
            # The command runs with the job's role, not the worker's or the function's.
            job_environment(environment, self.context.job_role_arn, session) as job_env,
            self.log_path.open("ab") as log,
        ):
            completed = subprocess.run(
                arguments,
                cwd=self.scratch,
                env=job_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        self.tally.commands += 1
        if completed.returncode != 0:
            raise CommandFailedError(index, completed.returncode, self.tail())

    def _function(self, name: str) -> None:
        function: StepFunction = import_function(name)
        with self.context.secrets.in_environment():
            returned = function(self.scratch, self.context.item, self.context.variables)
        kept = item_result(name, returned)
        if kept:
            self.tally.result.update(kept)

    def _store(self, index: int, store: StoreStep) -> None:
        where = ("run", "steps", index, "store")
        pattern = self._fill(store.glob, (*where, "glob"))
        files = sorted(
            path for path in self.scratch.glob(pattern) if path.is_file() and self._inside(path)
        )
        if not files:
            raise StepburstError(f"{pattern!r} matches no file in the scratch directory")
        bucket, key = self._location(
            store.key_template,
            (*where, "key"),
            self.context.output_bucket,
            self.context.output_prefix,
        )
        if store.zip:
            archive = self.root / f"store-{index}.zip"
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
                for path in files:
                    zipped.write(path, path.relative_to(self.scratch).as_posix())
            self._upload(archive, bucket, key, ZIP)
            archive.unlink()
        else:
            for path in files:
                self._upload(path, bucket, key + path.relative_to(self.scratch).as_posix(), BINARY)
        self.tally.stored_files += len(files)
        self.tally.outputs.append(f"s3://{bucket}/{key}")

    def _upload(self, path: Path, bucket: str, key: str, content_type: str) -> None:
        with (
            path.open("rb") as source,
            storage.MultipartWriter(bucket, key, content_type=content_type) as target,
        ):
            while chunk := source.read(storage.DEFAULT_PART_SIZE):
                target.write(chunk)
        self.tally.stored_bytes += path.stat().st_size

    # -- helpers -----------------------------------------------------------------------------

    def _fill(
        self,
        template: str,
        where: tuple[str | int, ...],
        values: Mapping[str, str] | None = None,
    ) -> str:
        known = self.context.variables if values is None else values

        def replace(match: Any) -> str:
            name = str(match[1])
            if name not in known:
                raise StepburstError(
                    f"{{{name}}} in {field_path(where)} is not a param or a built-in variable"
                )
            return known[name]

        return VARIABLE.sub(replace, template)

    def _location(
        self,
        template: str,
        where: tuple[str | int, ...],
        default_bucket: str,
        base_prefix: str,
    ) -> tuple[str, str]:
        filled = self._fill(template, where)
        uri = S3_URI.match(filled)
        if uri is not None:
            return uri["bucket"], uri["key"]
        return default_bucket, base_prefix + filled

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.scratch.resolve()):
            raise StepburstError(f"{path} is outside the item's scratch directory")
        return path

    def tail(self) -> str:
        """The last bytes of the item's output, secrets redacted.

        A secret cut in two by the start of the tail would not be found whole: read a secret's
        length more, redact, then drop that margin.
        """
        secrets = self.context.secrets
        margin = secrets.longest_bytes
        size = self.log_path.stat().st_size
        start = max(0, size - OUTPUT_TAIL_BYTES - margin)
        with self.log_path.open("rb") as log:
            log.seek(start)
            text = secrets.redact(log.read().decode("utf-8", "replace"))
        if start > 0:
            text = text[margin:]
        return text[-OUTPUT_TAIL_BYTES:]

    def summary(self) -> dict[str, Any]:
        tally = self.tally
        summary: dict[str, Any] = {}
        if tally.commands:
            summary.update(exit_code=0, output_tail=self.tail()[-RECORDED_TAIL_CHARS:])
        if tally.fetched_objects:
            summary.update(fetched_objects=tally.fetched_objects, fetched_bytes=tally.fetched_bytes)
        if tally.outputs:
            summary.update(
                stored_files=tally.stored_files,
                stored_bytes=tally.stored_bytes,
                outputs=tally.outputs,
            )
        if tally.result:
            summary["result"] = self.context.secrets.redact_value(tally.result)
        return summary


def item_result(function: str, returned: object) -> dict[str, Any] | None:
    """What an item function returned, as the ledger keeps it: a JSON object, or None.

    Anything else fails the item with a cause that says what to return, rather than a
    ``TypeError`` from deep inside ``dict()`` or a ledger write that refuses a value.
    """
    if returned is None:
        return None
    if not isinstance(returned, Mapping):
        kind = type(returned).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise ItemResultError(
            f"{function}: the function returned {article} {kind}; return a mapping or None"
        )
    try:
        encoded = orjson.dumps(dict(returned), option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ItemResultError(
            f"{function}: the function's result cannot be kept as JSON: {exc}"
        ) from exc
    if len(encoded) > MAX_RESULT_BYTES:
        raise ItemResultError(
            f"{function}: the function's result is {len(encoded)} bytes as JSON, over "
            f"{MAX_RESULT_BYTES}; write it to OUTPUT_BUCKET under OUTPUT_PREFIX and return "
            "its key"
        )
    result: dict[str, Any] = orjson.loads(encoded)
    return result or None


def render_command(command: str, values: Mapping[str, str]) -> list[str]:
    """Split a command line and replace each ``{VAR}``; an unknown one is an error.

    An argument ``Ref::name`` becomes the value of ``name``, as Batch substitutes a job
    definition's parameters; unlike Batch, which leaves an unset one as the literal text and
    passes an empty one as an empty argument, a parameter that is unset or empty is left out
    (``replace: ""`` means no ``--replace`` flag, not an empty argument).
    """

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise StepburstError(f"{{{name}}} in the command is not a param or variable")
        return values[name]

    arguments: list[str] = []
    for argument in shlex.split(command):
        parameter = BATCH_PARAMETER.match(argument)
        if parameter is None:
            arguments.append(VARIABLE.sub(replace, argument))
        elif values.get(parameter[1]):
            arguments.append(values[parameter[1]])
    return arguments


def run_command(
    command: str,
    variables: Mapping[str, str],
    *,
    jobs_dir: Path,
    job_role_arn: str | None = None,
) -> dict[str, Any]:
    """Run one command (a combine step's) in a scratch directory, keeping its output's tail,
    with ``job_role_arn``'s credentials when given; a non-zero exit raises
    ``CommandFailedError``. Steps run theirs through ``run_steps``."""
    import_path = [str(jobs_dir), str(Path(__file__).resolve().parent.parent)]
    if os.environ.get("PYTHONPATH"):
        import_path.append(os.environ["PYTHONPATH"])
    environment = {**os.environ, **variables, "PYTHONPATH": os.pathsep.join(import_path)}
    arguments = render_command(command, environment)
    if arguments and arguments[0] in ("python", "python3"):
        arguments[0] = sys.executable
    session = f"{variables.get('JOB', 'job')}-combine"
    with (
        job_environment(environment, job_role_arn, session) as job_env,
        tempfile.TemporaryDirectory(prefix="stepburst-") as scratch,
        tempfile.TemporaryFile() as log,
    ):
        completed = subprocess.run(
            arguments,
            cwd=scratch,
            env=job_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        log.seek(max(0, log.seek(0, os.SEEK_END) - OUTPUT_TAIL_BYTES))
        tail = log.read().decode("utf-8", "replace")
    if completed.returncode != 0:
        raise CommandFailedError(0, completed.returncode, tail)
    return {"exit_code": 0, "output_tail": tail[-RECORDED_TAIL_CHARS:]}
