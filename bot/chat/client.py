"""The chat-model client: stream a reply from any OpenAI-compatible Chat Completions endpoint.

OpenAI, Ollama, vLLM, LM Studio, llama.cpp's server and OpenRouter all speak this API, so one
client serves every one of them; only the base URL, the key and the model name change. Every
failure comes out as one `ChatModelError` whose `kind` says what the bot should tell the channel;
no message, log line or exception text carries the key.

Built on aiohttp, as the Humalike client is, rather than the `openai` SDK: the SDK's request
building and its httpx line cost about 2.3 ms of CPU a reply, a fifth of the bot's CPU with 200
natural personas (bench/RESULTS.md, "Natural mode"); the wire format is a plain JSON POST
answered with server-sent events.

A stream cut mid-way: when the connection drops (reset, or the server dies), reading raises
inside the iteration, so the caller has had the deltas that arrived and then gets
`ChatModelError("unavailable")` with `cut_off=True`. When the server instead ends the HTTP body
cleanly without a finish chunk or `[DONE]`, the deltas that arrived are all there is, and the
stream ends normally (with a warning logged).

Token usage: every request asks for it (`stream_options.include_usage`, OpenAI's contract, which
vLLM, Ollama, LM Studio, llama.cpp and OpenRouter follow); the stream then carries a last chunk with
a `usage` object and no choices. A server that ignores the option gets its usage estimated from
characters instead (`TokenUsage.estimated`), so a server's daily token cap still holds.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp

from bot.redaction import mask_secret_patterns, redact, url_secrets

log = logging.getLogger(__name__)

ErrorKind = Literal["auth", "rate_limited", "timeout", "unavailable", "bad_request"]

COMPLETIONS_PATH = "/chat/completions"
# Longest server reason kept in an error's message (they end up in log lines).
MAX_REASON_CHARS = 300
# Error codes that mean the account cannot pay, not that the caller is too fast.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
# For a server that reports no usage: about four characters a token in English, OpenAI's own rule
# of thumb. An estimate, not a count; good enough to keep a daily cap in the right place.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class TokenUsage:
    """The tokens one reply cost: as the server reported them, or `estimated` from characters."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimated_usage(messages: list[dict[str, str]], reply: str) -> TokenUsage:
    """An estimate from characters (CHARS_PER_TOKEN), for a server that does not report usage."""
    prompt_chars = sum(len(str(message.get("content", ""))) for message in messages)
    return TokenUsage(
        prompt_tokens=math.ceil(prompt_chars / CHARS_PER_TOKEN),
        completion_tokens=math.ceil(len(reply) / CHARS_PER_TOKEN),
        estimated=True,
    )


def reported_usage(value: Any) -> TokenUsage | None:
    """A `usage` object of a chunk, when it is one (other chunks carry `"usage": null`)."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        total = value.get("total_tokens")
        return TokenUsage(0, total) if isinstance(total, int) else None
    return TokenUsage(prompt, completion)


@dataclass
class ChatModelError(Exception):
    """Any failure to get a reply. `kind` drives what the channel is told; `message` is for logs."""

    kind: ErrorKind
    message: str
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None  # seconds the server asked us to wait, when it said
    cut_off: bool = False  # the reply had started streaming when it failed

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def user_line(self) -> str:
        """One short sentence for the channel: what happened and what to do, nothing secret."""
        if self.kind == "auth":
            if self.status == 403:
                return "The chat model refused the bot's access to this model; an admin needs to check its settings."
            return "The chat model rejected the bot's API key; an admin needs to check CHAT_MODEL_API_KEY."
        if self.kind == "rate_limited":
            if self.status == 402 or self.code in QUOTA_CODES:
                return "The chat model account is out of credits or quota; an admin needs to top it up."
            if self.retry_after is not None and self.retry_after > 0:
                return f"The chat model is rate-limited right now; try again in {math.ceil(self.retry_after)} s."
            return "The chat model is rate-limited right now; try again in a minute."
        if self.kind == "timeout":
            return "The chat model took too long to answer; try again in a moment."
        if self.kind == "bad_request":
            if self.status == 404 or self.code == "model_not_found":
                return (
                    "The chat model server does not know the configured model; an admin needs to check CHAT_MODEL_NAME."
                )
            if self.code in CONTEXT_CODES:
                return "The conversation is too long for the chat model; start a fresh one."
            return "The chat model refused the request; an admin should check the chat model settings."
        if self.cut_off:
            return "The chat model stopped mid-reply; try again in a moment."
        return "The chat model is unavailable right now; try again in a few minutes."


class ReplyStream:
    """A reply's text as it arrives (iterate it), then what it cost (`usage`).

    `usage` is None until the server has answered, and stays None when it refused the request
    (nothing was generated, so nothing is billed); a reply cut off mid-way is estimated.
    """

    def __init__(self, messages: list[dict[str, str]]) -> None:
        self._messages = messages
        self._deltas: AsyncIterator[str] | None = None
        self._received: list[str] = []
        self.answered = False  # the server accepted the request and began streaming
        self.reported: TokenUsage | None = None

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        assert self._deltas is not None
        delta = await self._deltas.__anext__()
        self._received.append(delta)
        return delta

    async def aclose(self) -> None:
        if self._deltas is not None:
            await self._deltas.aclose()  # type: ignore[attr-defined]

    @property
    def usage(self) -> TokenUsage | None:
        if self.reported is not None:
            return self.reported
        return estimated_usage(self._messages, "".join(self._received)) if self.answered else None


class ChatModel:
    """One configured chat model: `stream_reply()` for replies, `close()` when the bot closes."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float = 60.0) -> None:
        self.model = model
        self._secrets = [*url_secrets(base_url), *([api_key] if api_key else [])]
        base, self._query = split_query(base_url)
        self._url = base.rstrip("/") + COMPLETIONS_PATH
        # Credentials in the URL go as Basic auth instead of the key (aiohttp reads them from it).
        has_credentials = bool(urlsplit(base).username)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key and not has_credentials else {}
        # Per connect and per read: a stream that keeps sending never times out, one that stalls
        # for `timeout` seconds does.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        # Asked for the token counts until the server refuses the option (then they are estimated).
        self._asks_usage = True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use, inside the running event loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def stream_reply(self, messages: list[dict[str, str]], *, max_tokens: int | None = None) -> ReplyStream:
        """The reply's text as it arrives, in pieces, then its `usage`; iterating raises `ChatModelError`.

        Close the stream (`contextlib.aclosing`) when stopping early, so the HTTP stream closes.
        """
        reply = ReplyStream(messages)
        reply._deltas = self._stream(messages, max_tokens, reply)
        return reply

    async def _stream(
        self, messages: list[dict[str, str]], max_tokens: int | None, reply: ReplyStream
    ) -> AsyncIterator[str]:
        received = False
        finish_reason: str | None = None
        try:
            async with self._answer(messages, max_tokens) as response:
                reply.answered = True
                async for event in _events(response):
                    if "error" in event:  # an error reported inside the stream
                        raise self._stream_error(event["error"], cut_off=received)
                    # Usually its own last chunk; some servers put it on the finish chunk instead.
                    reply.reported = reported_usage(event.get("usage")) or reply.reported
                    choices = event.get("choices") or []
                    if not choices:  # usage or filter-result chunks carry no choices
                        continue
                    choice = choices[0]
                    finish_reason = choice.get("finish_reason") or finish_reason
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        received = True
                        yield content
        except TimeoutError:
            raise ChatModelError("timeout", "no answer from the chat model in time", cut_off=received) from None
        except aiohttp.ClientError as error:
            where = "mid-stream" if received else "before any reply"
            text = f"connection to the chat model failed {where} ({type(error).__name__}: {error})"
            raise ChatModelError("unavailable", self._redact(text), cut_off=received) from None
        except json.JSONDecodeError as error:  # a stream event that is not JSON
            raise ChatModelError(
                "unavailable", f"the chat model sent a stream event that is not JSON ({error.msg})", cut_off=received
            ) from None
        if finish_reason is None:
            log.warning("Chat model stream for %s ended without a finish reason; keeping what arrived", self.model)

    def _body(self, messages: list[dict[str, str]], max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if self._asks_usage:
            body["stream_options"] = {"include_usage": True}
        if max_tokens is not None:  # `max_tokens`, not `max_completion_tokens`: every compatible server accepts it
            body["max_tokens"] = max_tokens
        return body

    @contextlib.asynccontextmanager
    async def _answer(
        self, messages: list[dict[str, str]], max_tokens: int | None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The server's streaming answer, or its refusal raised as a ChatModelError.

        A server that refuses `stream_options` (Azure OpenAI's older API versions do) is asked again
        without it, and never again with it: its replies' tokens are then estimated.
        """
        while True:
            body = self._body(messages, max_tokens)
            async with self._client().post(
                self._url, json=body, params=self._query or None, headers=self._headers
            ) as response:
                if response.status < 400:
                    yield response
                    return
                refusal = await self._refusal(response)
            if not (self._asks_usage and refusal.status == 400 and "stream_options" in str(refusal)):
                raise refusal
            log.warning("The chat model %s refuses stream_options: token usage is estimated from now on", self.model)
            self._asks_usage = False

    async def _refusal(self, response: aiohttp.ClientResponse) -> ChatModelError:
        status = response.status
        try:
            payload: Any = json.loads(await response.text())
        except (ValueError, UnicodeDecodeError):
            payload = None  # a proxy's HTML error page: the status says enough
        inner = payload.get("error") if isinstance(payload, dict) else None
        details = inner if isinstance(inner, dict) else payload if isinstance(payload, dict) else {}
        code = _body_field(details, "code")
        reason = _body_field(details, "message") or response.reason or f"HTTP {status}"
        request_id = response.headers.get("x-request-id")
        text = f"HTTP {status} from the chat model (code={code}, request_id={request_id}): {reason}"
        retry_after = _retry_after(response.headers) if status == 429 else None
        return ChatModelError(_kind_of(status), self._redact(text), status=status, code=code, retry_after=retry_after)

    def _stream_error(self, error: Any, *, cut_off: bool) -> ChatModelError:
        details = error if isinstance(error, dict) else {"message": str(error)}
        code = _body_field(details, "code")
        text = f"the chat model reported an error mid-stream (code={code}): {_body_field(details, 'message')}"
        return ChatModelError("unavailable", self._redact(text), code=code, cut_off=cut_off)

    def _redact(self, text: str) -> str:
        return mask_secret_patterns(redact(text, self._secrets))[:MAX_REASON_CHARS]


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to `data: [DONE]` or the body's end."""
    data: list[str] = []
    async for line in _lines_then_end(response):
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
            continue
        if line or not data:  # a comment, an `event:` line, or a blank line with nothing pending
            continue
        payload, data = "\n".join(data), []
        if payload == "[DONE]":
            return
        event = json.loads(payload)
        if isinstance(event, dict):
            yield event


async def _lines_then_end(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The body's lines, then a blank one: a body that ends without one still ends its last event."""
    async for raw in response.content:
        yield raw.decode("utf-8").rstrip("\r\n")
    yield ""


def _kind_of(status: int) -> ErrorKind:
    if status in (401, 403):
        return "auth"
    if status in (402, 429):  # 402: OpenRouter's "out of credits"; `user_line` tells it apart
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "unavailable"
    return "bad_request"


def split_query(base_url: str) -> tuple[str, dict[str, str]]:
    """The base URL without its query, and that query's parameters."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(query="", fragment="")), dict(parse_qsl(parts.query, keep_blank_values=True))


def _body_field(body: object, name: str) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    return str(value) if value is not None else None


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), else None."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
