"""A job's secrets at run time: read once per unit, given to items, kept out of everything shown.

Each secret is an environment variable of the job's own naming. A variable already set is used
as it is: ECS and Batch put a task definition's ``secrets`` in the container's environment, and
a second read would only cost time and a permission. Otherwise the value is read from Secrets
Manager or SSM (:mod:`stepburst.adapters.secrets`).

Whatever stepburst records or logs about an item (output tails, causes, results) goes through
:meth:`SecretValues.redact` first, so a value an item prints or raises is kept as ``***``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from stepburst.adapters.secrets import read_secret

REDACTED = "***"

# One process runs one item at a time on Lambda and in the worker; the local engine runs many
# handlers in one process, so changes to os.environ are made one at a time.
_environ_lock = threading.RLock()


class SecretValues:
    """Secret values by name. Its repr names the secrets and never shows a value."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        # Longest first, so a value that contains another is replaced whole.
        self._ordered = sorted({value for value in values.values() if value}, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"SecretValues({sorted(self._values)})"

    def __bool__(self) -> bool:
        return bool(self._values)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._values)

    @property
    def longest_bytes(self) -> int:
        """The UTF-8 length of the longest value (0 without secrets)."""
        return max((len(value.encode()) for value in self._ordered), default=0)

    def as_environment(self) -> dict[str, str]:
        return dict(self._values)

    def redact(self, text: str) -> str:
        for value in self._ordered:
            text = text.replace(value, REDACTED)
        return text

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value with every string in it redacted (keys too)."""
        if not self._ordered:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value

    @contextmanager
    def in_environment(self) -> Iterator[None]:
        """os.environ holds the secrets for the block (an item function reads them there)."""
        if not self._values:
            yield
            return
        with _environ_lock:
            saved = {name: os.environ.get(name) for name in self._values}
            os.environ.update(self._values)
            try:
                yield
            finally:
                for name, previous in saved.items():
                    if previous is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = previous


NO_SECRETS = SecretValues({})


def read_secrets(
    sources: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> SecretValues:
    """Each secret's value: from the environment when set there, else from where it is kept."""
    environment = os.environ if environ is None else environ
    values = {}
    for name, source in sources.items():
        given = environment.get(name)
        values[name] = given if given is not None else read_secret(source)
    return SecretValues(values)
