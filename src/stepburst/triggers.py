"""What started a run: an S3 upload (via EventBridge), a schedule, or a manual start.

Every trigger has an identity (see :mod:`stepburst.layout`). For uploads it is the object
version, so repeated deliveries of the same event map to the same run id and the ledger's
conditional write lets only one through, while a new version of the object is a new trigger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stepburst.errors import InvalidInputError
from stepburst.layout import upload_identity

S3_SOURCE = "aws.s3"
SCHEDULE_SOURCE = "stepburst.schedule"


@dataclass(frozen=True, slots=True)
class UploadTrigger:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    sequencer: str | None
    size: int
    time: datetime
    identity: str

    def describe(self) -> dict[str, Any]:
        return {
            "type": "s3",
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
        }


class ManualStart(BaseModel):
    """A manual start: ``stepburst start`` or ``aws stepfunctions start-execution``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"type": "manual", "input": self.input, "params": self.params}


class ScheduledStart(BaseModel):
    """What the job's EventBridge Scheduler schedule sends as the execution input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=f"^{SCHEDULE_SOURCE}$")
    job: str = Field(min_length=1)
    scheduled_time: datetime
    input: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "schedule",
            "scheduled_time": self.scheduled_time.isoformat(),
            "input": self.input,
        }


class RedriveStart(BaseModel):
    """Run again only the items of an earlier run that did not succeed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redrive: str = Field(min_length=1, description="The run id.")

    def describe(self) -> dict[str, Any]:
        return {"type": "redrive", "run_id": self.redrive}


Trigger = UploadTrigger | ManualStart | ScheduledStart | RedriveStart


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(input)"


def _upload(event: S3EventNotificationEventBridgeModel) -> UploadTrigger:
    bucket, obj = event.detail.bucket.name, event.detail.object
    key = unquote_plus(obj.key)
    identity = upload_identity(
        bucket, key, version_id=obj.version_id, sequencer=obj.sequencer, etag=obj.etag
    )
    if identity is None:
        raise InvalidInputError(
            "detail.object.sequencer",
            "an upload to an unversioned bucket is named by its event's sequencer",
        )
    return UploadTrigger(
        bucket=bucket,
        key=key,
        version_id=obj.version_id,
        etag=obj.etag,
        sequencer=obj.sequencer,
        size=int(obj.size or 0),
        time=event.time,
        identity=identity,
    )


def parse_trigger(event: Any) -> Trigger:
    """Recognise the execution input; an invalid one names the offending field."""
    if not isinstance(event, dict):
        raise InvalidInputError("(input)", "the execution input must be a JSON object")
    try:
        if event.get("source") == S3_SOURCE:
            return _upload(S3EventNotificationEventBridgeModel.model_validate(event))
        if event.get("source") == SCHEDULE_SOURCE:
            return ScheduledStart.model_validate(event)
        if "redrive" in event:
            return RedriveStart.model_validate(event)
        return ManualStart.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(_field_path(tuple(first["loc"])), first["msg"]) from exc


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
