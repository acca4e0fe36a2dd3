"""The bot's logging as `python -m bot` sets it up: no secret in it, no alarm about voice it never uses."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import discord
import pytest

from bot.__main__ import secrets_of
from bot.chat.client import ChatModel
from bot.core import chat_model_of
from bot.logs import REQUEST_LOGGERS, VOICE_WARNING_LOGGER, setup_logging
from bot.settings import Settings
from tests.fakes.chat_model import DEFAULT_MODEL, DEFAULT_REPLY, FakeChatModel, serve

PASSWORD = "hunter2-PASSWORD-5e1f"
QUERY_KEY = "secret-QUERY-KEY-7c2d"
MESSAGES = [{"role": "user", "content": "Sam, you there?"}]
# Tokens shaped like those discord.py logs at DEBUG (discord/http.py, webhook/async_.py, gateway.py).
WEBHOOK_TOKEN = "Xk3vQ9-webhooktoken_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefghij"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OnNlY3JldC1pbnRlcmFjdGlvbi10b2tlbg"


class InstallLogging(Protocol):
    def __call__(self, level: str = "INFO", settings: Settings | None = None) -> io.StringIO: ...


@pytest.fixture
def installed_logging() -> Iterator[InstallLogging]:
    """Install the bot's logging into a string, as `python -m bot` does; undo it afterwards."""
    root = logging.getLogger()
    touched = [logging.getLogger(name) for name in (*REQUEST_LOGGERS, VOICE_WARNING_LOGGER)]
    saved = (root.level, [(logger, logger.level, list(logger.filters)) for logger in touched])
    handlers: list[logging.Handler] = []

    def install(level: str = "INFO", settings: Settings | None = None) -> io.StringIO:
        stream = io.StringIO()
        secrets = secrets_of(settings) if settings is not None else []
        handlers.append(setup_logging(level, secrets=secrets, stream=stream))
        return stream

    yield install
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for logger, level, filters in saved[1]:
        logger.setLevel(level)
        logger.filters[:] = filters


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "discord-token-not-used-here",
        "humalike_token": "humalike-token-not-used-here",
        "database_path": tmp_path / "x.sqlite3",
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


def with_secrets(base_url: str) -> str:
    """The fake's base URL behind credentials and a query key, as a proxy in front of a model may want."""
    return base_url.replace("http://", f"http://bot:{PASSWORD}@") + f"?key={QUERY_KEY}"


async def reply_of(model: ChatModel) -> str:
    deltas = []
    async with contextlib.aclosing(model.stream_reply(MESSAGES)) as stream:
        async for delta in stream:
            deltas.append(delta)
    return "".join(deltas)


@pytest.fixture
async def keyless_fake() -> Any:
    fake = FakeChatModel(api_key=None)  # behind a proxy, the credentials are the URL's own
    async with serve(fake):
        yield fake


# --- Secrets in the chat model's URL ------------------------------------------------------------


async def test_a_password_and_a_query_key_in_the_chat_model_url_appear_nowhere_in_the_log_at_info(
    keyless_fake: FakeChatModel, installed_logging: InstallLogging, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, chat_model_base_url=with_secrets(keyless_fake.base_url or ""), chat_model_name=DEFAULT_MODEL
    )
    log = installed_logging(settings.log_level, settings)

    model = chat_model_of(settings)  # logs where the chat model is, as at start-up
    assert model is not None
    try:
        assert await reply_of(model) == DEFAULT_REPLY
    finally:
        await model.close()

    text = log.getvalue()
    assert f"Chat model {DEFAULT_MODEL} at http://***@127.0.0.1" in text
    assert PASSWORD not in text
    assert QUERY_KEY not in text


async def test_request_lines_of_the_http_libraries_are_held_back_at_info(
    keyless_fake: FakeChatModel, installed_logging: InstallLogging
) -> None:
    # No secrets handed to the filter: what keeps the URL out here is the libraries' level alone.
    log = installed_logging("INFO")

    model = ChatModel(with_secrets(keyless_fake.base_url or ""), DEFAULT_MODEL, None)
    try:
        await reply_of(model)
    finally:
        await model.close()

    assert "HTTP Request" not in log.getvalue()
    assert "http://" not in log.getvalue()  # no request URL at all, secret or not


async def test_at_debug_request_lines_are_logged_with_the_urls_secrets_masked(
    keyless_fake: FakeChatModel, installed_logging: InstallLogging, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        chat_model_base_url=with_secrets(keyless_fake.base_url or ""),
        chat_model_name=DEFAULT_MODEL,
        log_level="DEBUG",
    )
    log = installed_logging(settings.log_level, settings)

    model = chat_model_of(settings)
    assert model is not None
    try:
        await reply_of(model)
    finally:
        await model.close()

    text = log.getvalue()
    assert "/chat/completions" in text  # the libraries' request lines come through at DEBUG
    assert PASSWORD not in text
    assert QUERY_KEY not in text


# --- discord.py's DEBUG lines -------------------------------------------------------------------


def test_discord_debug_lines_show_no_webhook_or_interaction_token(installed_logging: InstallLogging) -> None:
    log = installed_logging("DEBUG")
    api = "https://discord.com/api/v10"

    logging.getLogger("discord.webhook.async_").debug(
        "Webhook ID %s with %s %s has returned status code %s",
        1234,
        "POST",
        f"{api}/webhooks/1234/{WEBHOOK_TOKEN}?wait=1",
        200,
    )
    logging.getLogger("discord.http").debug(
        "%s %s with %s has returned %s", "POST", f"{api}/interactions/5678/{INTERACTION_TOKEN}/callback", "{}", 204
    )
    logging.getLogger("discord.http").debug(
        "%s %s has received %s",
        "POST",
        f"{api}/channels/42/webhooks",
        {"id": "1234", "type": 1, "name": "Personas", "token": WEBHOOK_TOKEN, "channel_id": "42"},
    )
    logging.getLogger("discord.gateway").debug(
        "For Shard ID %s: WebSocket Event: %s",
        None,
        {"op": 0, "t": "INTERACTION_CREATE", "d": {"id": "5678", "type": 2, "token": INTERACTION_TOKEN}},
    )

    text = log.getvalue()
    assert WEBHOOK_TOKEN not in text
    assert INTERACTION_TOKEN not in text
    # Still useful for debugging: the routes and ids stay.
    assert "/webhooks/1234/***?wait=1" in text
    assert "/interactions/5678/***/callback" in text
    assert "'name': 'Personas'" in text
    assert "'INTERACTION_CREATE'" in text


def test_a_configured_token_is_masked_even_inside_a_librarys_debug_line(
    installed_logging: InstallLogging, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, discord_token="MTIz.discord-bot-token.xyz", log_level="DEBUG")
    log = installed_logging(settings.log_level, settings)

    logging.getLogger("some.library").debug("headers: %s", {"Authorization": "Bot MTIz.discord-bot-token.xyz"})
    try:
        raise RuntimeError("rejected token MTIz.discord-bot-token.xyz")
    except RuntimeError:
        logging.getLogger("some.library").exception("Request failed")

    text = log.getvalue()
    assert "MTIz.discord-bot-token.xyz" not in text
    assert "headers: {'Authorization': 'Bot [redacted]'}" in text
    assert "RuntimeError: rejected token [redacted]" in text


# --- Voice ------------------------------------------------------------------------------------


def test_discords_voice_warnings_are_dropped_and_its_other_warnings_kept(
    installed_logging: InstallLogging, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = installed_logging("INFO")
    # discord.py warns once per process, from the first Client made: arm both warnings again.
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)

    discord.Client(intents=discord.Intents.none())
    logging.getLogger(VOICE_WARNING_LOGGER).warning("Something else discord.py warns about")

    text = log.getvalue()
    assert not discord.VoiceClient.warn_nacl and not discord.VoiceClient.warn_dave  # they were triggered
    assert "voice will NOT be supported" not in text
    assert "Something else discord.py warns about" in text
