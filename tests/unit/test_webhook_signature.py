from __future__ import annotations

import hashlib
import hmac

import pytest

from services.shared.webhook_signature import SIGNATURE_HEADER, backoff_seconds, sign, verify

SECRET = "whsec_test"
BODY = b'{"event":"run.completed","id":"r-1"}'
T = 1_700_000_000


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "Autoloader-Signature"


def test_sign_matches_an_independent_hmac() -> None:
    expected = hmac.new(b"whsec_test", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t=1700000000,v1={expected}"


def test_round_trip() -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T)
    assert verify(SECRET, sign(SECRET, T, b""), b"", now=T + 10)


def test_tampered_body_fails() -> None:
    assert not verify(SECRET, sign(SECRET, T, BODY), BODY.replace(b"r-1", b"r-2"), now=T)


def test_wrong_secret_fails() -> None:
    assert not verify("other", sign(SECRET, T, BODY), BODY, now=T)


def test_timestamp_is_signed() -> None:
    # Replaying an old signature with a fresh timestamp must not work.
    signature = sign(SECRET, T, BODY).split(",v1=")[1]
    assert not verify(SECRET, f"t={T + 1000},v1={signature}", BODY, now=T + 1000)


@pytest.mark.parametrize(("now", "valid"), [(T + 300, True), (T + 301, False), (T - 300, True), (T - 301, False)])
def test_stale_and_future_timestamps_fail_outside_tolerance(now: int, valid: bool) -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=now) is valid


def test_tolerance_is_configurable() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY, now=T + 61, tolerance_seconds=60)
    assert verify(SECRET, header, BODY, now=T + 3600, tolerance_seconds=3600)


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    old = sign("old-secret", T, BODY).split(",v1=")[1]
    new = sign(SECRET, T, BODY).split(",v1=")[1]
    header = f"t={T},v1={old},v1={new},v0=legacy"
    assert verify(SECRET, header, BODY, now=T)
    assert verify("old-secret", header, BODY, now=T)
    assert not verify("third", header, BODY, now=T)


def test_spaces_after_commas_are_tolerated() -> None:
    assert verify(SECRET, sign(SECRET, T, BODY).replace(",", ", "), BODY, now=T)


GOOD = sign(SECRET, T, BODY)
ARABIC_INDIC_T = "\u0661\u0667" + "\u0660" * 8  # 1700000000 in Arabic-Indic digits
DIGEST = GOOD.split(",v1=")[1]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        DIGEST,
        f"v1={DIGEST}",  # no timestamp
        f"t={T}",  # no signature
        f"t={T},v1=",
        f"t=,v1={DIGEST}",
        f"t=abc,v1={DIGEST}",
        f"t=-{T},v1={DIGEST}",
        f"t={T}.0,v1={DIGEST}",
        f"t={T},t={T},v1={DIGEST}",  # ambiguous timestamp
        f"t={T},v1={DIGEST},junk",
        f"t={T},v1={DIGEST[:-1]}",
        f"t={T},v1={DIGEST.upper()}",
        f"t={T},v1=é{DIGEST[1:]}",  # non-ASCII must not crash compare_digest
        f"t={ARABIC_INDIC_T},v1={DIGEST}",  # digits to str.isdigit, but not ASCII
    ],
)
def test_malformed_headers_fail(header: str) -> None:
    assert verify(SECRET, GOOD, BODY, now=T)  # the same inputs otherwise verify
    assert verify(SECRET, header, BODY, now=T) is False


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (8, 256.0), (9, 300.0), (50, 300.0)]
)
def test_backoff_doubles_up_to_the_cap(attempt: int, seconds: float) -> None:
    assert backoff_seconds(attempt) == seconds


def test_backoff_parameters() -> None:
    assert [backoff_seconds(n, base=1.0, cap=10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_seconds(3, base=0.5) == 2.0


def test_backoff_is_deterministic_and_survives_huge_attempts() -> None:
    assert backoff_seconds(5) == backoff_seconds(5)
    assert backoff_seconds(10_000) == 300.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_rejects_attempts_before_the_first(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_seconds(attempt)
