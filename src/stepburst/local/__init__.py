"""The embedded local engine: template.yaml and the state machine on an in-memory AWS (moto).

See :class:`stepburst.local.engine.LocalEngine`.
"""

from stepburst.local.engine import ExecutionTimeoutError, LocalEngine

__all__ = ["ExecutionTimeoutError", "LocalEngine"]
