"""``run.steps``: the pipeline each work item runs, and the ``{VAR}`` names its templates use.

Each step is a mapping with exactly one key, its kind: ``fetch``, ``command``, ``function`` or
``store``. The models check each step's own shape; :func:`unknown_variables` lets the job check
every template against the names a run will really have, so a misspelt ``{VAR}`` fails when the
job file is loaded, with the field named, instead of on every item of a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.*)$")

# What every item's templates and commands may name besides the run's params.
BUILTIN_VARIABLES = frozenset(
    {"ITEM", "ITEM_INDEX", "RUN_ID", "JOB", "INPUT_BUCKET", "OUTPUT_BUCKET", "OUTPUT_PREFIX"}
)
STEP_KINDS = ("fetch", "command", "function", "store")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_directory(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{value!r} must be a path inside the item's scratch directory")
    return value


class FetchStep(_Spec):
    """Download one object (``key``) or every object under ``prefix`` into the scratch dir."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    key: str | None = Field(
        default=None,
        min_length=1,
        description="Key template in the input bucket, or s3://bucket/key for another bucket.",
    )
    prefix: str | None = Field(
        default=None,
        min_length=1,
        description="Key prefix template: every object under it, kept in its sub-folders.",
    )
    into: str = Field(
        default="", description="Sub-directory of the scratch directory to download into."
    )
    unzip: bool = Field(
        default=False, description="Unpack each downloaded .zip where it landed, then drop it."
    )

    @field_validator("into")
    @classmethod
    def _inside_scratch(cls, value: str) -> str:
        return _relative_directory(value)

    @model_validator(mode="after")
    def _key_or_prefix(self) -> FetchStep:
        if (self.key is None) == (self.prefix is None):
            raise ValueError("give exactly one of key or prefix")
        return self


class StoreStep(_Spec):
    """Upload the files a glob matches, one object each or one zip archive."""

    glob: str = Field(
        min_length=1,
        description="Files to store, relative to the scratch directory (** for sub-folders).",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Key template relative to the run's output prefix, or s3://bucket/key. A prefix "
            "ending in / without zip (default {ITEM}/), the archive's key with zip "
            "(default {ITEM}.zip)."
        ),
    )
    zip: bool = Field(default=False, description="Store the files as one zip archive.")

    @field_validator("glob")
    @classmethod
    def _relative_glob(cls, value: str) -> str:
        return _relative_directory(value)

    @model_validator(mode="after")
    def _key_fits_zip(self) -> StoreStep:
        if self.key is not None and self.zip and self.key.endswith("/"):
            raise ValueError("with zip, key names the archive: it must not end in /")
        if self.key is not None and not self.zip and not self.key.endswith("/"):
            raise ValueError("without zip, key is a prefix: it must end in /")
        return self

    @property
    def key_template(self) -> str:
        return self.key or ("{ITEM}.zip" if self.zip else "{ITEM}/")


class Step(_Spec):
    """One step: exactly one of fetch, command, function or store."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    fetch: FetchStep | None = None
    command: str | None = Field(
        default=None,
        min_length=1,
        description="A command line run in the scratch directory, with {VAR} replaced.",
    )
    function: str | None = Field(
        default=None,
        pattern=FUNCTION_PATTERN,
        description="module:function importable from jobs/, called f(scratch_dir, item, params).",
    )
    store: StoreStep | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(STEP_KINDS)} (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    def templates(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Each ``{VAR}`` template of the step, with its field path below the step."""
        if self.fetch is not None:
            for name in ("key", "prefix", "into"):
                value = getattr(self.fetch, name)
                if value:
                    yield ("fetch", name), value
        elif self.command is not None:
            yield ("command",), self.command
        elif self.store is not None:
            yield ("store", "glob"), self.store.glob
            yield ("store", "key"), self.store.key_template


def unknown_variables(template: str, known: frozenset[str]) -> list[str]:
    """The ``{VAR}`` names in ``template`` that are not in ``known``, in order."""
    return [name for name in VARIABLE.findall(template) if name not in known]


def field_path(parts: tuple[Any, ...]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path
