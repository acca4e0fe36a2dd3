"""A scriptable fake of an OpenAI-compatible Chat Completions server, served as an aiohttp application.

It follows OpenAI's published API reference, which Ollama, vLLM, LM Studio, llama.cpp's server
and OpenRouter all copy:

- `GET /v1/models` and `GET /v1/models/{model}`: `{"object": "list", "data": [model objects]}`.
- `POST /v1/chat/completions` with `"stream": true`: `text/event-stream`, one `data: {json}` event
  per `chat.completion.chunk`. The first chunk's delta is `{"role": "assistant", "content": ""}`,
  then one chunk per piece of text (`delta.content`), then a chunk with an empty delta and
  `finish_reason`, then (with `stream_options.include_usage`) a usage chunk with no choices, then
  `data: [DONE]`. With `include_usage`, every other chunk carries `"usage": null`, as the reference
  says. `reports_usage = False` plays a server that ignores `stream_options` (no usage at all);
  `refuses_stream_options = True` one that refuses the request with a 400 naming the argument, as
  Azure OpenAI's older API versions answer ("Unrecognized request argument supplied: stream_options").
- With `"stream": false` (the default): one `chat.completion` object.
- Errors as `{"error": {"message", "type", "param", "code"}}`: 401 `invalid_api_key`, 404
  `model_not_found`, 400 `invalid_request_error` for a malformed request, and whatever a test
  scripts. Every answer carries an `x-request-id` header.

It never imports the bot. Tests script it per case::

    fake = FakeChatModel()
    fake.script_reply("Hello, traveller.", chunk_size=4, fail_after_chunks=2)
    fake.fail_next(429, headers={"retry-after": "7"})
    async with serve(fake) as base_url:   # http://127.0.0.1:PORT/v1, what CHAT_MODEL_BASE_URL holds
        ...

Standalone, for pointing a real bot at it (CHAT_MODEL_BASE_URL=http://127.0.0.1:8766/v1)::

    python -m tests.fakes.chat_model --port 8766 [--host 127.0.0.1] [--api-key K] [--reply TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.loopback import HeldRequests, serve_fake

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "test-key"
DEFAULT_MODEL = "fake-model"
DEFAULT_PORT = 8766
DEFAULT_REPLY = "Hello there!"
# The roles the reference accepts in `messages` ("function" is deprecated but still accepted).
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
SYSTEM_FINGERPRINT = "fp_fake0000"
REQUEST_ID = web.RequestKey("request_id", str)

Endpoint = Literal["chat", "models"]
Cut = Literal["abort", "end"]


# --- Error bodies -------------------------------------------------------------------------------


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def masked_key(key: str) -> str:
    """How OpenAI echoes a wrong key in its 401 message: the ends kept, the middle starred."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def default_error_body(status: int) -> dict[str, Any]:
    """The body OpenAI sends for a status, as its error-codes guide describes it."""
    if status == 400:
        return error_body("Invalid request.", "invalid_request_error")
    if status == 401:
        return error_body(
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 403:
        return error_body("You are not allowed to sample from this model.", "invalid_request_error")
    if status == 404:
        return error_body(
            "The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
        )
    if status == 429:
        return error_body(
            "Rate limit reached for requests. Please try again in 20s.", "requests", "rate_limit_exceeded"
        )
    if status == 503:
        return error_body("The engine is currently overloaded, please try again later.", "server_error")
    if status >= 500:
        return error_body("The server had an error while processing your request. Sorry about that!", "server_error")
    return error_body(f"HTTP {status}", "invalid_request_error")


# --- Scripts, faults and records ----------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedReply:
    """One reply: `text` streamed in `chunk_size`-character pieces.

    `first_token_delay` passes before anything is sent (the headers included, as OpenAI sends
    them once the prompt is processed); `chunk_delay` passes before each later piece.
    `fail_after_chunks=n` sends the role chunk and `n` content chunks, then cuts the stream:
    `cut="abort"` resets the connection (a crash or dropped network); `cut="end"` ends the HTTP
    body cleanly without a finish chunk or `[DONE]` (a proxy that gave up). A non-streamed
    request with `fail_after_chunks` set is aborted without an answer.
    """

    text: str
    chunk_size: int = 8
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    fail_after_chunks: int | None = None
    finish_reason: str = "stop"
    cut: Cut = "abort"
    # (prompt_tokens, completion_tokens) the server reports; None: counted (words stand in for tokens).
    usage: tuple[int, int] | None = None

    def pieces(self) -> list[str]:
        return [self.text[start : start + self.chunk_size] for start in range(0, len(self.text), self.chunk_size)]


@dataclass(frozen=True)
class _Fault:
    kind: Literal["status", "hang", "drop"]
    status: int = 0
    body: Any = None
    headers: Mapping[str, str] | None = None


@dataclass
class _QueuedFault:
    fault: _Fault
    remaining: int


@dataclass(frozen=True)
class RecordedChat:
    """One `POST /v1/chat/completions` as it arrived (`headers` looked up in any case); `status`
    is None when no answer completed (a hang the client gave up on, a dropped or aborted one)."""

    model: Any
    messages: Any
    stream: bool
    headers: Mapping[str, str]
    body: Any
    status: int | None = None
    request_id: str = ""
    query: Mapping[str, str] = field(default_factory=dict)  # the URL's query parameters

    @property
    def max_tokens(self) -> Any:
        return self.body.get("max_tokens") if isinstance(self.body, dict) else None


# --- The fake -----------------------------------------------------------------------------------


class FakeChatModel:
    """All state of one fake chat-model server; `app` serves it.

    `api_key=None` accepts any request, with or without `Authorization` (as Ollama does).
    """

    def __init__(
        self,
        api_key: str | None = DEFAULT_API_KEY,
        models: Sequence[str] = (DEFAULT_MODEL,),
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.sleep = sleep
        self.base_url: str | None = None  # set by `serve()` while served
        self.default_reply = ScriptedReply(DEFAULT_REPLY)
        self.reports_usage = True  # False: a server that ignores `stream_options.include_usage`
        self.refuses_stream_options = False  # True: a server that refuses a request carrying it
        self.requests: list[RecordedChat] = []
        self._held = HeldRequests()
        self._replies: deque[ScriptedReply] = deque()
        self._faults: dict[Endpoint, list[_QueuedFault]] = {"chat": [], "models": []}
        self.app = self._build_app()

    # Scripting ------------------------------------------------------------------------------

    def script_reply(
        self,
        text: str,
        *,
        chunk_size: int = 8,
        first_token_delay: float = 0.0,
        chunk_delay: float = 0.0,
        fail_after_chunks: int | None = None,
        finish_reason: str = "stop",
        cut: Cut = "abort",
        usage: tuple[int, int] | None = None,
    ) -> None:
        """The next answered completion replies `text` (queued, first in first out; see `ScriptedReply`)."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._replies.append(
            ScriptedReply(
                text, chunk_size, first_token_delay, chunk_delay, fail_after_chunks, finish_reason, cut, usage
            )
        )

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        endpoint: Endpoint = "chat",
    ) -> None:
        """The next `times` requests answer `status` with `body` (None: OpenAI's body for it;
        a str is sent raw as text/plain, like a proxy's error page) and extra `headers`
        (`{"retry-after": "7"}`). Auth is checked first, as a real server does."""
        self._queue(_Fault("status", status, body, headers), times, endpoint)

    def hang_next(self, *, times: int = 1, endpoint: Endpoint = "chat") -> None:
        """The next `times` requests are held, before any byte of the answer, on an
        `asyncio.Event` (never a clock). A hold ends when the client disconnects (the server
        cancels the handler), or on `release_hangs()` (it then answers normally), or when
        `serve()` exits."""
        self._queue(_Fault("hang"), times, endpoint)

    def drop_next(self, *, times: int = 1, endpoint: Endpoint = "chat") -> None:
        """The next `times` requests get their connection reset without any answer."""
        self._queue(_Fault("drop"), times, endpoint)

    def release_hangs(self) -> None:
        """Let every held request answer now."""
        self._held.release_all()

    @property
    def hanging(self) -> int:
        return self._held.count

    async def wait_hanging(self, count: int = 1) -> None:
        """Return once at least `count` requests are held."""
        await self._held.wait_for(count)

    # Internals ------------------------------------------------------------------------------

    def _queue(self, fault: _Fault, times: int, endpoint: Endpoint) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults[endpoint].append(_QueuedFault(fault, times))

    def _take_fault(self, endpoint: Endpoint) -> _Fault | None:
        queue = self._faults[endpoint]
        if not queue:
            return None
        queued = queue[0]
        queued.remaining -= 1
        if queued.remaining == 0:
            queue.pop(0)
        return queued.fault

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model:.+}", self._retrieve_model)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        request[REQUEST_ID] = f"req_{uuid.uuid4().hex[:24]}"
        try:
            response = await handler(request)
        except web.HTTPException as error:  # aiohttp's own 404 and 405, in OpenAI's envelope
            response = _json(error.status, error_body(error.reason, "invalid_request_error"))
        if not response.prepared:
            response.headers["x-request-id"] = request[REQUEST_ID]
        return response

    def _auth_problem(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _json(
                401,
                error_body(
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                ),
            )
        if not hmac.compare_digest(credentials.strip().encode(), self.api_key.encode()):
            return _json(
                401,
                error_body(
                    f"Incorrect API key provided: {masked_key(credentials.strip())}. You can find your API key "
                    "at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
        return None

    async def _apply(self, request: web.Request, fault: _Fault) -> web.StreamResponse | None:
        """Misbehave as `fault` says; None means go on and answer normally (a released hang)."""
        if fault.kind == "status":
            return _fault_response(fault)
        if fault.kind == "hang":
            await self._held.hold()
            return None
        _abort(request)
        return _Dropped()

    # Models ---------------------------------------------------------------------------------

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (problem := self._auth_problem(request)) is not None:
            return problem
        fault = self._take_fault("models")
        if fault is not None and (answer := await self._apply(request, fault)) is not None:
            return answer
        return _json(200, {"object": "list", "data": [_model_object(name) for name in self.models]})

    async def _retrieve_model(self, request: web.Request) -> web.StreamResponse:
        if (problem := self._auth_problem(request)) is not None:
            return problem
        fault = self._take_fault("models")
        if fault is not None and (answer := await self._apply(request, fault)) is not None:
            return answer
        name = request.match_info["model"]
        if name not in self.models:
            return _json(404, _unknown_model_body(name))
        return _json(200, _model_object(name))

    # Chat completions -----------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        record = RecordedChat(
            model=body.get("model") if isinstance(body, dict) else None,
            messages=body.get("messages") if isinstance(body, dict) else None,
            stream=bool(body.get("stream")) if isinstance(body, dict) else False,
            headers=CIMultiDict(request.headers),
            body=body,
            request_id=request[REQUEST_ID],
            query=dict(request.query),
        )
        index = len(self.requests)
        self.requests.append(record)
        status: int | None = None
        try:
            response = await self._answer_chat(request, body)
            status = None if isinstance(response, _Dropped) else response.status
            return response
        finally:
            self.requests[index] = _with_status(record, status)
            log.info("POST /v1/chat/completions -> %s (x-request-id %s)", status or "-", record.request_id)

    async def _answer_chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        if (problem := self._auth_problem(request)) is not None:  # checked first, as a real server does
            return problem
        fault = self._take_fault("chat")
        if fault is not None and (answer := await self._apply(request, fault)) is not None:
            return answer
        problem = self._request_problem(body)
        if problem is not None:
            return problem
        reply = self._replies.popleft() if self._replies else self.default_reply
        if body.get("stream"):
            return await self._stream(request, body, reply)
        await self.sleep(reply.first_token_delay)
        if reply.fail_after_chunks is not None:
            _abort(request)
            return _Dropped()
        return _json(200, _completion(body, reply))

    def _request_problem(self, body: Any) -> web.Response | None:
        if body is _INVALID_JSON or not isinstance(body, dict):
            return _json(
                400,
                error_body(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                    "sent was not valid JSON.)",
                    "invalid_request_error",
                ),
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _json(400, error_body("you must provide a model parameter", "invalid_request_error"))
        if self.refuses_stream_options and "stream_options" in body:
            return _json(
                400, error_body("Unrecognized request argument supplied: stream_options", "invalid_request_error")
            )
        messages = body.get("messages")
        if messages is None:
            return _json(
                400,
                error_body(
                    "Missing required parameter: 'messages'.",
                    "invalid_request_error",
                    "missing_required_parameter",
                    "messages",
                ),
            )
        if not isinstance(messages, list):
            return _json(
                400,
                error_body(
                    "Invalid type for 'messages': expected an array, but got another type instead.",
                    "invalid_request_error",
                    "invalid_type",
                    "messages",
                ),
            )
        if not messages:
            return _json(
                400,
                error_body(
                    "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                    "empty array instead.",
                    "invalid_request_error",
                    "empty_array",
                    "messages",
                ),
            )
        for position, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                supported = ", ".join(f"'{name}'" for name in ROLES)
                return _json(
                    400,
                    error_body(
                        f"Invalid value: {json.dumps(role)}. Supported values are: {supported}.",
                        "invalid_request_error",
                        "invalid_value",
                        f"messages[{position}].role",
                    ),
                )
        if model not in self.models:
            return _json(404, _unknown_model_body(model))
        return None

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: ScriptedReply) -> web.StreamResponse:
        await self.sleep(reply.first_token_delay)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        response.headers["x-request-id"] = request[REQUEST_ID]
        await response.prepare(request)
        options = body.get("stream_options")
        include_usage = self.reports_usage and isinstance(options, dict) and options.get("include_usage") is True
        chunk = _ChunkMaker(body["model"], include_usage=include_usage)
        await _send_event(response, chunk({"role": "assistant", "content": "", "refusal": None}))
        for sent, piece in enumerate(reply.pieces()):
            if sent == reply.fail_after_chunks:
                return await self._cut(request, response, reply.cut)
            if sent:
                await self.sleep(reply.chunk_delay)
            await _send_event(response, chunk({"content": piece}))
        if reply.fail_after_chunks is not None:  # asked to fail after every chunk there is
            return await self._cut(request, response, reply.cut)
        await _send_event(response, chunk({}, finish_reason=reply.finish_reason))
        if include_usage:
            await _send_event(response, {**chunk.envelope(), "choices": [], "usage": _usage(body, reply)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    async def _cut(request: web.Request, response: web.StreamResponse, cut: Cut) -> web.StreamResponse:
        if cut == "end":
            await response.write_eof()
            return response
        _abort(request)
        return _Dropped()


# --- Response helpers ---------------------------------------------------------------------------

_INVALID_JSON = object()


class _Dropped(web.Response):
    """Marks an answer never (completely) sent: the connection was aborted."""


async def _read_json(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text)
    except ValueError:
        return _INVALID_JSON


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _with_status(record: RecordedChat, status: int | None) -> RecordedChat:
    return replace(record, status=status)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _fault_response(fault: _Fault) -> web.Response:
    if isinstance(fault.body, str):
        response = web.Response(status=fault.status, text=fault.body, content_type="text/plain")
    else:
        response = _json(fault.status, default_error_body(fault.status) if fault.body is None else fault.body)
    for name, value in (fault.headers or {}).items():
        response.headers[name] = value
    return response


def _unknown_model_body(name: str) -> dict[str, Any]:
    return error_body(
        f"The model `{name}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}


def _usage(body: dict[str, Any], reply: ScriptedReply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    # Words stand in for tokens: the shape matters here, not the count.
    prompt = sum(len(str(message.get("content", "")).split()) for message in body["messages"])
    completion = len(reply.text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(body: dict[str, Any], reply: ScriptedReply) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(body, reply),
    }


@dataclass
class _ChunkMaker:
    """Builds the chunks of one streamed completion: same id, created and model on each."""

    model: str
    include_usage: bool = False  # then every chunk but the usage chunk says `"usage": null`
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def __call__(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self.envelope(), "choices": [choice], **({"usage": None} if self.include_usage else {})}


async def _send_event(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode())


# --- Serving ------------------------------------------------------------------------------------


def serve(fake: FakeChatModel) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve `fake` on a free loopback port; yields the base URL with `/v1`, as users configure it."""
    return serve_fake(fake, path="/v1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.chat_model", description="Run a fake OpenAI-compatible chat model."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help='the key to accept; "" accepts any or none')
    parser.add_argument("--model", action="append", help=f"a model name to serve (repeatable; default {DEFAULT_MODEL})")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="what every completion answers")
    parser.add_argument("--chunk-size", type=int, default=8, help="characters per streamed chunk")
    parser.add_argument("--chunk-delay", type=float, default=0.05, help="seconds between streamed chunks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fake = FakeChatModel(api_key=args.api_key or None, models=args.model or (DEFAULT_MODEL,))
    fake.default_reply = ScriptedReply(args.reply, chunk_size=args.chunk_size, chunk_delay=args.chunk_delay)
    log.info(
        "Fake chat model listening; set CHAT_MODEL_BASE_URL=http://%s:%s/v1 CHAT_MODEL_NAME=%s",
        args.host,
        args.port,
        fake.models[0],
    )
    web.run_app(fake.app, host=args.host, port=args.port, print=None, access_log=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
