"""A channel's roleplay session as Discord holds it: who said what and when, personas' lines marked.

`/scene recap` and `/scene export` read it from the channel's history rather than from the
transcript in memory, so both work after the personas have left and after a restart.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot.errors import UserFacingError
from bot.roleplay.backfill import newest_since
from storage.roleplay import RoleplayStore
from storage.scenes import SessionSpan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedLine:
    at: datetime.datetime
    author_name: str
    content: str
    persona: bool  # said by a persona through the bot's webhook


@dataclass(frozen=True)
class SessionLog:
    lines: list[LoggedLine]
    started_at: float
    cut: bool  # older lines of the session were left out to keep within the limit


def session_start(spans: Sequence[SessionSpan]) -> float | None:
    """When the channel's current (or last) session began; None if the channel never had one.

    Personas join and leave at different times: the session is the last stretch in which some
    persona was always present, so overlapping sessions count as one, from the first start.
    """
    if not spans:
        return None

    def end(span: SessionSpan) -> float:
        return math.inf if span.ended_at is None else span.ended_at

    start = max(spans, key=end).started_at
    for span in sorted(spans, key=lambda span: span.started_at, reverse=True):
        if span.started_at < start <= end(span):
            start = span.started_at
    return start


async def read_session(
    channel: discord.TextChannel | discord.Thread,
    *,
    since: float,
    limit: int,
    store: RoleplayStore,
    bot_user_id: int,
) -> SessionLog:
    """The session's last `limit` messages of members and personas, oldest first.

    The bot's own notices and other integrations' webhooks are not the story and are left out.
    """
    try:
        messages = await newest_since(channel, since=since, limit=limit)
    except discord.HTTPException as error:
        log.info("Could not read the history of channel %s (%s)", channel.id, error.status)
        raise UserFacingError(
            "I cannot read this channel's history. Give me the Read Message History permission here."
        ) from None
    cut = len(messages) >= limit
    persona_of = await store.persona_of_messages([m.id for m in messages if m.webhook_id is not None])
    lines = []
    for message in messages:
        is_persona = message.id in persona_of
        if message.author.id == bot_user_id or (message.webhook_id is not None and not is_persona):
            continue
        if message.created_at.timestamp() < since:
            continue
        lines.append(LoggedLine(message.created_at, message.author.display_name, message.clean_content, is_persona))
    return SessionLog(lines, since, cut)
