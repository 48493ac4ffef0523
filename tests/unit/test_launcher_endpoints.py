"""`autoloader up` runs a trial stack on one machine: sources' S3 endpoints may reach loopback there."""

from __future__ import annotations

from autoloader.stack.launcher import ENDPOINT_ALLOWLIST_VARIABLE, LOCAL_ENDPOINTS, endpoint_allowlist_env
from services.shared.outbound_http import AddressPolicy, check_url


def test_loopback_is_allowed_when_the_user_set_nothing() -> None:
    env = endpoint_allowlist_env({})
    assert env == {ENDPOINT_ALLOWLIST_VARIABLE: LOCAL_ENDPOINTS}
    policy = AddressPolicy.from_allowlist(LOCAL_ENDPOINTS.split(","))
    assert check_url("http://127.0.0.1:9000", policy) is None
    assert check_url("http://[::1]:9000", policy) is None
    assert check_url("http://10.0.0.5:9000", policy) is not None  # only loopback, not the whole network


def test_the_users_setting_wins_even_when_empty() -> None:
    assert endpoint_allowlist_env({ENDPOINT_ALLOWLIST_VARIABLE: ""}) == {}
    assert endpoint_allowlist_env({ENDPOINT_ALLOWLIST_VARIABLE: "10.0.0.0/8"}) == {}
