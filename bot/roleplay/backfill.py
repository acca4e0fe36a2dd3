"""Rebuilding a channel's transcript from Discord after a restart, once per channel."""

from __future__ import annotations

import datetime
import logging

import discord

from bot.roleplay.history import ChannelLine
from bot.roleplay.transcript import MAX_LINES_PER_CHANNEL
from storage.roleplay import RoleplayStore

log = logging.getLogger(__name__)


async def newest_since(
    channel: discord.TextChannel | discord.Thread,
    *,
    since: float,
    limit: int,
    before: discord.abc.Snowflake | None = None,
) -> list[discord.Message]:
    """The channel's newest `limit` messages from about `since` (and before `before`), oldest first.

    Raises discord.HTTPException when the bot may not read the channel's history.
    """
    messages = [
        message
        async for message in channel.history(
            limit=limit,
            # discord.py reads `after` as the last snowflake of its millisecond: step back a second so
            # the session's first message is not lost; callers keep what is in time.
            after=datetime.datetime.fromtimestamp(since - 1, tz=datetime.UTC),
            before=before,
            oldest_first=False,
        )
    ]
    messages.reverse()
    return messages


async def read_back(
    channel: discord.TextChannel | discord.Thread,
    *,
    since: float,
    before: discord.abc.Snowflake,
    store: RoleplayStore,
    bot_user_id: int,
) -> list[tuple[float, ChannelLine]]:
    """The channel's lines since `since` and before `before`, personas' lines marked as theirs."""
    try:
        messages = await newest_since(channel, since=since, limit=MAX_LINES_PER_CHANNEL, before=before)
    except discord.HTTPException as error:  # no Read Message History: carry on without the past
        log.info("Could not read back channel %s (%s); the persona starts afresh", channel.id, error.status)
        return []
    persona_of = await store.persona_of_messages([m.id for m in messages if m.webhook_id is not None])
    lines = []
    for message in messages:
        persona_id = persona_of.get(message.id)
        if message.author.id == bot_user_id or (message.webhook_id is not None and persona_id is None):
            continue  # the bot's own notices and other webhooks are not conversation
        line = ChannelLine(
            author_name=message.author.display_name,
            content=message.clean_content,
            persona_id=persona_id,
            author_id=message.author.id,
            message_id=message.id,
        )
        lines.append((message.created_at.timestamp(), line))
    return lines
