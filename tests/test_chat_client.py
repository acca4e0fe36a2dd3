"""The chat-model client against the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.chat.client import CHARS_PER_TOKEN, ChatModel, ChatModelError, TokenUsage
from tests.fakes.chat_model import DEFAULT_API_KEY, DEFAULT_MODEL, DEFAULT_REPLY, FakeChatModel, error_body, serve

MESSAGES = [
    {"role": "system", "content": "You are Sam Okafor, a warm-but-sharp Thresh support main."},
    {"role": "user", "content": "Sam, was that hook on purpose?"},
]
SECRET_KEY = "sk-proj-SECRET-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatModel]:
    fake = FakeChatModel()
    async with serve(fake):
        yield fake


@contextlib.asynccontextmanager
async def chat_model(base_url: str, api_key: str | None = DEFAULT_API_KEY, **kwargs: float) -> AsyncIterator[ChatModel]:
    model = ChatModel(base_url, DEFAULT_MODEL, api_key, **kwargs)
    try:
        yield model
    finally:
        await model.close()


async def collect(model: ChatModel, received: list[str] | None = None, **kwargs: int) -> list[str]:
    """Every delta of one reply; `received` also keeps them when the stream then fails."""
    deltas = received if received is not None else []
    async with contextlib.aclosing(model.stream_reply(MESSAGES, **kwargs)) as stream:
        async for delta in stream:
            deltas.append(delta)
    return deltas


async def failure(base_url: str, api_key: str | None = DEFAULT_API_KEY, **kwargs: float) -> ChatModelError:
    async with chat_model(base_url, api_key, **kwargs) as model:
        with pytest.raises(ChatModelError) as caught:
            await collect(model)
    return caught.value


def texts_of(error: ChatModelError) -> list[str]:
    return [str(error), repr(error), error.message, error.user_line()]


# --- Replies ------------------------------------------------------------------------------------


async def test_deltas_arrive_in_order_and_join_to_the_scripted_text(fake: FakeChatModel) -> None:
    text = "Of course it was. I saw the flash coming a mile away."
    fake.script_reply(text, chunk_size=5)
    async with chat_model(fake.base_url) as model:
        deltas = await collect(model)
    assert deltas == [text[start : start + 5] for start in range(0, len(text), 5)]
    assert "".join(deltas) == text


async def test_the_request_carries_the_model_name_and_the_exact_messages(fake: FakeChatModel) -> None:
    async with chat_model(fake.base_url) as model:
        await collect(model)
    [request] = fake.requests
    assert request.model == DEFAULT_MODEL
    assert request.messages == MESSAGES
    assert request.stream is True
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert request.max_tokens is None


async def test_max_tokens_is_sent_when_given(fake: FakeChatModel) -> None:
    async with chat_model(fake.base_url) as model:
        await collect(model, max_tokens=120)
    assert fake.requests[0].max_tokens == 120


async def test_an_unscripted_request_gets_the_default_reply(fake: FakeChatModel) -> None:
    async with chat_model(fake.base_url) as model:
        assert "".join(await collect(model)) == DEFAULT_REPLY


async def test_no_api_key_works_against_a_server_that_needs_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK would otherwise read OPENAI_API_KEY: a key meant for OpenAI must not leak to a local server.
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    fake = FakeChatModel(api_key=None)
    fake.script_reply("Local and keyless.")
    async with serve(fake) as base_url, chat_model(base_url, api_key=None) as model:
        assert "".join(await collect(model)) == "Local and keyless."
    assert SECRET_KEY not in fake.requests[0].headers.get("authorization", "")


async def test_a_query_in_the_base_url_goes_with_each_request_after_the_path(fake: FakeChatModel) -> None:
    # A proxy in front of a model may want its key in the query (`.../v1?key=...`).
    async with chat_model(f"{fake.base_url}?key=proxy-key&tier=free") as model:
        assert "".join(await collect(model)) == DEFAULT_REPLY
    [request] = fake.requests
    assert request.query == {"key": "proxy-key", "tier": "free"}


# --- Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (403, "auth"),
        (404, "bad_request"),
        (422, "bad_request"),
        (429, "rate_limited"),
        (500, "unavailable"),
        (502, "unavailable"),
        (503, "unavailable"),
    ],
)
async def test_each_error_status_maps_to_its_kind(fake: FakeChatModel, status: int, kind: str) -> None:
    fake.fail_next(status)
    error = await failure(fake.base_url)
    assert (error.kind, error.status) == (kind, status)
    assert error.user_line()


async def test_a_proxy_error_page_that_is_not_json_still_maps_by_status(fake: FakeChatModel) -> None:
    fake.fail_next(502, "<html><body>502 Bad Gateway</body></html>")
    error = await failure(fake.base_url)
    assert (error.kind, error.status) == ("unavailable", 502)


async def test_a_wrong_key_is_an_auth_error(fake: FakeChatModel) -> None:
    error = await failure(fake.base_url, api_key="sk-wrong-key-000000")
    assert (error.kind, error.code) == ("auth", "invalid_api_key")
    assert "CHAT_MODEL_API_KEY" in error.user_line()
    assert fake.requests[0].status == 401


async def test_an_unknown_model_is_a_bad_request_naming_the_setting(fake: FakeChatModel) -> None:
    model = ChatModel(fake.base_url, "no-such-model", DEFAULT_API_KEY)
    try:
        with pytest.raises(ChatModelError) as caught:
            await collect(model)
    finally:
        await model.close()
    assert (caught.value.kind, caught.value.status, caught.value.code) == ("bad_request", 404, "model_not_found")
    assert "CHAT_MODEL_NAME" in caught.value.user_line()


async def test_a_rate_limit_with_retry_after_says_how_long_to_wait(fake: FakeChatModel) -> None:
    fake.fail_next(429, headers={"retry-after": "7"})
    error = await failure(fake.base_url)
    assert error.retry_after == 7.0
    assert "7 s" in error.user_line()


async def test_a_rate_limit_without_retry_after_asks_for_a_minute(fake: FakeChatModel) -> None:
    fake.fail_next(429)
    error = await failure(fake.base_url)
    assert error.retry_after is None
    assert "a minute" in error.user_line()


async def test_an_exhausted_quota_is_not_reported_as_a_short_wait(fake: FakeChatModel) -> None:
    fake.fail_next(429, error_body("You exceeded your current quota.", "insufficient_quota", "insufficient_quota"))
    error = await failure(fake.base_url)
    assert error.kind == "rate_limited"
    assert "top it up" in error.user_line()


async def test_a_hang_past_the_timeout_is_a_timeout(fake: FakeChatModel) -> None:
    fake.hang_next()
    error = await failure(fake.base_url, timeout=0.2)
    assert error.kind == "timeout"


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await failure(f"http://127.0.0.1:{port}/v1")
    assert (error.kind, error.cut_off) == ("unavailable", False)


async def test_a_dropped_connection_is_unavailable(fake: FakeChatModel) -> None:
    fake.drop_next()
    error = await failure(fake.base_url)
    assert error.kind == "unavailable"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
async def test_no_error_text_repeats_the_api_key(status: int) -> None:
    # Some servers echo the key they were sent; it must not travel on into logs or the channel.
    fake = FakeChatModel(api_key=SECRET_KEY)
    fake.fail_next(status, error_body(f"Key {SECRET_KEY} is not allowed here.", "invalid_request_error"))
    async with serve(fake) as base_url:
        error = await failure(base_url, api_key=SECRET_KEY)
    assert all(SECRET_KEY not in text for text in texts_of(error))
    assert "[redacted]" in error.message


async def test_a_wrong_key_is_never_repeated_either(fake: FakeChatModel) -> None:
    error = await failure(fake.base_url, api_key=SECRET_KEY)
    assert all(SECRET_KEY not in text for text in texts_of(error))


# --- Streams cut mid-way ------------------------------------------------------------------------


async def test_a_stream_cut_mid_way_yields_what_arrived_then_is_unavailable(fake: FakeChatModel) -> None:
    fake.script_reply("Hook, flay, lantern, done.", chunk_size=4, fail_after_chunks=2)
    received: list[str] = []
    async with chat_model(fake.base_url) as model:
        with pytest.raises(ChatModelError) as caught:
            await collect(model, received)
    assert received == ["Hook", ", fl"]
    assert (caught.value.kind, caught.value.cut_off) == ("unavailable", True)
    assert "mid-reply" in caught.value.user_line()


async def test_a_stream_that_ends_without_finish_or_done_keeps_what_arrived(
    fake: FakeChatModel, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK raises nothing when the body ends cleanly without `[DONE]`: the reply is what arrived.
    fake.script_reply("Hook, flay, lantern, done.", chunk_size=4, fail_after_chunks=2, cut="end")
    with caplog.at_level(logging.WARNING, logger="bot.chat.client"):
        async with chat_model(fake.base_url) as model:
            assert await collect(model) == ["Hook", ", fl"]
    assert "without a finish reason" in caplog.text


# --- The fake's wire format ---------------------------------------------------------------------


async def test_the_fake_streams_the_openai_wire_format(fake: FakeChatModel) -> None:
    fake.script_reply("Hi there", chunk_size=4)
    body = {"model": DEFAULT_MODEL, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.text()
    events = [block.removeprefix("data: ") for block in raw.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks[1:-1]] == ["Hi t", "here"]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, None, None, "stop"]


async def test_the_fake_sends_a_usage_chunk_last_and_null_usage_on_the_others_when_asked(fake: FakeChatModel) -> None:
    fake.script_reply("Hi there", chunk_size=4, usage=(21, 3))
    body = {"model": DEFAULT_MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/chat/completions", json=body, headers=headers) as response,
    ):
        raw = await response.text()
    events = [block.removeprefix("data: ") for block in raw.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    *streamed, last = chunks
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
    assert all("usage" in chunk and chunk["usage"] is None for chunk in streamed)


# --- Token usage --------------------------------------------------------------------------------


async def test_every_request_asks_for_usage_and_the_reply_carries_the_servers_count(fake: FakeChatModel) -> None:
    fake.script_reply("Of course it was.", usage=(57, 6))
    async with chat_model(fake.base_url) as model:
        reply = model.stream_reply(MESSAGES)
        text = "".join([delta async for delta in reply])

    assert text == "Of course it was."
    assert reply.usage == TokenUsage(prompt_tokens=57, completion_tokens=6)
    assert reply.usage.total_tokens == 63
    [request] = fake.requests
    assert request.body["stream_options"] == {"include_usage": True}


async def test_a_server_that_reports_no_usage_gets_an_estimate_from_characters(fake: FakeChatModel) -> None:
    fake.reports_usage = False
    fake.script_reply("x" * 40)
    async with chat_model(fake.base_url) as model:
        reply = model.stream_reply(MESSAGES)
        [delta async for delta in reply]

    prompt_chars = sum(len(message["content"]) for message in MESSAGES)
    assert reply.usage is not None and reply.usage.estimated
    assert reply.usage.completion_tokens == 40 // CHARS_PER_TOKEN
    assert reply.usage.prompt_tokens == -(-prompt_chars // CHARS_PER_TOKEN)


async def test_a_server_that_refuses_stream_options_is_asked_again_without_and_never_with_it_again(
    fake: FakeChatModel,
) -> None:
    fake.refuses_stream_options = True
    fake.script_reply("Hook first.")
    fake.script_reply("Then lantern.")
    async with chat_model(fake.base_url) as model:
        first = model.stream_reply(MESSAGES)
        first_text = "".join([delta async for delta in first])
        second = model.stream_reply(MESSAGES)
        second_text = "".join([delta async for delta in second])

    assert (first_text, second_text) == ("Hook first.", "Then lantern.")
    assert [request.status for request in fake.requests] == [400, 200, 200]
    assert ["stream_options" in request.body for request in fake.requests] == [True, False, False]
    assert first.usage is not None and first.usage.estimated
    assert second.usage is not None and second.usage.estimated


async def test_another_400_is_not_retried(fake: FakeChatModel) -> None:
    fake.fail_next(400)
    async with chat_model(fake.base_url) as model:
        refused = model.stream_reply(MESSAGES)
        with pytest.raises(ChatModelError):
            [delta async for delta in refused]

    assert len(fake.requests) == 1
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}


async def test_a_refused_request_cost_nothing_and_a_cut_off_one_is_estimated(fake: FakeChatModel) -> None:
    fake.fail_next(429)
    fake.script_reply("Warding the river brush wins games.", chunk_size=5, fail_after_chunks=2)
    async with chat_model(fake.base_url) as model:
        refused = model.stream_reply(MESSAGES)
        with pytest.raises(ChatModelError):
            [delta async for delta in refused]
        cut = model.stream_reply(MESSAGES)
        with pytest.raises(ChatModelError):
            [delta async for delta in cut]

    assert refused.usage is None
    assert cut.usage is not None and cut.usage.estimated
    assert cut.usage.completion_tokens == 10 // CHARS_PER_TOKEN + 1  # "Wardi", "ng th": 10 characters
