"""A source's custom S3 endpoint, checked right before the executor (boto3 or Spark) connects to it.

Control checked the endpoint when the ingestion was saved; this second check catches DNS answers that
changed since, ingestions saved before the check existed, and an executor allowlist narrower than
control's. boto3 and Spark resolve the host again themselves, so the check runs as late as possible.
"""

from __future__ import annotations

from services.shared.errors import FailedPrecondition
from services.shared.outbound_http import AddressPolicy, Resolver, check_url, resolve_host

ALLOWLIST_VARIABLE = "AUTOLOADER_ENDPOINT_ALLOWLIST"


class EndpointRefused(FailedPrecondition):
    """The source's endpoint resolves to an address the executor may not reach."""


def check_source_endpoint(endpoint_url: str | None, policy: AddressPolicy, *, resolve: Resolver = resolve_host) -> None:
    """Raise EndpointRefused unless `endpoint_url` may be contacted; no endpoint means AWS's own S3."""
    if not endpoint_url:
        return
    refusal = check_url(endpoint_url, policy, resolve=resolve)
    if refusal:
        raise EndpointRefused(
            f"source.endpoint_url {endpoint_url} is not allowed: {refusal}"
            f" (internal addresses the executor may reach are listed in {ALLOWLIST_VARIABLE})"
        )
