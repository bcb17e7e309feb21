"""The SAM translation is kept between processes, keyed by what it was made from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepburst_local import sam

pytestmark = pytest.mark.engine

TEMPLATE = {
    "Transform": sam.SAM_TRANSFORM,
    "Resources": {
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "functions/x", "Handler": "app.h", "Runtime": "python3.11"},
        }
    },
}


def _translate(template: dict[str, Any]) -> sam.Translation:
    return sam.translate(
        template, parameters={}, region="us-east-1", account_id="123456789012", stack_name="s"
    )


def test_a_later_process_reads_the_translation_instead_of_translating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sam.CACHE_ENV, str(tmp_path))
    sam._translate_cached.cache_clear()
    first = _translate(TEMPLATE)
    assert list((tmp_path / "sam").glob("*.json"))

    sam._translate_cached.cache_clear()  # as in a new process

    def refuse(*args: Any) -> sam.Translation:
        raise AssertionError("translated again")

    monkeypatch.setattr(sam, "_translate", refuse)
    again = _translate(TEMPLATE)
    assert again == first
    assert again.local_path(again.template["Resources"]["Fn"]["Properties"]["Code"]) == (
        "functions/x"
    )
    sam._translate_cached.cache_clear()


def test_another_template_or_an_unreadable_file_is_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sam.CACHE_ENV, str(tmp_path))
    sam._translate_cached.cache_clear()
    _translate(TEMPLATE)
    for stored in (tmp_path / "sam").glob("*.json"):
        stored.write_text("{not json", encoding="utf-8")
    sam._translate_cached.cache_clear()
    changed = {**TEMPLATE, "Resources": {"Other": TEMPLATE["Resources"]["Fn"]}}

    assert "Other" in _translate(changed).template["Resources"]
    assert "Fn" in _translate(TEMPLATE).template["Resources"]
    assert len(list((tmp_path / "sam").glob("*.json"))) == 2
    sam._translate_cached.cache_clear()


def test_an_empty_setting_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sam.CACHE_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    sam._translate_cached.cache_clear()

    _translate(TEMPLATE)

    assert not any(tmp_path.rglob("*.json"))
    sam._translate_cached.cache_clear()
