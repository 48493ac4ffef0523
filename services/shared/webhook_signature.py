"""Signing of webhook deliveries, and the retry schedule for failed ones.

The signature header reads `t=<unix seconds>,v1=<hex HMAC-SHA256>`. The timestamp is part of the
signed message so that a captured delivery cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Autoloader-Signature"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The SIGNATURE_HEADER value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_seconds: int = 300) -> bool:
    """True if `header` is a valid signature of `body` made within `tolerance_seconds` of `now`.

    Several v1 values are accepted (any may match) so a sender can sign with an old and a new
    secret while rotating; unknown keys are ignored so that new schemes can be added later.
    """
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not signatures:
        return False
    text = timestamps[0]
    if not (text.isascii() and text.isdigit()):
        return False
    timestamp = int(text)
    if abs(now - timestamp) > tolerance_seconds:  # too old, or from too far in the future
        return False
    expected = _digest(secret, timestamp, body).encode()
    # Compare bytes: compare_digest rejects non-ASCII str, and the header is untrusted input.
    # Check every candidate so the time taken does not reveal which one matched.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in signatures]
    return any(matches)


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Delay after failed attempt number `attempt` (1-based): base, 2*base, 4*base, ... up to cap.

    Deterministic (no jitter) so schedules are predictable and testable.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    try:
        delay = base * 2.0 ** (attempt - 1)
    except OverflowError:  # 2.0 ** 1024 and beyond: far past any cap
        return cap
    return min(delay, cap)
