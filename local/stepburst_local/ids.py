"""Random identifiers without a system call.

``uuid.uuid4`` reads ``os.urandom``, which releases the GIL: with a Map's children running on
many threads, getting it back cost up to a thread switch interval (5 ms) per identifier, and
each child makes several (its name, its status events, the Lambda request id, botocore's
invocation id per call). These identifiers name things; they guard nothing, so a seeded
pseudo-random generator is enough.
"""

from __future__ import annotations

import random
import uuid

_random = random.Random()  # seeded from os.urandom, once


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, like ``uuid.uuid4()``."""
    return uuid.UUID(int=_random.getrandbits(128), version=4)


class UuidModule:
    """What a module that called ``uuid.uuid4()`` sees in place of the ``uuid`` module."""

    UUID = uuid.UUID
    uuid4 = staticmethod(uuid4)
