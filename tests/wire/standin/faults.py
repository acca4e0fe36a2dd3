"""`Faults`: what a test scripts (429s, latency, a dropped or restarted gateway) and how REST requests meet it."""

from __future__ import annotations

import hashlib
import math
import time

from tests.wire.openapi import Operation
from tests.wire.standin.constants import BUCKET_LIMIT, OP_RECONNECT
from tests.wire.standin.plumbing import _Answer, _Latency, _RateLimit
from tests.wire.standin.state import StandInState

# Not bound by the global limit (Discord's rate-limit page): interactions, and what is sent
# through an interaction's or a webhook's token.
GLOBAL_LIMIT_EXEMPT = ("/interactions/", "/webhooks/{webhook_id}/{webhook_token}")


class Faults(StandInState):
    """Scripted faults: `rate_limit()`, `slow()`, `drop_gateway()`, `reconnect_request()`."""

    def rate_limit(
        self, method: str, template: str, *, times: int = 1, retry_after: float = 0.25, is_global: bool = False
    ) -> None:
        """Answer the next `times` requests of a documented route with Discord's 429."""
        if not self.openapi.template_exists(method, template):
            raise ValueError(f"{method} {template} is not a documented Discord route")
        self._rate_limits.append(_RateLimit(method.upper(), template, times, retry_after, is_global))

    def slow(self, seconds: float, *, method: str | None = None, template: str | None = None) -> None:
        """Hold every REST request (or only one route's) this long before answering; 0 undoes it."""
        self._latencies = [
            rule for rule in self._latencies if (rule.method, rule.template) != (method and method.upper(), template)
        ]
        if seconds > 0:
            self._latencies.append(_Latency(seconds, method and method.upper(), template))

    def enforce_global_limit(self, per_second: float) -> None:
        """Refuse, as Discord does, requests beyond `per_second` in any second, from every process of
        the bot together: a 429 with `global: true`. Interaction and webhook-token routes are exempt."""
        self.global_limit = per_second

    async def drop_gateway(self, *, code: int | None = None, resumable: bool = True) -> None:
        """Cut the bot's gateway connection: abort the TCP connection, or close it with `code`.

        The session stays resumable (events meanwhile are kept and replayed on RESUME) unless
        `resumable=False`: then a RESUME gets INVALID_SESSION and the bot must IDENTIFY anew.
        """
        session = self._session
        connection = session.connection if session else None
        if session is None or connection is None:
            raise RuntimeError("the bot is not connected to the gateway")
        session.resumable = resumable
        self._note("drop", (f"code {code}" if code is not None else "abort") + ("" if resumable else ", not resumable"))
        if code is None:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        else:
            await connection.ws.close(code=code, message=b"dropped by the test")
        await connection.closed.wait()

    async def reconnect_request(self) -> None:
        """Ask the bot to reconnect and resume (opcode 7), as Discord does before a restart."""
        connection = self._session.connection if self._session else None
        if connection is None:
            raise RuntimeError("the bot is not connected to the gateway")
        await connection.send({"op": OP_RECONNECT, "d": None})

    # Applied to each REST request ---------------------------------------------------------

    async def _wait_latency(self, method: str, operation: Operation | None) -> None:
        template = operation.template if operation else None
        seconds = 0.0
        for rule in self._latencies:
            if rule.method in (None, method) and rule.template in (None, template):
                seconds = rule.seconds
        if seconds > 0:
            await self._held.hold(seconds)

    def _take_rate_limit(self, operation: Operation) -> _Answer | None:
        for rule in self._rate_limits:
            if (rule.method, rule.template) != (operation.method, operation.template):
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rate_limits.remove(rule)
            headers = {
                "Retry-After": str(max(1, math.ceil(rule.retry_after))),
                "X-RateLimit-Limit": str(BUCKET_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": self._bucket(operation),
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
                "Via": "1.1 google",
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
                "code": 0,
            }
            return _Answer(429, body, headers)
        return None

    def _take_global_limit(self, operation: Operation, arrived: float) -> _Answer | None:
        if self.global_limit is None or operation.template.startswith(GLOBAL_LIMIT_EXEMPT):
            return None
        window = self._global_window
        while window and window[0] <= arrived - 1.0:
            window.popleft()
        if len(window) < self.global_limit:
            window.append(arrived)
            return None
        self.global_limit_refusals += 1
        retry_after = max(0.001, window[0] + 1.0 - arrived)
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "global",
            "Via": "1.1 google",
        }
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": True, "code": 0}
        return _Answer(429, body, headers)

    @staticmethod
    def _bucket(operation: Operation) -> str:
        return hashlib.sha1(f"{operation.method} {operation.template}".encode()).hexdigest()[:16]

    def _bucket_headers(self, method: str, operation: Operation | None) -> dict[str, str]:
        if operation is None:
            return {}
        return {
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": str(BUCKET_LIMIT - 1),
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": self._bucket(operation),
            "Via": "1.1 google",
        }
