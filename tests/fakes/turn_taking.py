"""A scriptable fake of Humalike's turn-taking API over HTTP and WebSocket, served by aiohttp.

It follows the published pages (turn-taking overview, open_thread, submit_messages,
respond, record_event, whoami, errors, credits and billing) and the observed service:
an `x-request-id` on every answer, a `trace_id` on 5xx, both validation shapes. It
never imports the bot. The documented limits are in `turn_taking_rules`; a body outside
them is refused `validation_status` (422; the errors page says 400) with `{field, message}`.

- Threads are owner-scoped: keyed by (account, thread id), so a thread id another account
  opens reads as absent to it (it gets its own); `add_account()` adds a token. Re-opening
  creates nothing and mints a fresh `connect_url`, refused (401) once `grant_ttl` seconds of
  `clock()` have passed or after `expire_connect_urls()`; `drop_sockets()` cuts live sockets
  (a TCP abort, or a close frame with a code). Calls on a thread never opened are a 422.
- `submit_messages` records a batch once: the same messages again answer what they
  answered the first time, unbilled. Decisions come from `script_decisions()`, else
  `default_decision`; `skip_decide` or `has_media` decide `speak`, unbilled, using no script.
- `respond` paces a reply into 1-5 messages (a sentence each, or `script_reply()`), each as
  typing on, a `beat` of event-loop time, the message, typing off, on every socket of the
  thread; a message due while no socket listens is lost to the socket (`Thread.missed`),
  and only `scheduled` tells of it. A stale `turn_epoch` answers `superseded`, unbilled; a
  retried reply is not scheduled twice. `paced()` waits for every reply to finish.
- Billing: a decided submit is one unit (two with social memory), a respond two (the
  reply and `theoryofmind`); `credits` (None: unlimited) runs out into a 402 before the
  call runs. `calls` records every request; `billed` the billable ones.
- `fail_next()` injects faults (an error status, `null`, a hang, a drop; `commit=True` does
  the work first). `emit_signal()` and `send_frame()` push a signal or a raw frame.

Tests script it per case::

    fake = FakeTurnTaking(beat=0.01)
    fake.script_decisions("speak", "stay_silent")
    fake.fail_next("submit_messages", 502)
    async with serve(fake) as base_url:
        ...
"""

from __future__ import annotations

import contextlib
import contextvars
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes import turn_taking_rules as rules
from tests.fakes.faults import Dropped, Fault, FaultQueue, json_response
from tests.fakes.humalike import DEFAULT_TOKEN, DEFAULT_USER_ID, default_error_body, error_body
from tests.fakes.loopback import serve_fake
from tests.fakes.turn_taking_socket import SocketRecord, ThreadSockets
from tests.fakes.turn_taking_threads import (
    MAX_PIECES,
    Call,
    Decide,
    DecisionName,
    MemoryBanks,
    Thread,
    normalised,
    paced_pieces,
    schedule,
)

ACTIONS = "/v1/turn-taking/actions/"
RULES: dict[str, Callable[[Any], list[rules.Problem]]] = {
    "open_thread": rules.open_thread_problems,
    "submit_messages": rules.submit_problems,
    "respond": rules.respond_problems,
    "record_event": rules.record_event_problems,
}
SOCKET_PATH = "/v1/ws"
Action = Literal["open_thread", "submit_messages", "respond", "record_event", "whoami"]


# The call being answered, set by the middleware around each handler (one request per task).
_CALL: contextvars.ContextVar[Call] = contextvars.ContextVar("turn_taking_fake_call")


class FakeTurnTaking:
    """All state of one fake turn-taking service; `app` serves it."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        user_id: str = DEFAULT_USER_ID,
        *,
        clock: Callable[[], float] = time.monotonic,
        beat: float = 0.05,
    ) -> None:
        self.accounts: dict[str, str] = {token: user_id}  # bearer token -> account id
        self.clock = clock  # connect_url expiry and timestamps; pacing uses event-loop time (`beat`)
        self._wall_offset = time.time() - clock()
        self.beat = beat
        self.grant_ttl = 30.0  # the page's example grant lasts 30 s
        self.default_decision: DecisionName = "stay_silent"
        self.credits: int | None = None  # billable units left; None: never 402
        self.validation_status = 422  # the turn-taking pages say 422; the errors page says 400
        self.base_url: str | None = None  # set by `serve()` while served
        self.threads: dict[tuple[str, str], Thread] = {}
        self.calls: list[Call] = []
        self.banks = MemoryBanks()
        self.sockets = ThreadSockets(self._now_iso)
        self._decisions: dict[str | None, deque[Decide]] = {}
        self._replies: dict[str | None, deque[tuple[str, ...]]] = {}
        self._faults = FaultQueue(_default_error_body)
        self.app = web.Application(middlewares=[self._middleware])
        for action in ("open_thread", "submit_messages", "respond", "record_event", "whoami"):
            self.app.router.add_post(ACTIONS + action, self._route(action))
        self.app.router.add_get(SOCKET_PATH, self._socket)

    # Scripting ------------------------------------------------------------------------------

    def add_account(self, token: str, user_id: str) -> None:
        self.accounts[token] = user_id

    def script_decisions(self, *decisions: DecisionName | Decide, thread_id: str | None = None) -> None:
        """The next decided batches (of `thread_id`, or of any thread) decide these, in order."""
        queue = self._decisions.setdefault(thread_id, deque())
        queue.extend(d if isinstance(d, Decide) else Decide(d) for d in decisions)

    def script_reply(self, *pieces: str, thread_id: str | None = None) -> None:
        """The next scheduled reply (of `thread_id`, or any) is paced as these 1-5 pieces."""
        if not 1 <= len(pieces) <= MAX_PIECES:
            raise ValueError(f"a reply is paced into 1 to {MAX_PIECES} messages")
        self._replies.setdefault(thread_id, deque()).append(pieces)

    def fail_next(
        self,
        action: Action,
        fault: int | Fault,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        thread_id: str | None = None,
    ) -> None:
        """The next `times` calls of `action` (on `thread_id`, or any) misbehave. An int is an error
        status with its documented body (400/422: `VALIDATION_ERROR` with `{field, message}`
        details; pass `validation_failed_body()` for the `{loc, msg, type}` shape). A refused call
        records and bills nothing unless the fault has `commit=True` (done, then the answer lost)."""
        self._faults.add(action, fault, body, headers, times, thread_id)

    def expire_connect_urls(self, thread_id: str | None = None) -> None:
        """Every `connect_url` issued so far (for `thread_id`, or all) is refused from now on."""
        self.sockets.expire(self.clock(), thread_id)

    async def drop_sockets(self, thread_id: str | None = None, *, close_code: int | None = None) -> int:
        """Cut the live sockets (of `thread_id`, or all): abort the TCP connection, or with
        `close_code` send a close frame. Returns how many were cut."""
        return await self.sockets.drop(thread_id, close_code)

    def release_hangs(self) -> None:
        self._faults.held.release_all()

    async def wait_hanging(self, count: int = 1) -> None:
        await self._faults.held.wait_for(count)

    # Inspection -----------------------------------------------------------------------------

    def thread(self, thread_id: str, owner: str = DEFAULT_USER_ID) -> Thread:
        return self.threads[(owner, thread_id)]

    def calls_of(self, action: Action) -> list[Call]:
        return [call for call in self.calls if call.action == action]

    @property
    def billed(self) -> list[Call]:
        return [call for call in self.calls if call.billed]

    @property
    def billed_units(self) -> int:
        return sum(len(call.components) for call in self.calls)

    @property
    def connections(self) -> list[SocketRecord]:
        return self.sockets.records

    async def wait_open(self, thread_id: str | None = None, count: int = 1) -> None:
        """Return once at least `count` sockets are open (on `thread_id`, or on any thread)."""
        await self.sockets.wait_open(thread_id, count)

    def open_sockets(self, thread_id: str | None = None) -> int:
        return self.sockets.open_count(thread_id)

    async def emit_signal(self, thread_id: str, user_id: str, kind: str, *, owner: str = DEFAULT_USER_ID) -> None:
        """Push a `turn_taking.signal`, which the service sends only on a thread with social signals."""
        thread = self.thread(thread_id, owner)
        if thread.integrations.get("social_signals") is None:
            raise ValueError("turn_taking.signal events are only sent when social signals are enabled")
        await self.sockets.emit(
            thread, "turn_taking.signal", {"thread_id": thread.id, "user_id": user_id, "kind": kind}
        )

    async def send_frame(self, thread_id: str, text: str, *, owner: str = DEFAULT_USER_ID) -> int:
        """Send a raw text frame to the thread's open sockets (a frame off the contract); how many."""
        return await self.sockets.send_raw(self.thread(thread_id, owner), text)

    async def paced(self) -> None:
        """Return once every reply scheduled so far has been paced out."""
        await self.sockets.idle()

    async def shutdown(self) -> None:
        """Stop pacing and close every socket, as the service going away would."""
        self.release_hangs()
        await self.sockets.shutdown()

    # Actions: each answers a valid body; `_route` has validated it and found its thread -------

    def _open_thread(self, request: web.Request, body: dict[str, Any], _: None) -> web.Response:
        owner, now = _owner(), self.clock()
        thread_id = (body.get("thread_id") or str(uuid.uuid4())).lower()
        thread = self.threads.get((owner, thread_id))
        if thread is None:  # an id another account opened reads as absent: this account gets its own
            thread = self.threads[(owner, thread_id)] = Thread(owner, thread_id, created_at=now, updated_at=now)
        if body.get("integrations") is not None:  # set on create, updated on a re-open that sends it
            thread.integrations, thread.updated_at = body["integrations"], now
        code = self.sockets.grant(thread, now + self.grant_ttl)
        url = request.url.with_scheme("ws").with_path(SOCKET_PATH).with_query(c=code)
        info = {"id": thread.id, "user_id": owner, "created_at": self._iso(thread.created_at)}
        return json_response(
            200,
            {
                "thread": {**info, "updated_at": self._iso(thread.updated_at)},
                "channel": thread.channel,
                "realtime": {"connect_url": str(url), "expires_at": self._iso(now + self.grant_ttl)},
            },
        )

    def _submit_messages(self, request: web.Request, body: dict[str, Any], thread: Thread) -> web.Response:
        messages = [normalised(message) for message in body["messages"]]
        key = json.dumps(messages, sort_keys=True)
        if key in thread.batches:  # a retried batch: recorded once, billed once
            return json_response(200, thread.batches[key])
        short_circuit = bool(body.get("skip_decide")) or any(m["has_media"] for m in messages)
        memory = thread.integrations.get("social_memory")
        units = () if short_circuit else ("turn-taking", *(("social-memory",) if memory is not None else ()))
        if not self._charge(units):
            return json_response(402, error_body("PAYMENT_REQUIRED", "insufficient credits"))
        scripted = None if short_circuit else self._next(self._decisions, thread.id)
        decide = Decide("speak") if short_circuit else scripted or Decide(self.default_decision)
        thread.turn_epoch += 1
        thread.updated_at = self.clock()
        thread.transcript.extend(messages)
        thread.batches[key] = {
            "decision": decide.decision,
            "turn_epoch": thread.turn_epoch,
            "tags": list(decide.tags) if thread.integrations.get("social_signals") is not None else [],
            "recalled_context": self.banks.recall(thread, memory, messages),
        }
        return json_response(200, thread.batches[key])

    def _respond(self, request: web.Request, body: dict[str, Any], thread: Thread) -> web.Response:
        epoch = body["turn_epoch"]
        if epoch > thread.turn_epoch:
            return self._invalid([("turn_epoch", f"is ahead of the thread's turn ({thread.turn_epoch})")])
        if epoch < thread.turn_epoch:  # stale: nothing scheduled, nothing billed
            return json_response(200, {"scheduled": [], "superseded": True})
        key = json.dumps([epoch, body["content"]])
        if key in thread.replies:  # a retried reply is not scheduled twice
            return json_response(200, thread.replies[key])
        if not self._charge(("turn-taking", "theoryofmind")):
            return json_response(402, error_body("PAYMENT_REQUIRED", "insufficient credits"))
        pieces = self._next(self._replies, thread.id) or paced_pieces(body["content"])
        start = self.clock()
        scheduled = schedule(thread, pieces, [self._iso(start + (n + 1) * self.beat) for n in range(len(pieces))])
        thread.replies[key] = {"scheduled": scheduled, "superseded": False}
        self.sockets.pace(thread, scheduled, body.get("metadata"), self.beat)
        return json_response(200, thread.replies[key])

    def _record_event(self, request: web.Request, body: dict[str, Any], thread: Thread) -> web.Response:
        thread.activity.append(dict(body))
        return json_response(200, {"tags": []})  # "Empty for typing and edit events today."

    def _whoami(self, request: web.Request, body: Any, _: None) -> web.Response:
        return json_response(200, {"user_id": _owner()})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        return await self.sockets.serve(request, self.clock())

    # Internals ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == SOCKET_PATH:  # the connect_url carries its own credential
            return await handler(request)
        call = Call(request.path.removeprefix(ACTIONS), None, None, None, f"req_{uuid.uuid4().hex[:20]}")
        reset = _CALL.set(call)
        try:
            owner = self._owner_of(request)
            if owner is None:
                response: web.StreamResponse = json_response(401, error_body("UNAUTHORIZED", "Authentication failed."))
            else:
                call.owner = owner
                try:
                    response = await handler(request)
                except web.HTTPException as error:  # aiohttp's own 404 and 405, in the envelope
                    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status, "ERROR")
                    response = json_response(error.status, error_body(code, error.reason))
            response.headers["x-request-id"] = call.request_id
            call.status = None if isinstance(response, Dropped) else response.status
            return response
        finally:
            _CALL.reset(reset)
            self.calls.append(call)

    def _owner_of(self, request: web.Request) -> str | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        for token, owner in self.accounts.items():
            if hmac.compare_digest(credentials.strip(), token):
                return owner
        return None

    async def _read(self, request: web.Request) -> Any:
        text = await request.text()
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = text
        _CALL.get().body = body
        return body

    def _route(self, action: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The handler of `action`: read, take a fault, validate, find the thread, then act."""
        act: Callable[[web.Request, Any, Any], web.Response] = getattr(self, f"_{action}")
        problems_of = RULES.get(action)

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await self._read(request)

            async def answer() -> web.StreamResponse:
                if problems_of is None:
                    return act(request, body, None)
                if problems := problems_of(body):
                    return self._invalid(problems)
                if action == "open_thread":
                    return act(request, body, None)
                thread = self.threads.get((_owner(), str(body["thread_id"]).lower()))
                if thread is None:
                    return self._invalid([("thread_id", "thread not found")])
                return act(request, body, thread)

            thread_id = body.get("thread_id") if isinstance(body, dict) else None
            fault = self._faults.take(action, thread_id)
            return await (answer() if fault is None else self._faults.apply(request, fault, answer))

        return handle

    def _charge(self, components: tuple[str, ...]) -> bool:
        """Price a call before it runs: False (a 402) when the credits cannot cover it."""
        if self.credits is not None:
            if self.credits < len(components):
                return False
            self.credits -= len(components)
        _CALL.get().components = components
        return True

    def _invalid(self, problems: list[rules.Problem]) -> web.Response:
        return json_response(self.validation_status, rules.refusal(problems))

    @staticmethod
    def _next(queues: dict[str | None, deque[Any]], thread_id: str) -> Any:
        for key in (thread_id, None):
            if queues.get(key):
                return queues[key].popleft()
        return None

    def _iso(self, at: float) -> str:
        moment = datetime.fromtimestamp(self._wall_offset + at, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _now_iso(self) -> str:
        return self._iso(self.clock())


def _owner() -> str:
    """The account of the call being answered (the middleware answers 401 before any handler without one)."""
    owner = _CALL.get().owner
    assert owner is not None
    return owner


def _default_error_body(status: int) -> Any:
    """The documented bodies, but for validation: turn-taking's `{field, message}` shape."""
    if status in (400, 422):
        return rules.refusal([("body", "is invalid")])
    return default_error_body(status)


@contextlib.asynccontextmanager
async def serve(fake: FakeTurnTaking) -> AsyncIterator[str]:
    """Serve `fake` on a free loopback port; yields the base URL. On exit pacing stops and sockets close."""
    async with serve_fake(fake) as base_url:
        try:
            yield base_url
        finally:
            await fake.shutdown()
