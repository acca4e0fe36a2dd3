"""Hiding secrets in text the bot prints: URLs, error messages and log lines.

A base URL may carry credentials (`http://user:password@host/v1`) or a key in its query
(`?key=...`); the bot shows where a service lives with `redacted_url`, never the URL itself.
Discord's own debug lines carry webhook and interaction tokens, masked by `mask_secret_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "***"
UNREADABLE_URL = "(a URL that cannot be read)"
# A query value shorter than this (`?stream=1`) is no key; masking it everywhere would garble logs.
MIN_QUERY_VALUE_SECRET = 6

# `scheme://user:password@` anywhere in a text: the credentials part, up to the host.
URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]+@")
# The token after an id in Discord's webhook and interaction routes (REST paths and full URLs).
ROUTE_TOKEN = re.compile(r"(?P<route>/(?:webhooks|interactions)/\d+/)[^/\s?'\"]+")
# `'token': '...'` in the payloads discord.py logs at DEBUG (a new webhook, an INTERACTION_CREATE).
PAYLOAD_TOKEN = re.compile(r"(?P<key>['\"]token['\"]\s*:\s*['\"])[^'\"]+")


def redacted_url(url: str) -> str:
    """`url` with any credentials, query and fragment masked: `http://***@host/v1?***`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is what validates it (a bad port raises ValueError)
    except ValueError:
        return UNREADABLE_URL
    if not parts.netloc:
        # No `scheme://host`: there is no telling credentials from the rest, so show only a clean text.
        return url if not re.search(r"[@?#]", url) else UNREADABLE_URL
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", MASK if parts.fragment else ""))


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that must never be repeated: its password, its query and each value in it.

    The values count alone too: an HTTP library may re-encode the query it sends, and log that.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    secrets = [parts.password or "", unquote(parts.password or ""), parts.query]
    secrets += [value for _, value in parse_qsl(parts.query) if len(value) >= MIN_QUERY_VALUE_SECRET]
    return sorted({secret for secret in secrets if secret}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every known secret replaced by `[redacted]`, the longest first (one may contain another)."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def mask_secret_patterns(text: str) -> str:
    """`text` with URL credentials and Discord's webhook and interaction tokens masked."""
    text = URL_CREDENTIALS.sub(rf"\g<scheme>{MASK}@", text)
    text = ROUTE_TOKEN.sub(rf"\g<route>{MASK}", text)
    return PAYLOAD_TOKEN.sub(rf"\g<key>{MASK}", text)
