"""EventBridge: put events on a bus."""

from __future__ import annotations

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import AwsError, ResourceNotFoundError, ThrottledError

# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
_CODES: Codes = {"ResourceNotFoundException": ResourceNotFoundError}


def put_event(bus: str, source: str, detail_type: str, detail: str) -> None:
    """Put one event whose detail is the JSON text ``detail``.

    PutEvents answers 200 even when it rejects an entry; a rejected entry raises here too.
    """
    doing = f"putting a {detail_type!r} event on bus {bus}"
    with translated(doing, _CODES):
        response = aws.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": detail,
                    "EventBusName": bus,
                }
            ]
        )
    if not response.get("FailedEntryCount"):
        return
    (entry,) = response["Entries"]
    code = entry.get("ErrorCode", "")
    message = f"{doing}: {code}: {entry.get('ErrorMessage', '')}"
    # An entry's codes are PutEvents' own; throttling is the one that waiting fixes.
    if code == "ThrottlingException":
        raise ThrottledError(message, code=code)
    raise AwsError(message, code=code)
