"""The bot on simcord, as the tests and the in-process benchmarks run it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import simcord

from bot.core import PersonaBot
from bot.enhance.wakeup import Wakeup
from bot.humalike.turn_taking import ThreadSocket
from bot.humalike.turn_taking_models import Event
from tests.simcord_webhooks import application_owned_webhooks


@asynccontextmanager
async def running_on_simcord(bot: PersonaBot, **options: Any) -> AsyncIterator[simcord.Env]:
    """simcord's own runner, with the shard count it needs and the bot's own sleeps declared to it.

    The follower and the lease keeper sleep until their next round, or until news wakes them, on an
    asyncio timer and event of their own (bot/enhance/wakeup.py). simcord takes any wait it does not
    know for work still under way (and lets its timers fire on the real clock), so this one is declared
    as the intentional wait it is: then only the virtual clock (`env.advance_time`) or news ends it.
    """
    if bot.shard_count is None:  # the bot asks Discord how many; simcord must be told
        options.setdefault("shard_count", 1)
    env = simcord.Env(bot, **options)
    sleep = Wakeup.sleep

    async def declared_sleep(wakeup: Wakeup, seconds: float | None) -> None:
        reason = "the bot's own loop sleeps until its next round or news"
        await env.external_wait(sleep(wakeup, seconds), reason=reason)

    Wakeup.sleep = declared_sleep  # type: ignore[method-assign]
    # A natural persona's turn-taking socket waits for the service to push; that is no work under way.
    next_event = ThreadSocket.__anext__

    async def declared_next_event(socket: ThreadSocket) -> Event:
        return await env.external_wait(next_event(socket), reason="a turn-taking socket waits for its next event")

    ThreadSocket.__anext__ = declared_next_event  # type: ignore[method-assign]
    try:
        with application_owned_webhooks():  # the persona webhook's Stop button
            await env.start()
            try:
                yield env
            finally:
                await env.shutdown()
    finally:
        Wakeup.sleep = sleep  # type: ignore[method-assign]
        ThreadSocket.__anext__ = next_event  # type: ignore[method-assign]
