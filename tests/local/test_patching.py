"""Declared patches: a target an upgrade moved or changed stops the engine's start, by name."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from stepburst_local.patching import Hook, PatchTargetMovedError, apply_hooks, patch, patch_value

pytestmark = pytest.mark.engine


def _library() -> types.ModuleType:
    """A stand-in for moto: a module with a class, a function another module imported by name,
    and a constant."""
    library = types.ModuleType("fake_moto")

    class Backend:
        def invoke(self, function_name: str, payload: bytes) -> str:
            return f"{function_name}:{payload.decode()}"

        @staticmethod
        def limit(size: int) -> bool:
            return size < 10

    def extract(path: str, data: Any) -> Any:
        return data[path]

    library.Backend = Backend  # type: ignore[attr-defined]
    library.extract = extract  # type: ignore[attr-defined]
    library.DELAY = 0.5  # type: ignore[attr-defined]
    return library


def test_a_wrapper_delegates_to_the_original_and_importers_get_it_too() -> None:
    library = _library()
    importer = types.ModuleType("fake_importer")
    importer.extract = library.extract  # type: ignore[attr-defined]
    hook = Hook("fake", why="a test", upstream="no upstream issue found")

    @patch(hook, library.Backend, "invoke")
    def invoke(original: Callable[..., str], self: Any, function_name: str, payload: bytes) -> str:
        return original(self, function_name.upper(), payload)

    @patch(hook, library.Backend, "limit")
    def limit(original: Callable[[int], bool], size: int) -> bool:
        return original(size - 1)

    @patch(hook, library, "extract", wraps=False, also_bound_in=[importer])
    def extract(path: str, data: Any) -> Any:
        return data.get(path)

    patch_value(hook, library, "DELAY", 0.02, was=0.5)

    apply_hooks([hook])

    assert library.Backend().invoke("fn", b"x") == "FN:x"
    assert library.Backend.limit(10) is True  # still a staticmethod, and it delegates
    assert importer.extract("missing", {}) is None
    assert library.DELAY == 0.02


def test_a_missing_target_fails_naming_the_hook_and_the_target() -> None:
    library = _library()
    hook = Hook("lambda_invoke", why="a test", upstream="no upstream issue found")

    @patch(hook, library.Backend, "invoke_function")
    def invoke(original: Callable[..., str], self: Any, function_name: str) -> str:
        return original(self, function_name)

    with pytest.raises(PatchTargetMovedError) as raised:
        apply_hooks([hook])

    message = str(raised.value)
    assert "hook 'lambda_invoke'" in message
    assert "Backend.invoke_function no longer exists" in message


def test_a_changed_signature_fails_naming_the_parameter_that_moved() -> None:
    library = _library()
    hook = Hook("lambda_invoke", why="a test", upstream="no upstream issue found")

    @patch(hook, library.Backend, "invoke")
    def invoke(
        original: Callable[..., str], self: Any, function_name: str, body: bytes
    ) -> str:  # written for a version that called it ``body``
        return original(self, function_name, body)

    with pytest.raises(PatchTargetMovedError) as raised:
        apply_hooks([hook])

    message = str(raised.value)
    assert "hook 'lambda_invoke'" in message
    assert "Backend.invoke no longer takes body (it takes self, function_name, payload)" in message


def test_a_new_required_parameter_or_a_new_order_fails() -> None:
    library = _library()
    hook = Hook("ordering", why="a test", upstream="no upstream issue found")

    @patch(hook, library.Backend, "invoke")
    def swapped(original: Callable[..., str], self: Any, payload: bytes, function_name: str) -> str:
        return original(self, function_name, payload)

    @patch(hook, library.Backend, "limit")
    def no_size(original: Callable[..., bool]) -> bool:
        return original(0)

    with pytest.raises(PatchTargetMovedError) as raised:
        apply_hooks([hook])

    message = str(raised.value)
    assert "Backend.invoke takes self, function_name, payload in a new order" in message
    assert "Backend.limit now requires size" in message


def test_nothing_is_applied_when_any_target_moved() -> None:
    library = _library()
    importer = types.ModuleType("fake_importer")
    hook = Hook("partial", why="a test", upstream="no upstream issue found")
    patch_value(hook, library, "DELAY", 0.02, was=0.5)

    @patch(hook, library, "extract", wraps=False, also_bound_in=[importer])
    def extract(path: str, data: Any) -> Any:
        return None

    patch_value(hook, library, "RETRIES", 3, was=5)

    with pytest.raises(PatchTargetMovedError) as raised:
        apply_hooks([hook])

    message = str(raised.value)
    assert "fake_importer no longer imports extract" in message
    assert "fake_moto.RETRIES no longer exists" in message
    assert library.DELAY == 0.5


def test_a_constant_with_another_value_fails() -> None:
    library = _library()
    hook = Hook("sync_poll", why="a test", upstream="no upstream issue found")
    patch_value(hook, library, "DELAY", 0.02, was=1.0)

    with pytest.raises(PatchTargetMovedError, match=r"fake_moto.DELAY is 0.5; the hook was"):
        apply_hooks([hook])
