"""botocore's retry waits run on the engine's clock: they scale with its ``time_scale``.

The product's clients retry as :mod:`stepburst.aws` configures them (adaptive mode, 10
attempts). Between two attempts botocore waits ``rand(0, 1) * min(base * 2 ** attempt, 20)``
seconds, and in adaptive mode a client that was throttled also waits for its client-side rate
limiter's tokens ("Retry behavior", AWS SDKs and Tools Reference Guide:
https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). A fault that
outlasts those retries (ten throttles, then the state's Retry, then again) costs minutes of
real sleeping. Inside the engine those waits scale with ``time_scale``, as the state machine's
Retry intervals and Wait states do, so a test exercises the very retry configuration the
stack deploys, attempt for attempt, only faster. Waits after a request that got no answer
(a connection error) stay real: the engine's own server being slow is not on its clock.

Chosen over honouring ``AWS_MAX_ATTEMPTS`` in the test engine: fewer attempts there would
test another retry configuration than the one deployed. With no engine bound (scale 1) the
waits are botocore's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.retries.bucket import Clock, TokenBucket
from botocore.retries.standard import ExponentialBackoff

from stepburst_local.binding import time_scale
from stepburst_local.patching import Hook, patch

sdk_retry_time = Hook(
    "sdk_retry_time",
    why="botocore waits real seconds between the attempts of a retried call (exponential "
    "backoff up to 20 s) and, in adaptive mode, for its rate limiter's tokens; the engine "
    "scales those waits by its time_scale, as it does the state machine's Retry intervals.",
    upstream="no upstream issue found (a feature of the engine: botocore behaves as on AWS)",
)


@patch(sdk_retry_time, ExponentialBackoff, "delay_amount")
def _delay_amount(original: Callable[[Any, Any], float], self: Any, context: Any) -> float:
    if context.caught_exception is not None:
        # No answer at all (a connection refused, timed out or dropped): the engine's server
        # was busy in real time, and only real time lets it catch up.
        return original(self, context)
    return original(self, context) * time_scale()


class _EngineClock:
    """Seconds that pass ``1 / time_scale`` times as fast as real ones; never backwards, even
    when engines of different scales follow one another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._real = time.monotonic()
        self._seconds = time.time()

    def now(self) -> float:
        with self._lock:
            real = time.monotonic()
            self._seconds += (real - self._real) / time_scale()
            self._real = real
            return self._seconds


_clock = _EngineClock()


@patch(sdk_retry_time, Clock, "current_time", wraps=False)
def _current_time(self: Any) -> float:
    """Replaces botocore's ``time.time()``: the adaptive rate limiter measures its send rate and
    refills its tokens on the engine's clock, so its rates are per engine second."""
    return _clock.now()


@patch(sdk_retry_time, TokenBucket, "_sleep_amount")
def _sleep_amount(original: Callable[[Any, float], float], self: Any, amount: float) -> float:
    # The bucket waits on a condition for this long (real seconds) before it refills.
    return original(self, amount) * time_scale()


HOOKS = (sdk_retry_time,)
