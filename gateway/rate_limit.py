"""Per-caller token buckets for the gateway: who may send how many requests per second."""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from services.shared.auth import secret_from_authorization
from services.shared.errors import Unauthenticated

# Seconds from an arbitrary start that never go backwards: a wall clock stepped back by NTP would lock
# callers out, one stepped forward would hand out a free burst.
MonotonicClock = Callable[[], float]

DEFAULT_MAX_CALLERS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller key: `burst` requests at once, refilled at `rate_per_second`.

    Not locked: every call runs on the event loop without awaiting, so two requests never interleave in it.
    A rate of 0 turns the limit off.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: MonotonicClock = time.monotonic,
        max_callers: int = DEFAULT_MAX_CALLERS,
    ) -> None:
        if not (math.isfinite(rate_per_second) and rate_per_second >= 0):
            raise ValueError("rate_per_second must be 0 (off) or a finite positive number")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_callers < 1:
            raise ValueError("max_callers must be at least 1")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._max_callers = max_callers
        # Least recently seen first, so idle callers are found at the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate_per_second > 0

    @property
    def tracked_callers(self) -> int:
        return len(self._buckets)

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 if the request may go on, else the seconds until a token is there."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        self._drop_idle(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            while len(self._buckets) >= self._max_callers:
                self._buckets.popitem(last=False)
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[key] = bucket
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_second)
            bucket.updated = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_second

    def _drop_idle(self, now: float) -> None:
        # Memory must stay bounded whatever the number of distinct callers (every made-up token is a new key).
        # A bucket idle long enough to refill completely is the same as a fresh one, so dropping it loses
        # nothing. Past max_callers, acquire drops the least recently seen too: at worst a fresh burst for it.
        refill_seconds = self.burst / self.rate_per_second
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < refill_seconds:
                break
            del self._buckets[key]


def retry_after_seconds(wait: float) -> int:
    """The Retry-After header value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


def caller_key(request: Request) -> str:
    """Whom a request is counted against: its bearer token, else its client address.

    Tokens are random secrets with no id inside, so the key is the token's SHA-256: the token itself is never
    kept. The token is parsed first so spellings of one header ("bearer", extra spaces) share a bucket.
    """
    header = request.headers.get("authorization")
    if header is not None:
        try:
            secret = secret_from_authorization(header)
        except Unauthenticated:
            pass  # answered 401 by the backend; counted against the address meanwhile
        else:
            return "token:" + hashlib.sha256(secret.encode()).hexdigest()
    client = request.client
    return "ip:" + (client.host if client is not None else "unknown")
