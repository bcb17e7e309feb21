"""Every checkov finding the template does not fix is skipped in its resource, with a reason.

`make security` runs checkov and fails on any finding that is not skipped; this keeps the skips
themselves honest: each names one real check, once, and says why it does not apply.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.template

CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")
# A reason is a sentence, not a placeholder such as "ok" or "n/a".
MIN_REASON_WORDS = 8


def skips(template: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every skip entry of every resource, with the resource's logical id."""
    found: list[tuple[str, Any]] = []
    for logical_id, resource in template["Resources"].items():
        checkov = resource.get("Metadata", {}).get("checkov")
        if checkov is None:
            continue
        assert isinstance(checkov, dict), f"{logical_id}: Metadata.checkov must be a mapping"
        assert set(checkov) == {"skip"}, f"{logical_id}: Metadata.checkov holds only skip"
        assert isinstance(checkov["skip"], list), f"{logical_id}: checkov skip must be a list"
        found.extend((logical_id, entry) for entry in checkov["skip"])
    return found


def test_the_template_has_skips_to_check(template: dict[str, Any]) -> None:
    assert skips(template), "no checkov skips found: did the Metadata layout change?"


def test_every_skip_names_one_check_and_says_why(template: dict[str, Any]) -> None:
    problems = []
    for logical_id, entry in skips(template):
        if not isinstance(entry, dict) or set(entry) != {"id", "comment"}:
            problems.append(f"{logical_id}: {entry!r} is not {{id, comment}}")
            continue
        if not CHECK_ID.fullmatch(str(entry["id"])):
            problems.append(f"{logical_id}: {entry['id']!r} is not a checkov AWS check id")
        reason = str(entry["comment"] or "").strip()
        if len(reason.split()) < MIN_REASON_WORDS:
            problems.append(f"{logical_id} {entry['id']}: the comment must say why ({reason!r})")

    assert problems == []


def test_no_check_is_skipped_twice_on_one_resource(template: dict[str, Any]) -> None:
    seen: set[tuple[str, str]] = set()
    duplicates = []
    for logical_id, entry in skips(template):
        key = (logical_id, str(entry.get("id") if isinstance(entry, dict) else entry))
        if key in seen:
            duplicates.append(key)
        seen.add(key)

    assert duplicates == []
