"""Discord's numbers the stand-in speaks (paths, limits, opcodes, permission bits, types, flags); ids, timestamps."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway/resume"
ATTACHMENTS_PATH = "/attachments"
DISCORD_EPOCH_MS = 1_420_070_400_000

DEFAULT_TOKEN = "wire-bot-token"
DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250
# An interaction must be answered within 3 s; its token then works for 15 minutes.
INTERACTION_ANSWER_WINDOW = 3.0
INTERACTION_TOKEN_LIFETIME = 15 * 60
# Events kept per session for a RESUME to replay.
RESUME_BACKLOG = 1000
WEBHOOKS_PER_CHANNEL = 15
# What success answers announce in X-RateLimit-* (generous: only scripted 429s limit the bot).
BUCKET_LIMIT = 50

# Gateway opcodes.
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE = 0, 1, 2, 3
OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS, OP_INVALID_SESSION = 6, 7, 8, 9
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# Intents and application flags.
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT = 1 << 18

# Permissions.
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_WEBHOOKS = 1 << 29
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
) | SEND_MESSAGES_IN_THREADS
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_WEBHOOKS

# Message types and flags.
MESSAGE_DEFAULT, MESSAGE_REPLY, MESSAGE_CHAT_INPUT_COMMAND = 0, 19, 20
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Interaction types and callback types.
COMMAND_CHAT_INPUT, COMMAND_MESSAGE = 1, 3  # application command types
INTERACTION_COMMAND, INTERACTION_COMPONENT, INTERACTION_AUTOCOMPLETE, INTERACTION_MODAL = 2, 3, 4, 5
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE = 4, 5, 6
CALLBACK_UPDATE_MESSAGE, CALLBACK_AUTOCOMPLETE, CALLBACK_MODAL = 7, 8, 9

# Channel types.
CHANNEL_TEXT, CHANNEL_PUBLIC_THREAD = 0, 11
THREAD_TYPES = (10, 11, 12)

# Slash-command option types.
OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP = 1, 2
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_USER, OPTION_CHANNEL, OPTION_ROLE = 3, 4, 5, 6, 7, 8
OPTION_NUMBER, OPTION_ATTACHMENT = 10, 11

MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
FORBIDDEN_WEBHOOK_NAMES = ("discord", "clyde")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")


class Snowflakes:
    """Discord ids: milliseconds since Discord's epoch, then a counter; each one larger than the last."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last
