"""`RestFrontDoor`: each REST request parsed, checked against the schema, met with faults, routed and recorded."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import BodyPartReader, web

from tests.wire.openapi import Operation
from tests.wire.standin.constants import API_PREFIX
from tests.wire.standin.faults import Faults
from tests.wire.standin.plumbing import _Answer, _error, _Request, _Unchecked
from tests.wire.standin.records import RestCall, SchemaFailure

log = logging.getLogger(__name__)


class RestFrontDoor(Faults):
    """`_api()` serves everything under `/api/v10`, handing a documented route to its handler."""

    def run_deferred_checks(self) -> None:
        """Check every body whose check was deferred (see `defer_checks`)."""
        unchecked, self._unchecked = self._unchecked, []
        for entry in unchecked:
            if not entry.request_checked:
                entry.request_checked = True
                self._check_request(entry.method, entry.path, entry.operation, entry.body)
            if entry.status:
                self._check_answer(entry.method, entry.path, entry.operation, entry.answer, entry.status)
            else:  # still being answered: its answer is checked next time
                self._unchecked.append(entry)

    def _check_request(self, method: str, path: str, operation: Operation, body: Any) -> list[str]:
        problems = self.openapi.request_problems(operation, body)
        if problems:
            self._record_request_problems(method, path, operation, problems, body)
        return problems

    def _record_request_problems(
        self, method: str, path: str, operation: Operation, problems: list[str], body: Any
    ) -> None:
        self.schema_failures.append(SchemaFailure(method, path, operation.template, tuple(problems), body))
        log.warning("%s %s: the body does not follow Discord's schema: %s", method, path, problems)

    def _check_answer(self, method: str, path: str, operation: Operation, body: Any, status: int) -> None:
        if not self.check_answers or body is None:
            return
        problems = self.openapi.response_problems(operation, status, body)
        if problems:
            self.answer_failures.append(SchemaFailure(method, path, operation.template, tuple(problems), body))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        arrived, wall = time.monotonic(), time.time()
        path = request.path[len(API_PREFIX) :] or "/"
        operation = self.openapi.match(request.method, path)
        body, files, unreadable = await self._read_body(request)
        problems: list[str] = []
        deferred: _Unchecked | None = None
        if operation is not None and unreadable:
            problems = [unreadable]
            self._record_request_problems(request.method, path, operation, problems, body)
        elif operation is not None and self.defer_checks:
            # Queued before the route runs: a deferred body is not refused, so it reaches a route
            # that trusts the schema, and a body that breaks the route must still be checked.
            deferred = _Unchecked(request.method, path, operation, body)
            self._unchecked.append(deferred)
        elif operation is not None:
            problems = self._check_request(request.method, path, operation, body)
        await self._wait_latency(request.method, operation)
        try:
            answer = await self._answer(request, path, operation, body, files, problems, arrived)
        except Exception:
            # Only a body the schema would have refused gets here (checks deferred): record the call.
            log.exception("%s %s: the stand-in could not serve this body", request.method, path)
            answer = _error(500, 0, "500: Internal Server Error")
        answered = answer.body if operation is not None and 200 <= answer.status < 300 else None
        if deferred is not None:
            deferred.answer, deferred.status = answered, answer.status
        elif operation is not None and answered is not None:
            self._check_answer(request.method, path, operation, answered, answer.status)
        call = RestCall(
            method=request.method,
            path=path,
            template=operation.template if operation else None,
            query=dict(request.query),
            json=body,
            files=tuple(filename for _, filename, _, _ in files),
            status=answer.status,
            at=arrived,
            wall=wall,
        )
        self.calls.append(call)
        log.info("%s %s -> %s", request.method, path, answer.status)
        await self._notify()
        headers = {**self._bucket_headers(request.method, operation), **answer.headers}
        if answer.body is None:
            return web.Response(status=answer.status, headers=headers)
        # Exactly `application/json`, no charset: discord.py compares the header as a whole.
        return web.Response(
            status=answer.status,
            body=json.dumps(answer.body).encode(),
            content_type="application/json",
            headers=headers,
        )

    async def _answer(
        self,
        request: web.Request,
        path: str,
        operation: Operation | None,
        body: Any,
        files: list[tuple[str, str, bytes, str]],
        problems: list[str],
        arrived: float,
    ) -> _Answer:
        if operation is None:
            if self.openapi.path_allows(path):
                return _error(405, 0, "405: Method Not Allowed")
            return _error(404, 0, "404: Not Found")
        limited = self._take_rate_limit(operation) or self._take_global_limit(operation, arrived)
        if limited is not None:
            return limited
        authorization = request.headers.get("Authorization")
        if (authorization is not None or operation.needs_bot_token) and authorization != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        if problems and self.reject_invalid_bodies:
            return _error(400, 50035, "Invalid Form Body", {"_errors": [{"code": "SCHEMA", "message": problems[0]}]})
        handler = self._handlers.get((operation.method, operation.template))
        if handler is None:
            self.unhandled.append(
                RestCall(operation.method, path, operation.template, dict(request.query), body, (), 404, 0, 0)
            )
            return _error(404, 0, "404: Not Found (the stand-in does not serve this route)")
        parsed = _Request(operation.method, path, operation.params, request.query, body, files, operation, arrived)
        return await handler(parsed)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[str, str, bytes, str]], str]:
        """The JSON body (or multipart `payload_json`), the uploaded files, and a problem reading them."""
        files: list[tuple[str, str, bytes, str]] = []
        if not request.body_exists:
            return None, files, ""
        if request.content_type.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # Discord's forms are flat
                if part.name == "payload_json":
                    try:
                        body = json.loads(await part.text())
                    except ValueError:
                        return None, files, "payload_json is not JSON"
                else:
                    data = bytes(await part.read())
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    files.append((part.name or "", part.filename or "", data, content_type))
            return body, files, ""
        text = await request.text()
        if not text:
            return None, files, ""
        try:
            return json.loads(text), files, ""
        except ValueError:
            return None, files, "the body is not JSON"
