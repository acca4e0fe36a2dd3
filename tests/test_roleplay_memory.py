"""Roleplay gives back what it keeps: nothing stays in memory for a channel after its last persona leaves,
and what personas said is remembered in the database only for ROLEPLAY_MESSAGE_RETENTION_DAYS."""

from __future__ import annotations

import pytest

from bot.roleplay.webhooks import WebhookPool
from storage.database import open_database
from storage.natural import utc_day
from storage.roleplay import snowflake_at
from tests.conftest import World
from tests.test_roleplay import persona_messages, start

DAY = 86400.0


def held(world: World) -> tuple[set[int], set[int]]:
    """The channels and the personas roleplay keeps anything in memory for."""
    return world.bot.roleplay.held_channels(), world.bot.roleplay.held_personas()


async def two_personas_talking(world: World) -> None:
    await world.make_persona("Sam")
    await world.enhance(sketch="Jinx is a chaotic ADC main.", name="Jinx")
    await world.env.advance_time(15)
    await start(world, persona="Sam", mode="always")
    await start(world, persona="Jinx")
    await world.alice.send(world.channel, "gg")
    await world.alice.send(world.channel, "jinx, rockets?")
    assert held(world)[0] == {world.channel.id}


async def test_after_stop_nothing_is_kept_in_memory_for_the_channel(world: World) -> None:
    await two_personas_talking(world)

    await world.admin.slash(world.channel, "roleplay stop")

    assert held(world) == (set(), set())


async def test_stopping_one_of_two_personas_lets_go_of_that_persona_only(world: World) -> None:
    await two_personas_talking(world)

    await world.admin.slash(world.channel, "roleplay stop", persona="Jinx")

    [sam] = [p["id"] for p in await world.personas() if p["name"] == "Sam"]
    assert held(world) == ({world.channel.id}, {sam})


@pytest.mark.parametrize("settings_overrides", [{"roleplay_channel_cooldown_seconds": 30}])
async def test_a_turn_that_ends_after_stop_brings_nothing_back(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")  # the greeting starts the cooldown
    await world.alice.send(world.channel, "anyone?")  # its turn waits out the cooldown

    await world.admin.slash(world.channel, "roleplay stop")
    await world.env.advance_time(31)  # the turn comes round after the stop

    assert held(world) == (set(), set())
    assert len(persona_messages(world)) == 1  # only the greeting


async def test_a_reply_still_streaming_when_its_persona_leaves_brings_nothing_back(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    [persona] = await world.personas()

    async def deleted_while_the_model_thinks(seconds: float) -> None:
        await world.bot.personas.delete(persona["id"])  # what /persona delete does, mid-reply
        await world.bot.roleplay.end_persona(persona["id"], by=world.admin)

    world.chat.sleep = deleted_while_the_model_thinks
    world.chat.script_reply("Words that arrive after I left.", first_token_delay=1.0)

    await world.alice.send(world.channel, "Sam?")

    assert persona_messages(world)[-1].content == "Words that arrive after I left."  # the turn did end after
    assert held(world) == (set(), set())


async def test_an_idle_session_leaves_nothing_in_memory(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    await world.alice.send(world.channel, "sam, hi")

    await world.wait(31 * 60)

    assert "left: nobody talked" in world.channel.history()[-1].content
    assert held(world) == (set(), set())


async def test_a_thread_that_stops_lets_go_of_its_parents_webhook_too(world: World) -> None:
    await world.make_persona("Sam")
    created = world.env.backend.create_thread(world.channel.id, "game night", world.admin.id)
    await world.env.settle()
    thread = next(t for t in world.channel.threads if t.id == created.id)
    await world.admin.slash(thread, "roleplay as", persona="Sam")
    await world.alice.send(thread, "sam?")

    await world.admin.slash(thread, "roleplay stop")

    assert held(world) == (set(), set())


async def test_the_webhook_cache_keeps_only_the_most_recently_used_channels(world: World) -> None:
    channels = [world.guild.create_text_channel(f"room-{n}") for n in range(3)]
    await world.env.settle()
    store = world.bot.roleplay_store
    for number, channel in enumerate(channels):
        await store.remember_webhook(channel.id, 1000 + number, f"token-{number}")
    pool = WebhookPool(world.bot, store, cache_size=2)

    for channel in (channels[0], channels[1], channels[0], channels[2]):
        await pool.get(world.bot.get_channel(channel.id))  # type: ignore[arg-type]

    assert pool.channels() == {channels[0].id, channels[2].id}


async def insert_message(world: World, *, message_id: int, created_at: float) -> None:
    database = await open_database(url=world.settings.database_url, path=world.settings.database_path)
    try:
        await database.write(
            "INSERT INTO persona_messages (message_id, channel_id, persona_id, session_id, created_at)"
            " VALUES (?, ?, 1, 1, ?)",
            (message_id, world.channel.id, created_at),
        )
    finally:
        await database.close()


async def remembered_messages(world: World) -> list[int]:
    return [row["message_id"] for row in await world.rows("SELECT message_id FROM persona_messages ORDER BY 1")]


async def test_persona_messages_older_than_the_retention_are_forgotten_at_start_up(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    [greeting] = await remembered_messages(world)
    now = world.env.now().timestamp()
    old = snowflake_at(now - 31 * DAY)
    await insert_message(world, message_id=old, created_at=now - 31 * DAY)
    assert await remembered_messages(world) == [old, greeting]

    await world.restart()

    assert await remembered_messages(world) == [greeting]


@pytest.mark.parametrize("settings_overrides", [{"roleplay_message_retention_days": 0.05}])  # 72 minutes
async def test_persona_messages_are_forgotten_every_hour_once_past_the_retention(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    assert len(await remembered_messages(world)) == 1

    await world.wait(60 * 60)
    assert len(await remembered_messages(world)) == 1  # 60 minutes old: kept

    await world.wait(60 * 60)
    assert await remembered_messages(world) == []


async def test_daily_counts_and_notices_older_than_the_retention_are_forgotten_at_start_up(world: World) -> None:
    now = world.env.now().timestamp()
    today, old = utc_day(now), utc_day(now - 31 * DAY)
    database = await open_database(url=world.settings.database_url, path=world.settings.database_path)
    try:
        guild, channel = world.guild.id, world.channel.id
        for day in (old, today):
            await database.write("INSERT INTO chat_usage VALUES (?, 1, ?, 500)", (guild, day))
            await database.write("INSERT INTO natural_usage VALUES (?, 1, ?, 7)", (guild, day))
            await database.write("INSERT INTO channel_notices VALUES (?, ?, 'token_cap')", (day, channel))
    finally:
        await database.close()

    await world.restart()

    for table in ("chat_usage", "natural_usage", "channel_notices"):
        assert [row["day"] for row in await world.rows(f"SELECT day FROM {table}")] == [today], table
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "500 of 500,000 tokens" in status.response.content  # today's count is untouched
