"""Soak: roleplay sessions started and stopped over and over; does the bot give its memory back?

Runs the real bot in this process against simcord (as the tests do) and the fake chat model on
loopback. Over CHANNELS channels (in ten servers), it starts a persona with `/roleplay as` (which
greets through the channel's webhook: one model call, one post; the greeting comes in one piece, as
a streamed one would wait out the one edit a second in real time) and ends it with
`/roleplay stop`, SESSIONS times round-robin. A warm-up first makes every channel's webhook and
fills every bounded cache; then RSS (/proc/self/statm) is read after a gc.collect() before and after
the measured sessions. Target: under 10 MB of growth, and nothing held in memory for any channel.

The simulator records everything (messages, REST calls, interactions, every id it handed out) and
keeps a real-time timer behind every virtual one the bot cancels: every 100 sessions that record is
trimmed, those timers cancelled and virtual time moved on a minute, so that the growth measured is
the bot's and not simcord's.

"met" is printed only if every session started, greeted and stopped and nothing is held for any
channel or persona; otherwise MISSED, with the counts.

    python -m bench.roleplay_soak [--sessions 10000] [--channels 1000] [--warmup 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import simcord

from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.settings import Settings
from tests.factories import new_persona
from tests.fakes.chat_model import DEFAULT_API_KEY, DEFAULT_MODEL, FakeChatModel, ScriptedReply, serve
from tests.simcord_env import running_on_simcord

GROWTH_TARGET_MB = 10.0
# Every greeting in one piece: a streamed one would wait out Discord's one edit a second in real time.
GREETING = ScriptedReply("Hey all, Sam here. Who's queueing?", chunk_size=1000)
SERVERS = 10
TRIM_EVERY = 100  # sessions between trims of the simulator's own records
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size of this process, from /proc/self/statm (its second field, in pages)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * PAGE_BYTES / 1_000_000


@dataclass
class Counts:
    started: int = 0
    greeted: int = 0  # model calls: one greeting a session
    stopped: int = 0
    refused: int = 0


@dataclass
class Table:
    places: list[tuple[Any, Any]]  # (channel, a member with Manage Server in its server)


def settings_for(folder: Path, chat_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token="simcord-does-not-check-this",
        humalike_token="unused",
        humalike_base_url="http://127.0.0.1:9",  # nothing here calls Humalike
        database_path=folder / "soak.sqlite3",
        chat_model_base_url=chat_url,
        chat_model_name=DEFAULT_MODEL,
        chat_model_api_key=DEFAULT_API_KEY,
        roleplay_channel_cooldown_seconds=0,
        log_level="WARNING",
    )


async def set_the_table(env: simcord.Env, bot: PersonaBot, channels: int) -> Table:
    places = []
    per_guild = -(-channels // SERVERS)
    for number in range(SERVERS):
        guild = env.create_guild(name=f"Soak {number}")
        role = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
        admin = guild.add_member(env.create_user(f"admin{number}"), roles=[role])
        places += [(guild.create_text_channel(f"table-{n}"), admin) for n in range(per_guild)]
        await bot.personas.save_imported(
            new_persona(guild.id, "Sam", created_at=wall_clock(), creator_id=admin.id, creator_name="admin")
        )
    await env.settle()
    return Table(places[:channels])


def trim_the_simulator(env: simcord.Env, chat: FakeChatModel) -> int:
    """Drop simcord's and the fake's records of what already happened (not the bot's memory); the model calls."""
    backend = env.backend
    backend.http_requests.clear()
    backend.transcript.clear()
    backend.interactions.clear()
    backend.interaction_tokens.clear()
    for messages in backend.messages.values():
        messages.clear()
    # Every id handed out is reserved forever; ids can only be handed out from now on, so keep the last second.
    now_ms = int(env.now().timestamp() * 1000) - 1_420_070_400_000
    backend._reserved_ids = {value for value in backend._reserved_ids if (value >> 22) >= now_ms - 1000}
    backend._sequences = {ms: count for ms, count in backend._sequences.items() if ms >= now_ms - 1000}
    calls = len(chat.requests)
    chat.requests.clear()
    cancel_orphaned_real_timers(asyncio.get_running_loop())
    return calls


def cancel_orphaned_real_timers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel simcord's real-time fallbacks of virtual timers the bot already cancelled.

    simcord backs each virtual timer with a real one (`run_real`), which a cancel of the virtual one
    does not reach: every timeout the chat client's HTTP library sets and clears (several a reply)
    would otherwise stay in the loop, with its closure, until its real deadline. Not the bot's memory.
    """
    for handle in list(getattr(loop, "_scheduled", ())):
        callback = handle._callback  # type: ignore[attr-defined]
        if getattr(callback, "__name__", "") != "run_real" or callback.__closure__ is None:
            continue
        cells = dict(zip(callback.__code__.co_freevars, callback.__closure__, strict=True))
        record = cells["record"].cell_contents if "record" in cells else None
        virtual = getattr(record, "handle", None)
        if virtual is not None and virtual.cancelled():
            handle.cancel()


async def run_sessions(
    env: simcord.Env, chat: FakeChatModel, table: Table, sessions: int, counts: Counts, *, first: int = 0
) -> None:
    for number in range(first, first + sessions):
        channel, admin = table.places[number % len(table.places)]
        started = await admin.slash(channel, "roleplay as", persona="Sam")
        if started.ephemeral:
            counts.refused += 1
            continue
        counts.started += 1
        stopped = await admin.slash(channel, "roleplay stop")
        if not stopped.ephemeral:
            counts.stopped += 1
        if number % TRIM_EVERY == TRIM_EVERY - 1:
            await env.advance_time(61)  # time moves on, as it does between real sessions
            counts.greeted += trim_the_simulator(env, chat)
    counts.greeted += trim_the_simulator(env, chat)


async def soak(sessions: int, channels: int, warmup: int) -> None:
    chat = FakeChatModel()
    chat.default_reply = GREETING
    with tempfile.TemporaryDirectory() as folder:
        async with serve(chat):
            assert chat.base_url is not None
            bot = PersonaBot(settings_for(Path(folder), chat.base_url), sync_globally=True)
            try:
                async with running_on_simcord(bot) as env:
                    table = await set_the_table(env, bot, channels)
                    warm = Counts()
                    began = time.perf_counter()
                    await run_sessions(env, chat, table, warmup, warm)
                    gc.collect()
                    before = rss_mb()
                    counts = Counts()
                    await run_sessions(env, chat, table, sessions, counts, first=warmup)
                    gc.collect()
                    after = rss_mb()
                    elapsed = time.perf_counter() - began
                    held_channels = bot.roleplay.held_channels()
                    held_personas = bot.roleplay.held_personas()
                    env.errors.clear()  # refusals, if any, are counted above
            finally:
                await bot.close()
    report(sessions, channels, warmup, warm, counts, before, after, elapsed, held_channels, held_personas)


def report(
    sessions: int,
    channels: int,
    warmup: int,
    warm: Counts,
    counts: Counts,
    before: float,
    after: float,
    elapsed: float,
    held_channels: set[int],
    held_personas: set[int],
) -> None:
    growth = after - before
    print(f"roleplay soak: {sessions:,} sessions over {channels:,} channels in {SERVERS} servers")
    print(f"- warm-up: {warmup:,} sessions ({warm.started:,} started, {warm.stopped:,} stopped)")
    print(
        f"- measured: {counts.started:,} started, {counts.greeted:,} greeted, {counts.stopped:,} stopped, "
        f"{counts.refused:,} refused"
    )
    print(f"- RSS after warm-up {before:.1f} MB, after the sessions {after:.1f} MB: growth {growth:+.1f} MB")
    print(f"- still held in memory: {len(held_channels)} channels, {len(held_personas)} personas")
    print(f"- took {elapsed:.0f} s ({1000 * elapsed / max(1, warmup + sessions):.1f} ms a session)")
    complete = counts.started == counts.greeted == counts.stopped == sessions
    if not complete:
        print(
            f"MISSED (incomplete run: {counts.started:,} of {sessions:,} started, {counts.greeted:,} greeted, "
            f"{counts.stopped:,} stopped, {counts.refused:,} refused)"
        )
        return
    if held_channels or held_personas:
        print(
            f"MISSED ({len(held_channels)} channels and {len(held_personas)} personas still held in memory "
            "after every session ended)"
        )
        return
    verdict = "met" if growth < GROWTH_TARGET_MB else "MISSED"
    print(f"growth under {GROWTH_TARGET_MB:.0f} MB and nothing held: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000, help="sessions before the first reading")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(soak(args.sessions, args.channels, args.warmup))


if __name__ == "__main__":
    main()
