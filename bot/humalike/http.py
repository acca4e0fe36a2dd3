"""The transport every Humalike client shares: bearer auth, timeouts, and one mapping of failures.

The persona client and the turn-taking client call different endpoints of one
service, which answers failures with one envelope and one set of status codes;
so both are a `HumalikeHTTP` and raise the same exceptions for the same answers.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import math
import time
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError

from bot.humalike.errors import (
    FieldProblem,
    Forbidden,
    HumalikeError,
    NetworkError,
    OutOfCredits,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    ValidationFailed,
)

log = logging.getLogger(__name__)

WHOAMI_PATH = "/v1/turn-taking/actions/whoami"
# A Retry-After longer than this is taken as this: a job is never parked for days by one header.
MAX_RETRY_AFTER = 3600.0

Model = TypeVar("Model", bound=BaseModel)


class HumalikeHTTP:
    """The base of each Humalike client: `_request` sends one JSON request and returns its parsed
    JSON answer, or raises a `HumalikeError`. One `ClientSession` is shared by every call."""

    def __init__(
        self, session: aiohttp.ClientSession, *, base_url: str, token: SecretStr, timeout: float = 15.0
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token
        # Timed from when a request is on the wire, never while it waits for a free connection:
        # a start still waiting in the pool was not sent, so its timing out would report a job as
        # "may have started" that never did. `sock_read` runs from the moment the request is
        # written to the first byte of the answer, and between bytes after that. (`connect`, the wait
        # for a pooled connection and the name lookup, stays unbounded; the system resolver bounds lookups.)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout, sock_read=timeout)

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            async with self._session.request(
                method, self._base_url + path, json=payload, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                request_id = response.headers.get("x-request-id")
                if response.status >= 400:
                    raise error_for(response.status, text, response.headers, request_id)
                if response.status != 200:
                    raise UnexpectedResponse(
                        f"unexpected HTTP status from {path}", status=response.status, request_id=request_id
                    )
                try:
                    return json.loads(text)
                except ValueError:
                    raise UnexpectedResponse(
                        f"{path} answered with a body that is not JSON", status=200, request_id=request_id
                    ) from None
        except HumalikeError:
            raise
        except TimeoutError:
            raise NetworkError(f"{method} {path} timed out") from None
        except aiohttp.ClientError as error:
            raise NetworkError(f"{method} {path} failed: {type(error).__name__}") from None

    async def whoami(self) -> str:
        """The account id of the token (free): the start-up check of the token."""
        body = await self._request("POST", WHOAMI_PATH, {})
        if not isinstance(body, dict) or not isinstance(body.get("user_id"), str):
            raise UnexpectedResponse("whoami answered without a user_id")
        return body["user_id"]


def parse_model(model: type[Model], body: Any) -> Model:
    """`body` as `model`, or `UnexpectedResponse`: an answer off the contract is the service's fault."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise UnexpectedResponse(f"response did not match {model.__name__}: {error.error_count()} errors") from None


def error_for(status: int, text: str, headers: Any, request_id: str | None) -> HumalikeError:
    envelope = error_envelope(text)
    code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
    message = envelope.get("message") if isinstance(envelope.get("message"), str) else f"HTTP {status}"
    trace_id = envelope.get("trace_id") if isinstance(envelope.get("trace_id"), str) else None
    common = {"status": status, "code": code, "trace_id": trace_id, "request_id": request_id}
    log.warning("Humalike answered %s %s (trace_id=%s, request_id=%s)", status, code, trace_id, request_id)
    if status == 401:
        return Unauthorized(message, **common)
    if status == 402:
        return OutOfCredits(message, **common)
    if status == 403:
        return Forbidden(message, **common)
    if status in (400, 422):
        return ValidationFailed(message, problems=field_problems(envelope.get("details")), **common)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(headers.get("Retry-After")), **common)
    if status >= 500:
        return ServiceUnavailable(message, **common)
    return UnexpectedResponse(message, **common)


def error_envelope(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def field_problems(details: Any) -> list[FieldProblem]:
    """Both documented shapes: `{loc, msg, type}` (persona endpoints) and `{field, message}`."""
    if not isinstance(details, list):
        return []
    problems = []
    for item in details:
        if not isinstance(item, dict):
            continue
        if "loc" in item:
            problems.append(FieldProblem(dotted(item.get("loc")), str(item.get("msg", ""))))
        else:
            problems.append(FieldProblem(str(item.get("field", "")), str(item.get("message", ""))))
    return problems


def dotted(loc: Any) -> str:
    """A `loc` path (`["messages", 3, "content"]`) as `messages.3.content`."""
    if isinstance(loc, list | tuple):
        return ".".join(str(part) for part in loc)
    return str(loc)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), at most MAX_RETRY_AFTER."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates carry no zone; HTTP dates are GMT
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - current))
