"""A server's chat-model tokens today, and the cap on them (ROLEPLAY_DAILY_TOKENS_PER_GUILD).

Every persona turn's tokens are recorded per server, persona and UTC day. Once a server's day
reaches the cap, its personas stay quiet (no model call) until the next UTC day, and each channel
where one would have spoken is told once that day; the database remembers the telling, so a
restart or another process does not tell it again.

The check sits on every reply's path, so the day's total is kept in memory, set from the stored
sum at each record and re-read now and then, so what other processes spent shows too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import discord

from bot.chat.client import ChatModel, TokenUsage
from bot.clock import wall_clock
from bot.errors import UserFacingError
from bot.roleplay.webhooks import Speakable
from storage.natural import utc_day
from storage.notices import ChannelNotices
from storage.usage import UsageStore

log = logging.getLogger(__name__)

TOKEN_CAP_NOTICE = "token_cap"
# The "persona" a server's own model calls are counted under: /scene recap writes for the table, not a persona.
TABLE_TOKENS = 0
SECONDS_PER_DAY = 86400
# How stale the remembered total may get before it is read again: what other bot processes spent.
REREAD_SECONDS = 60.0


def next_utc_day(now: float) -> int:
    """When the UTC day after `now` begins, in seconds since the epoch."""
    return (int(now) // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY


def cap_notice(cap: int, now: float) -> str:
    """What a channel is told when its server's personas have spent today's tokens."""
    back = next_utc_day(now)
    return (
        f"🪫 Personas here have used today's {cap:,} tokens for this server, so they stay quiet until the "
        f"new day (UTC) at <t:{back}:t>, <t:{back}:R>. `/roleplay status` shows the count."
    )


@dataclass
class _Today:
    day: str
    tokens: int
    read_at: float


class TokenMeter:
    def __init__(
        self,
        usage: UsageStore,
        notices: ChannelNotices,
        *,
        daily_cap: int,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._usage = usage
        self._notices = notices
        self.cap = daily_cap or None  # 0: no cap
        self._clock = clock
        self._today: dict[int, _Today] = {}  # guild id -> its total today, as last known

    async def spent_today(self, guild_id: int) -> int:
        """The server's tokens today (UTC), all personas together."""
        now = self._clock()
        day = utc_day(now)
        known = self._today.get(guild_id)
        if known is None or known.day != day or now - known.read_at >= REREAD_SECONDS:
            known = _Today(day, await self._usage.guild_tokens(guild_id, day), now)
            self._today[guild_id] = known
        return known.tokens

    async def by_persona(self, guild_id: int) -> dict[int, int]:
        """persona id -> its tokens today in this server, most first."""
        return await self._usage.by_persona(guild_id, utc_day(self._clock()))

    async def allows(self, channel: Speakable) -> bool:
        """Whether a persona may call the model in `channel` now; at the cap, the channel is told once a day."""
        if self.cap is None or await self.spent_today(channel.guild.id) < self.cap:
            return True
        now = self._clock()
        if await self._notices.claim(channel_id=channel.id, day=utc_day(now), kind=TOKEN_CAP_NOTICE):
            log.info("Server %s reached its %s tokens today; told channel %s", channel.guild.id, self.cap, channel.id)
            with contextlib.suppress(discord.HTTPException):  # told or not, the personas stay quiet
                await channel.send(cap_notice(self.cap, now))
        return False

    async def check_room(self, guild_id: int) -> None:
        """Refuse a command that would call the model (regenerate, recap) once the server is at its cap."""
        if self.cap is not None and await self.spent_today(guild_id) >= self.cap:
            back = next_utc_day(self._clock())
            raise UserFacingError(
                f"This server has used today's {self.cap:,} chat-model tokens; the model answers again at "
                f"<t:{back}:t> (UTC midnight). `/roleplay status` shows the count."
            )

    async def record(self, guild_id: int, persona_id: int, usage: TokenUsage | None) -> None:
        """Count a turn's tokens (None: the model refused it, nothing was spent)."""
        if usage is None or usage.total_tokens <= 0:
            return
        now = self._clock()
        day = utc_day(now)
        tokens = usage.total_tokens
        total = await self._usage.add_tokens(guild_id=guild_id, persona_id=persona_id, day=day, tokens=tokens)
        self._today[guild_id] = _Today(day, total, now)

    async def prune(self, *, before_day: str) -> int:
        """Forget the counts of days before `before_day`."""
        return await self._usage.prune(before_day=before_day)


async def whole_reply(
    chat: ChatModel,
    messages: list[dict[str, str]],
    *,
    max_tokens: int | None,
    meter: TokenMeter | None,
    guild_id: int,
    persona_id: int,
) -> str:
    """The model's whole reply, read to its end; its tokens counted towards the server's day whether it
    ends or fails (a reply cut short was paid for too). Raises ChatModelError as the model fails."""
    reply = chat.stream_reply(messages, max_tokens=max_tokens)
    try:
        return "".join([delta async for delta in reply])
    finally:
        if meter is not None:
            await meter.record(guild_id, persona_id, reply.usage)


def usage_line(spent: int, cap: int | None) -> str:
    """/roleplay status's line on the server's tokens today."""
    if cap is None:
        return f"Chat model today (UTC): {spent:,} tokens in this server (no daily cap)."
    return f"Chat model today (UTC): {spent:,} of {cap:,} tokens in this server."
