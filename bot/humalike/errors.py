"""Exceptions for every way a Humalike call can go wrong.

`FinalError`s are answers about the request itself (bad token, no credits,
invalid input): retrying the same request cannot help. `TransientError`s are
about the moment (outage, rate limit, network): a poll retries them with
backoff. Messages never include the bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


@dataclass
class HumalikeError(Exception):
    message: str
    status: int | None = None
    code: str | None = None
    trace_id: str | None = None
    request_id: str | None = None

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class FinalError(HumalikeError):
    """The request was refused as it stands; never retried unchanged."""


class Unauthorized(FinalError):
    """401: the token is missing, invalid, expired or revoked."""


class OutOfCredits(FinalError):
    """402: the credit balance cannot cover the request; nothing was charged."""


class Forbidden(FinalError):
    """403: the token is valid but not allowed to call this endpoint."""


@dataclass
class ValidationFailed(FinalError):
    """400/422: the request body was rejected (either documented shape)."""

    problems: list[FieldProblem] = field(default_factory=list)


class TransientError(HumalikeError):
    """The service could not answer now; the same request may work later."""


class ServiceUnavailable(TransientError):
    """5xx, including 502 UPSTREAM_ERROR with its trace_id."""


@dataclass
class RateLimited(TransientError):
    """429, with the server's requested wait when it gave one."""

    retry_after: float | None = None


class NetworkError(TransientError):
    """Timeout, refused or reset connection: no HTTP answer at all."""


class UnexpectedResponse(TransientError):
    """An answer that is not what the contract describes (bad JSON, wrong shape)."""


@dataclass
class ConnectionLost(TransientError):
    """A turn-taking WebSocket was refused (`status`: an expired or spent `connect_url`) or ended
    without our closing it (`close_code`). Either way the cure is the same: re-open the thread
    for a fresh `connect_url`, then connect again."""

    close_code: int | None = None
