"""The Humalike HTTP client: start an enhancement, poll it, check the token.

Built on aiohttp rather than httpx: discord.py already depends on it, and per
poll it spends a fraction of the CPU of the httpx line the openai SDK installs
(0.08-0.17 ms against 0.58-0.64 ms, `python -m bench.http_clients`), which is
what lets a thousand jobs in flight poll from one process. One `ClientSession`
is shared by every call.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import math
import time
from typing import Any

import aiohttp
from pydantic import SecretStr, ValidationError

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
from bot.humalike.models import Enhancement, Grounding, Population, StartedJob

log = logging.getLogger(__name__)

ENHANCE_PATH = "/v1/personas/actions/enhance"
ENHANCEMENT_PATH = "/v1/personas/repositories/Enhancement/by-id/{id}"
WHOAMI_PATH = "/v1/turn-taking/actions/whoami"
GENERATE_PATH = "/v1/personas/actions/generate"
POPULATION_PATH = "/v1/personas/repositories/Population/by-id/{id}"
# A Retry-After longer than this is taken as this: a job is never parked for days by one header.
MAX_RETRY_AFTER = 3600.0


class HumalikeClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        token: SecretStr,
        timeout: float = 15.0,
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

    async def start_enhancement(self, sketch: str, grounding: Grounding) -> StartedJob:
        """Start a billed enhancement. Never retried here: a retry could start a second job."""
        body = await self._request("POST", ENHANCE_PATH, {"persona": sketch, "grounding": grounding.value})
        return _parse(StartedJob, body)

    async def get_enhancement(self, enhancement_id: str) -> Enhancement | None:
        """Poll a job (free). `None` when the service answers `null` (an unknown id)."""
        body = await self._request("GET", ENHANCEMENT_PATH.format(id=enhancement_id))
        return None if body is None else _parse(Enhancement, body)

    async def start_population(self, prompt: str, count: int, grounding: Grounding) -> StartedJob:
        """Start a billed population (a cast). Never retried here, like an enhancement."""
        body = await self._request(
            "POST", GENERATE_PATH, {"prompt": prompt, "count": count, "grounding": grounding.value}
        )
        return _parse(StartedJob, body)

    async def get_population(self, population_id: str) -> Population | None:
        """Poll a population (free). `None` when the service answers `null`."""
        body = await self._request("GET", POPULATION_PATH.format(id=population_id))
        return None if body is None else _parse(Population, body)

    async def whoami(self) -> str:
        """The account id of the token (free): the start-up check of the token."""
        body = await self._request("POST", WHOAMI_PATH, {})
        if not isinstance(body, dict) or not isinstance(body.get("user_id"), str):
            raise UnexpectedResponse("whoami answered without a user_id")
        return body["user_id"]

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            async with self._session.request(
                method, self._base_url + path, json=payload, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                request_id = response.headers.get("x-request-id")
                if response.status >= 400:
                    raise _error_for(response.status, text, response.headers, request_id)
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


def _parse(model: type[Any], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise UnexpectedResponse(f"response did not match {model.__name__}: {error.error_count()} errors") from None


def _error_for(status: int, text: str, headers: Any, request_id: str | None) -> HumalikeError:
    envelope = _error_envelope(text)
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
        return ValidationFailed(message, problems=_field_problems(envelope.get("details")), **common)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(headers.get("Retry-After")), **common)
    if status >= 500:
        return ServiceUnavailable(message, **common)
    return UnexpectedResponse(message, **common)


def _error_envelope(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _field_problems(details: Any) -> list[FieldProblem]:
    """Both documented shapes: `{loc, msg, type}` (persona endpoints) and `{field, message}`."""
    if not isinstance(details, list):
        return []
    problems = []
    for item in details:
        if not isinstance(item, dict):
            continue
        if "loc" in item:
            loc = item.get("loc")
            where = ".".join(str(part) for part in loc) if isinstance(loc, list) else str(loc)
            problems.append(FieldProblem(where, str(item.get("msg", ""))))
        else:
            problems.append(FieldProblem(str(item.get("field", "")), str(item.get("message", ""))))
    return problems


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


__all__ = ["HumalikeClient", "parse_retry_after"]
