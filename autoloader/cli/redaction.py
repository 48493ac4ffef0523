"""Masking secrets before a setting is shown: whole secrets, passwords inside URLs, secret-looking Spark keys."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "****"
# A query parameter or Spark setting whose name holds one of these carries a secret.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential", "auth")


def secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_url(value: str) -> str:
    """`scheme://user:password@host/db?password=x` → `scheme://user:****@host/db?password=****`; text that is
    not a URL is returned as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a broken [IPv6] host: cannot tell where a password would end
        return MASK if "@" in value else value
    if not parts.scheme or not parts.netloc:
        return value
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}" if at and ":" in userinfo else parts.netloc
    query = "&".join(_redact_parameter(p) for p in parts.query.split("&")) if parts.query else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    return f"{name}={MASK}" if equals and secret_name(name) else parameter


def redact_secret(value: str) -> str:
    """A secret's value: a URL keeps all but its password (which database it names is worth seeing), anything
    else is masked whole. An empty secret stays empty: it hides nothing and shows it is unset."""
    if not value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return MASK
    return redact_url(value) if parts.scheme and parts.netloc else MASK


def redact_mapping(values: dict[str, str]) -> dict[str, str]:
    """Spark settings and the like: secret-looking keys masked, passwords in URL values masked."""
    return {key: (MASK if secret_name(key) and value else redact_url(value)) for key, value in values.items()}
