"""Load and validate job files. Errors name the file and the field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from stepburst.errors import JobSpecError, UnknownJobError
from stepburst.jobs.compute_rules import ComputeFieldError
from stepburst.jobs.model import Job
from stepburst.jobs.output_keys import FieldError
from stepburst.jobs.schema import shipped_schema

JOB_FILE_SUFFIXES = (".yaml", ".yml")


def _field_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def parse_job(document: Any, source: str) -> Job:
    """Validate one parsed job document; ``source`` names it in errors."""
    validator = Draft202012Validator(shipped_schema())
    error: SchemaError | None = best_match(validator.iter_errors(document))
    if error is not None:
        raise JobSpecError(source, _field_path(error.absolute_path), error.message)
    try:
        return Job.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        # A validator's own ValueError reads better without pydantic's "Value error, ".
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldError):
            raise JobSpecError(source, cause.field, cause.problem) from exc
        problem = str(cause) if first["type"] == "value_error" and cause else first["msg"]
        location = list(first["loc"])
        if isinstance(cause, ComputeFieldError):
            location.append(cause.field)
        raise JobSpecError(source, _field_path(location), problem) from exc


def load_job_file(path: Path) -> Job:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise JobSpecError(path.name, where, f"not valid YAML: {exc}") from exc
    job = parse_job(document, path.name)
    if path.stem != job.name:
        raise JobSpecError(path.name, "name", f"must match the file name {path.stem!r}")
    return job


class JobCatalog:
    """Every job in a directory, validated once (at cold start) and looked up by name."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self._jobs: dict[str, Job] = {}
        for job in jobs:
            if job.name in self._jobs:
                raise JobSpecError(job.name, "name", "defined twice")
            self._jobs[job.name] = job

    @classmethod
    def from_directory(cls, directory: Path) -> JobCatalog:
        if not directory.is_dir():
            raise JobSpecError(str(directory), "(directory)", "jobs directory not found")
        files = sorted(p for p in directory.iterdir() if p.suffix in JOB_FILE_SUFFIXES)
        jobs: dict[str, Job] = {}
        sources: dict[str, str] = {}
        for path in files:
            job = load_job_file(path)
            # A name matches its file's stem, so only name.yaml beside name.yml can clash.
            if job.name in sources:
                raise JobSpecError(
                    path.name,
                    "name",
                    f"job {job.name!r} is defined twice, in {sources[job.name]} and {path.name}",
                )
            jobs[job.name], sources[job.name] = job, path.name
        return cls(jobs.values())

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise UnknownJobError(f"no job named {name!r} (known: {known})") from None

    def for_upload(self, key: str) -> Job | None:
        """The job whose S3 trigger matches ``key``; the longest prefix wins."""
        matches = [
            (len(trigger.prefix), job)
            for job in self._jobs.values()
            for trigger in job.triggers.s3
            if key.startswith(trigger.prefix) and key.endswith(trigger.suffix)
        ]
        return max(matches, key=lambda match: match[0])[1] if matches else None
