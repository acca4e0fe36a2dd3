"""The bot's logging: the level asked for, without secrets and without lines that only alarm.

- Libraries that log every HTTP request they make (the openai SDK and its httpx line, aiohttp's
  access log) stay at WARNING unless LOG_LEVEL is DEBUG: at INFO they would print each request
  URL, and a chat-model base URL may carry a password or a key in its query.
- Every line that reaches the handler is scrubbed: the configured secrets (tokens, a base URL's
  password and query), credentials in any URL, and the webhook and interaction tokens discord.py
  puts in its DEBUG lines.
- discord.py's two start-up warnings that voice is not supported are dropped: this bot has no voice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TextIO

import discord

from bot.redaction import mask_secret_patterns, redact

# The loggers of third-party HTTP clients and servers that log request lines at INFO.
# httpx2/httpcore2 are the names of the httpx line the installed openai SDK uses.
REQUEST_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "aiohttp.access")
# discord.py's exact messages (discord/client.py, `Client.__init__`), logged by `discord.client`.
VOICE_WARNINGS = frozenset(
    {
        "PyNaCl is not installed, voice will NOT be supported",
        "davey is not installed, voice will NOT be supported",
    }
)
VOICE_WARNING_LOGGER = "discord.client"


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler writes it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def scrub(self, text: str) -> str:
        return mask_secret_patterns(redact(text, self.secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            # An exception's text may repeat a URL; fold a traceback that needed masking into the message.
            traceback = logging.Formatter().formatException(record.exc_info)
            scrubbed = self.scrub(traceback)
            if scrubbed != traceback:
                record.msg, record.args = f"{record.getMessage()}\n{scrubbed}", None
                record.exc_info, record.exc_text = None, None
        return True


class DropVoiceWarnings(logging.Filter):
    """Drops discord.py's "voice will NOT be supported" warnings; its other warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in VOICE_WARNINGS)


def level_of(name: str) -> int:
    """The logging level named by LOG_LEVEL (any case); INFO for a name logging does not know."""
    level = logging.getLevelName(name.strip().upper())
    return level if isinstance(level, int) else logging.INFO


def setup_logging(level_name: str, *, secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Log to `stream` (stderr) at LOG_LEVEL, as described above; returns the handler it installed."""
    level = level_of(level_name)
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(secrets))
    discord.utils.setup_logging(handler=handler, level=level, root=True)
    request_level = level if level <= logging.DEBUG else max(level, logging.WARNING)
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(request_level)
    voice = logging.getLogger(VOICE_WARNING_LOGGER)
    if not any(isinstance(existing, DropVoiceWarnings) for existing in voice.filters):
        voice.addFilter(DropVoiceWarnings())
    return handler
