"""Expand a SAM template into plain CloudFormation with SAM's own translator.

``sam deploy`` sends the template to CloudFormation, whose ``AWS::Serverless-2016-10-31``
transform runs ``samtranslator``; the local engine runs the same translator, so functions,
their roles (with the statements SAM generates from ``Policies``), layers, permissions, the
state machine and its event rules are what AWS would create.

Two things differ from the transform on AWS:

* ``sam package`` would have uploaded the local ``CodeUri``/``ContentUri``/``DefinitionUri``
  directories and files; here each becomes a placeholder S3 location in
  :data:`ARTIFACTS_BUCKET`, and :attr:`Translation.artifacts` maps it back to the local path.
* The transform asks IAM for the AWS managed policies' ARNs; here they come from the copy of
  the AWS managed policies that moto ships (:func:`managed_policy_map`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from stepburst_local.moto_internals import aws_managed_policies_data

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
ARTIFACTS_BUCKET = "stepburst-local-artifacts"
"""The placeholder bucket of the local paths the translator needs as S3 locations."""

# Where SAM resources name local files: type -> properties (what `sam package` uploads).
_LOCAL_PATH_PROPERTIES = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
}
_GLOBAL_SECTIONS = {"AWS::Serverless::Function": "Function"}


CACHE_ENV = "STEPBURST_LOCAL_CACHE"
"""Where translated templates are kept between processes (default: ``stepburst-local`` in
``$XDG_CACHE_HOME`` or ``~/.cache``); set it empty to keep none."""


class TranslationError(Exception):
    """SAM's translator refused the template; the message lists its reasons."""


@dataclass(frozen=True)
class Translation:
    """A SAM template as plain CloudFormation, with where its artifacts are on this machine."""

    template: dict[str, Any]
    artifacts: dict[str, str]
    """S3 key in :data:`ARTIFACTS_BUCKET` -> the local path the SAM template gave."""

    def local_path(self, location: Any) -> str | None:
        """The local path behind a translated ``Code``/``Content``/``DefinitionS3Location``
        (``{"S3Bucket", "S3Key"}`` or ``{"Bucket", "Key"}``); None if it is not one."""
        if not isinstance(location, Mapping):
            return None
        bucket = location.get("S3Bucket", location.get("Bucket"))
        key = location.get("S3Key", location.get("Key"))
        if bucket != ARTIFACTS_BUCKET or not isinstance(key, str):
            return None
        return self.artifacts.get(key)


def is_sam_template(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


@functools.cache
def _aws_managed_policies() -> dict[str, Any]:
    # ~0.25 s to parse, so once per process.
    policies: dict[str, Any] = json.loads(aws_managed_policies_data)
    return policies


def managed_policy_map(partition: str = "aws") -> dict[str, str]:
    """AWS managed policy name -> ARN, as the transform reads it from IAM."""
    return {
        name: f"arn:{partition}:iam::aws:policy{data.get('Path', '/')}{name}"
        for name, data in _aws_managed_policies().items()
    }


def aws_managed_policy(arn: str) -> tuple[str, dict[str, Any]] | None:
    """The name and data (path, document, dates) of the AWS managed policy ``arn``."""
    if ":iam::aws:policy/" not in arn:
        return None
    name = arn.rsplit("/", 1)[-1]
    data = _aws_managed_policies().get(name)
    return (name, data) if data is not None else None


def translate(
    template: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any],
    region: str,
    account_id: str,
    stack_name: str,
) -> Translation:
    """The template after SAM's transform (a template without it is returned as it is)."""
    if not is_sam_template(template):
        return Translation(copy.deepcopy(dict(template)), {})
    key = json.dumps(
        [template, dict(parameters), region, account_id, stack_name], sort_keys=True, default=str
    )
    cached = _translate_cached(key)
    return Translation(copy.deepcopy(cached.template), dict(cached.artifacts))


@functools.lru_cache(maxsize=8)
def _translate_cached(key: str) -> Translation:
    # Deterministic, and ~0.4 s for the project's template plus the translator's import:
    # engines in one process share it, and later processes read it from the cache directory.
    stored = _stored_translation(key)
    cached = _read_translation(stored) if stored is not None else None
    if cached is not None:
        return cached
    template, parameters, region, account_id, stack_name = json.loads(key)
    translation = _translate(template, parameters, region, account_id, stack_name)
    if stored is not None:
        _write_translation(stored, translation)
    return translation


def _stored_translation(key: str) -> Path | None:
    """Where the translation of ``key`` is kept: named by the hash of the template, its
    parameters and the versions of the translator and of the managed policies' copy."""
    configured = os.environ.get(CACHE_ENV)
    if configured == "":
        return None
    if configured:
        directory = Path(configured)
    else:
        directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        directory /= "stepburst-local"
    versions = [importlib.metadata.version(name) for name in ("aws-sam-translator", "moto")]
    digest = hashlib.sha256(json.dumps([key, versions]).encode()).hexdigest()
    return directory / "sam" / f"{digest}.json"


def _read_translation(path: Path) -> Translation | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return Translation(dict(stored["template"]), dict(stored["artifacts"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or unreadable: translate again


def _write_translation(path: Path, translation: Translation) -> None:
    document = json.dumps({"template": translation.template, "artifacts": translation.artifacts})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: another engine may be reading or writing the same file.
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
        ) as handle:
            handle.write(document)
        os.replace(handle.name, path)
    except OSError:
        pass  # a cache that cannot be written only costs the next start the translation


def _translate(
    template: dict[str, Any],
    parameters: dict[str, Any],
    region: str,
    account_id: str,
    stack_name: str,
) -> Translation:
    # Imported here: the translator (and pydantic's models in it) is only needed at deploy.
    from samtranslator.metrics.metrics import (  # type: ignore[import-untyped]
        DummyMetricsPublisher,
        Metrics,
    )
    from samtranslator.model.exceptions import (  # type: ignore[import-untyped]
        InvalidDocumentException,
    )
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    artifacts = _stage_local_paths(template)
    partition = "aws"
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        managed_policy_map(partition),
        Parser(),
        boto_session=boto3.session.Session(region_name=region),
        metrics=metrics,
    )
    values = {
        **parameters,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": partition,
        "AWS::StackName": stack_name,
    }
    try:
        translated: dict[str, Any] = translator.translate(template, values)
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(cause.message) for cause in exc.causes) or str(exc)
        raise TranslationError(f"SAM's translator refused the template: {reasons}") from None
    finally:
        metrics.publish()
    return Translation(translated, artifacts)


def _stage_local_paths(template: dict[str, Any]) -> dict[str, str]:
    """Replace local paths with placeholder S3 locations, as ``sam package`` replaces them
    with uploaded ones; return the placeholders' keys -> local paths."""
    artifacts: dict[str, str] = {}

    def stage(properties: dict[str, Any], name: str) -> None:
        value = properties.get(name)
        if isinstance(value, str) and not value.startswith("s3://"):
            key = f"{len(artifacts)}/{name}"
            artifacts[key] = value
            properties[name] = f"s3://{ARTIFACTS_BUCKET}/{key}"

    globals_ = template.get("Globals")
    for resource_type, section in _GLOBAL_SECTIONS.items():
        if isinstance(globals_, dict) and isinstance(globals_.get(section), dict):
            for name in _LOCAL_PATH_PROPERTIES[resource_type]:
                stage(globals_[section], name)
    for resource in template.get("Resources", {}).values():
        if not isinstance(resource, dict):
            continue
        names = _LOCAL_PATH_PROPERTIES.get(str(resource.get("Type")), ())
        properties = resource.get("Properties")
        if isinstance(properties, dict):
            for name in names:
                stage(properties, name)
    return artifacts
