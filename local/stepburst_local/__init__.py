"""The embedded local engine: template.yaml and the state machine on an in-memory AWS (moto).

A package of its own, outside the product: the Lambda layer and the worker image never carry
it. It installs with the ``local`` extra (``pip install 'stepburst[local]'``), which brings
moto. See :class:`stepburst_local.engine.LocalEngine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepburst_local.engine import ExecutionTimeoutError, LocalEngine

__all__ = ["ExecutionTimeoutError", "LocalEngine"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the sample generator and the CLI commands import without moto.
    if name in __all__:
        from stepburst_local import engine

        return getattr(engine, name)
    raise AttributeError(name)
