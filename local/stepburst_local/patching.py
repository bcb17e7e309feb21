"""Declared patches of someone else's code: each names its hook and its target, and is checked
before anything is applied.

A hook of the local engine changes moto where moto falls short of AWS. Every change it makes
is declared with :func:`patch` (a function that wraps or replaces a callable) or
:func:`patch_value` (a module or class constant), never assigned by hand: assigning to an
attribute an upgrade renamed creates a new attribute, and the hook silently does nothing.

:func:`apply_hooks` checks every declared target before it applies any: the attribute still
exists, a callable still takes the parameters the replacement was written against (by name and
order, and no new required one), a constant still holds the value it was written against, and
each module that imported a patched function by name still holds that function. When an
upgrade moved something, the engine does not start: :class:`PatchTargetMovedError` names each
hook and what moved.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_ANY_VALUE: Any = object()
"""A value patch whose current value is not checked."""

_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class PatchTargetMovedError(RuntimeError):
    """What a hook patches is gone or changed (usually: moto was upgraded); names both."""


@dataclass
class Hook:
    """One adaptation: why it exists, the upstream issue it covers, and its patches.

    ``upstream`` names the issue (``getmoto/moto#10076``) or says ``no upstream issue found``.
    """

    name: str
    why: str
    upstream: str
    patches: list[Patch] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"hook {self.name!r}: {problem}" for p in self.patches for problem in p.problems()]

    def apply(self) -> None:
        for declared in self.patches:
            declared.apply()


@dataclass
class Patch:
    """A declared change to ``owner.attribute`` (a class or module of the patched library)."""

    owner: Any
    attribute: str
    replacement: Callable[..., Any] | None = None
    wraps: bool = False
    value: Any = None
    was: Any = _ANY_VALUE
    also_bound_in: tuple[ModuleType, ...] = ()
    original: Any = None
    """What the target held before the patch was applied."""

    @property
    def target(self) -> str:
        return f"{_qualified(self.owner)}.{self.attribute}"

    # -- checks ------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        try:
            current = inspect.getattr_static(self.owner, self.attribute)
        except AttributeError:
            return [f"{self.target} no longer exists"]
        if self.replacement is None:
            return self._value_problems(current)
        function = _unwrapped(current)
        if not callable(function):
            return [f"{self.target} is no longer callable"]
        problems = self._signature_problems(function)
        for module in self.also_bound_in:
            if getattr(module, self.attribute, None) is not function:
                problems.append(
                    f"{module.__name__} no longer imports {self.attribute} from "
                    f"{_qualified(self.owner)} (update the list of modules that bind it)"
                )
        return problems

    def _value_problems(self, current: Any) -> list[str]:
        if self.was is _ANY_VALUE or current is self.was or current == self.was:
            return []
        return [f"{self.target} is {current!r}; the hook was written for {self.was!r}"]

    def _signature_problems(self, function: Callable[..., Any]) -> list[str]:
        assert self.replacement is not None
        expected = list(inspect.signature(self.replacement).parameters.values())
        if self.wraps:
            expected = expected[1:]  # the first parameter receives the original
        try:
            actual = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            return []  # a builtin without a signature: nothing to compare
        expected_names = [p.name for p in expected if p.kind not in _VARIADIC]
        actual_names = [p.name for p in actual if p.kind not in _VARIADIC]
        takes_anything = any(p.kind in _VARIADIC for p in expected)
        problems = []
        missing = [name for name in expected_names if name not in actual_names]
        if missing:
            problems.append(
                f"{self.target} no longer takes {', '.join(missing)} "
                f"(it takes {', '.join(actual_names) or 'nothing'})"
            )
        required = [
            p.name
            for p in actual
            if p.kind not in _VARIADIC
            and p.default is inspect.Parameter.empty
            and p.name not in expected_names
        ]
        if required and not takes_anything:
            problems.append(f"{self.target} now requires {', '.join(required)}")
        positional = [p.name for p in expected if p.kind in _PLAIN and p.name in actual_names]
        in_target = [p.name for p in actual if p.kind in _PLAIN and p.name in positional]
        if not missing and positional != in_target:
            problems.append(
                f"{self.target} takes {', '.join(in_target)} in a new order "
                f"(the hook expects {', '.join(positional)})"
            )
        return problems

    # -- applying ----------------------------------------------------------------------------

    def apply(self) -> None:
        current = inspect.getattr_static(self.owner, self.attribute)
        if self.replacement is None:
            self.original = current
            setattr(self.owner, self.attribute, self.value)
            return
        original = self.original = _unwrapped(current)
        new = _bound_to(original, self.replacement) if self.wraps else self.replacement
        setattr(self.owner, self.attribute, _rewrapped(current, new))
        for module in self.also_bound_in:
            setattr(module, self.attribute, new)


def patch(
    hook: Hook,
    owner: Any,
    attribute: str,
    *,
    wraps: bool = True,
    also_bound_in: Sequence[ModuleType] = (),
) -> Callable[[F], F]:
    """Declare that ``hook`` changes the callable ``owner.attribute`` to the decorated function.

    With ``wraps=True`` (the default) the function receives the original first and delegates
    to it; ``wraps=False`` replaces the original (say in the function's docstring why it cannot
    delegate). ``also_bound_in`` lists the modules that imported the function by name
    (``from x import f``): each gets the new function too.
    """

    def declare(function: F) -> F:
        hook.patches.append(
            Patch(
                owner=owner,
                attribute=attribute,
                replacement=function,
                wraps=wraps,
                also_bound_in=tuple(also_bound_in),
            )
        )
        return function

    return declare


def patch_value(hook: Hook, owner: Any, attribute: str, value: Any, *, was: Any) -> None:
    """Declare that ``hook`` sets ``owner.attribute`` (which holds ``was`` today) to ``value``."""
    hook.patches.append(Patch(owner=owner, attribute=attribute, value=value, was=was))


def check_hooks(hooks: Iterable[Hook]) -> None:
    """Raise :class:`PatchTargetMovedError` listing every hook whose targets moved."""
    problems = [problem for hook in hooks for problem in hook.problems()]
    if problems:
        raise PatchTargetMovedError(
            "the local engine's patches no longer fit the installed moto:\n  "
            + "\n  ".join(problems)
        )


def apply_hooks(hooks: Sequence[Hook]) -> None:
    """Check every hook's targets, then apply the hooks in order (nothing if any moved)."""
    check_hooks(hooks)
    for hook in hooks:
        hook.apply()


def _qualified(owner: Any) -> str:
    if isinstance(owner, ModuleType):
        return owner.__name__
    return f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', owner)}"


def _unwrapped(attribute: Any) -> Any:
    if isinstance(attribute, staticmethod | classmethod):
        return attribute.__func__
    return attribute


def _rewrapped(current: Any, new: Callable[..., Any]) -> Any:
    if isinstance(current, staticmethod):
        return staticmethod(new)
    if isinstance(current, classmethod):
        return classmethod(new)
    return new


def _bound_to(original: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delegating(*args: Any, **kwargs: Any) -> Any:
        return wrapper(original, *args, **kwargs)

    return delegating
