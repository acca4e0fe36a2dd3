"""The day's billable turn-taking calls of a server, and its cap (ROLEPLAY_NATURAL_DAILY_CALLS).

A call is counted before it is made and given back if it was not billed (refused, superseded),
so personas calling at once can never pass the cap together. The day is UTC's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.clock import wall_clock
from storage.natural import NaturalStore, utc_day

CAP_NOTICE = "daily_cap"


class Budget:
    def __init__(
        self,
        store: NaturalStore,
        *,
        daily_calls: int | None,
        capped: Callable[[int], Awaitable[None]],
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._store = store
        self._daily_calls = daily_calls
        self._capped = capped  # told a channel id, the first time that day its server is at the cap there
        self._clock = clock

    def today(self) -> str:
        return utc_day(self._clock())

    async def exhausted(self, guild_id: int, channel_id: int) -> bool:
        """Whether the server's calls today are at the cap (the channel is told, once a day)."""
        if self._daily_calls is None:
            return False
        if await self._store.guild_calls(guild_id, self.today()) < self._daily_calls:
            return False
        await self._tell_once(channel_id)
        return True

    async def reserve(self, guild_id: int, persona_id: int, channel_id: int) -> bool:
        """Count one billable call, unless the server's calls today are at the cap (then tell once)."""
        day = self.today()
        total = await self._store.add_calls(guild_id=guild_id, persona_id=persona_id, day=day)
        if self._daily_calls is None or total <= self._daily_calls:
            return True
        await self._store.add_calls(guild_id=guild_id, persona_id=persona_id, day=day, calls=-1)
        await self._tell_once(channel_id)
        return False

    async def _tell_once(self, channel_id: int) -> None:
        if await self._store.claim_notice(channel_id=channel_id, day=self.today(), kind=CAP_NOTICE):
            await self._capped(channel_id)

    async def refund(self, guild_id: int, persona_id: int) -> None:
        """Give back a reserved call that was not billed after all."""
        await self._store.add_calls(guild_id=guild_id, persona_id=persona_id, day=self.today(), calls=-1)

    async def spent_today(self, guild_id: int) -> tuple[dict[int, int], int | None]:
        """Billable calls today per persona, and the cap (None: no cap)."""
        return await self._store.usage(guild_id, self.today()), self._daily_calls
