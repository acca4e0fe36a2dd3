"""Cost and content guards: token usage per server per day and its cap; talkativeness and NSFW personas."""

from __future__ import annotations

import json
import os
from typing import Any

import discord
import pytest

from bot.roleplay.token_meter import next_utc_day
from storage.natural import utc_day
from tests.conftest import World

CAPPED = {"roleplay_daily_tokens_per_guild": 100, "roleplay_idle_minutes": 5000}


def persona_messages(world: World, channel: Any = None) -> list[Any]:
    return [m for m in (channel or world.channel).history() if m.webhook_id is not None]


def bot_notices(world: World, channel: Any = None) -> list[str]:
    return [m.content for m in (channel or world.channel).history() if m.webhook_id is None and m.author.bot]


def cap_notices(world: World, channel: Any = None) -> list[str]:
    return [text for text in bot_notices(world, channel) if text.startswith("🪫")]


def age_restrict(world: World, channel: Any) -> None:
    """Mark `channel` age-restricted as the bot sees it (simcord does not model the flag; Discord sends it
    in the channel's data, which discord.py keeps as `nsfw`)."""
    cached = world.bot.get_channel(channel.id)
    assert isinstance(cached, discord.TextChannel)
    cached.nsfw = True


async def start(world: World, persona: str = "Sam", channel: Any = None, **options: Any) -> Any:
    return await world.admin.slash(channel or world.channel, "roleplay as", persona=persona, **options)


async def persona_row(world: World, name: str = "Sam") -> dict[str, Any]:
    [row] = [row for row in await world.personas() if row["name"] == name]
    return row


# --- Token usage ----------------------------------------------------------------------------------


async def test_each_turns_tokens_are_stored_for_its_server_and_day_and_shown_in_status(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(120, 30))
    await start(world)
    world.chat.script_reply("Lantern's up.", usage=(200, 40))

    await world.alice.send(world.channel, "Sam, ready?")

    sam = await persona_row(world)
    rows = await world.rows("SELECT guild_id, persona_id, day, tokens FROM chat_usage")
    today = utc_day(world.env.now().timestamp())
    assert rows == [{"guild_id": world.guild.id, "persona_id": sam["id"], "day": today, "tokens": 390}]
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "Chat model today (UTC): 390 of 500,000 tokens in this server." in status.response.content


async def test_a_servers_token_usage_never_shows_in_another_server(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(120, 30))
    await start(world)
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    status = await carol.slash(lobby, "roleplay status")

    assert "No persona is speaking here" in status.response.content
    assert "Chat model today (UTC): 0 of 500,000 tokens in this server." in status.response.content
    here = await world.alice.slash(world.channel, "roleplay status")
    assert "150 of 500,000 tokens" in here.response.content


@pytest.mark.parametrize("settings_overrides", [{"roleplay_daily_tokens_per_guild": 0}])
async def test_without_a_cap_usage_is_still_counted_and_status_says_there_is_no_cap(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi.", usage=(5_000, 1_000))
    await start(world)

    status = await world.alice.slash(world.channel, "roleplay status")

    assert "6,000 tokens in this server (no daily cap)" in status.response.content


@pytest.mark.parametrize("settings_overrides", [CAPPED])
async def test_at_the_token_cap_the_channel_is_told_once_even_after_a_restart_and_the_model_is_not_called(
    world: World,
) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(90, 20))  # 110 tokens: past the cap of 100
    await start(world)

    await world.alice.send(world.channel, "Sam, you there?")
    await world.bob.send(world.channel, "sam??")

    assert len(world.chat.requests) == 1  # the greeting only: no model call at the cap
    [notice] = cap_notices(world)
    assert notice.startswith("🪫 Personas here have used today's 100 tokens for this server")
    back = next_utc_day(world.env.now().timestamp())
    assert f"<t:{back}:t>" in notice
    assert [m.content for m in persona_messages(world)] == ["Hi, I'm Sam."]
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "110 of 100 tokens" in status.response.content

    await world.restart()
    await world.alice.send(world.channel, "Sam, after the restart?")

    assert len(world.chat.requests) == 1
    assert len(cap_notices(world)) == 1  # told once a day, restart or not
    assert await world.rows("SELECT kind FROM channel_notices WHERE channel_id = ?", world.channel.id) == [
        {"kind": "token_cap"}
    ]


# A virtual day's timers on PostgreSQL take simcord minutes of real time to settle; the stored
# usage this relies on is tested on both backends in tests/test_usage_store.py.
@pytest.mark.skipif(os.environ.get("TEST_DATABASE") == "postgresql", reason="a virtual day is too slow on PostgreSQL")
@pytest.mark.parametrize("settings_overrides", [CAPPED])
async def test_personas_capped_today_speak_again_the_next_utc_day(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(90, 20))
    await start(world)
    await world.alice.send(world.channel, "Sam, you there?")
    assert len(world.chat.requests) == 1

    now = world.env.now().timestamp()
    await world.wait(next_utc_day(now) - now + 1, step=600)
    world.chat.script_reply("Morning, all.", usage=(10, 2))
    await world.alice.send(world.channel, "Sam, good morning")

    assert persona_messages(world)[-1].content == "Morning, all."
    assert len(world.chat.requests) == 2
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "12 of 100 tokens" in status.response.content  # a new day's count


@pytest.mark.parametrize("settings_overrides", [CAPPED])
async def test_the_cap_is_per_server_and_each_channel_of_it_is_told_once(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(90, 20))
    await start(world)
    side = world.guild.create_text_channel("side")
    await start(world, channel=side)  # its greeting meets the cap
    await world.alice.send(world.channel, "Sam?")
    assert len(world.chat.requests) == 1
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    carol = other.add_member(world.env.create_user("carol"), roles=[owners])
    await carol.slash(lobby, "enhance", sketch="Mira is a tavern keeper.", name="Mira")
    await world.env.advance_time(15)
    world.chat.script_reply("Welcome in.", usage=(10, 5))

    await carol.slash(lobby, "roleplay as", persona="Mira")

    assert len(cap_notices(world, side)) == len(cap_notices(world)) == 1
    assert [m.content for m in persona_messages(world, lobby)] == ["Welcome in."]  # another server: not capped
    assert not cap_notices(world, lobby)


# --- Talkativeness and NSFW, through /persona edit ------------------------------------------------


async def test_talkativeness_and_nsfw_are_set_with_persona_edit_stored_and_shown(world: World) -> None:
    await world.make_persona("Sam")

    result = await world.alice.slash(world.channel, "persona edit", name="Sam", talkativeness=80, nsfw=True)

    assert not result.ephemeral
    assert "talkativeness 80/100 · 🔞 NSFW" in result.response.content
    sam = await persona_row(world)
    assert (sam["talkativeness"], sam["nsfw"]) == (80, 1)
    shown = await world.alice.slash(world.channel, "persona show", name="Sam")
    [field] = [f for f in shown.response.embeds[0].fields if f.name == "Talkativeness"]
    assert field.value == "80/100 · 🔞 NSFW: age-restricted channels only"

    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=False)

    sam = await persona_row(world)
    assert (sam["talkativeness"], sam["nsfw"]) == (80, 0)  # the option not given is kept
    await world.restart()
    shown = await world.alice.slash(world.channel, "persona show", name="Sam")
    [field] = [f for f in shown.response.embeds[0].fields if f.name == "Talkativeness"]
    assert field.value == "80/100"


async def test_persona_edit_without_traits_still_opens_the_form(world: World) -> None:
    await world.make_persona("Sam")

    form = await world.alice.slash(world.channel, "persona edit", name="Sam")
    await world.alice.submit_modal(form, {"name": "Sam", "prompt": "You are Sam, terse."})

    sam = await persona_row(world)
    assert (sam["system_prompt"], sam["talkativeness"], sam["nsfw"]) == ("You are Sam, terse.", 50, 0)


async def test_talkativeness_outside_0_to_100_is_refused_by_discord(world: World) -> None:
    await world.make_persona("Sam")

    with pytest.raises(Exception, match="100"):
        await world.alice.slash(world.channel, "persona edit", name="Sam", talkativeness=101)

    assert (await persona_row(world))["talkativeness"] == 50


async def test_only_the_creator_or_manage_server_may_set_traits(world: World) -> None:
    await world.make_persona("Sam")

    result = await world.bob.slash(world.channel, "persona edit", name="Sam", nsfw=True)

    assert result.ephemeral
    assert "Only whoever made “Sam”" in result.response.content
    assert (await persona_row(world))["nsfw"] == 0
    world.refusals()


async def test_another_servers_persona_cannot_be_edited_from_here(world: World) -> None:
    await world.make_persona("Sam")
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    mallory = other.add_member(world.env.create_user("mallory"), roles=[owners])

    result = await mallory.slash(lobby, "persona edit", name="Sam", talkativeness=0, nsfw=True)

    assert result.ephemeral
    assert "no persona called “Sam”" in result.response.content
    sam = await persona_row(world)
    assert (sam["talkativeness"], sam["nsfw"]) == (50, 0)
    world.refusals()


# --- NSFW personas speak only in age-restricted channels -----------------------------------------


async def test_an_nsfw_persona_is_refused_in_an_ordinary_channel_with_the_reason(world: World) -> None:
    await world.make_persona("Sam")
    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=True)

    result = await start(world)

    assert result.ephemeral
    assert "**Sam** is marked NSFW, so it speaks only in age-restricted channels" in result.response.content
    assert world.chat.requests == []
    assert await world.rows("SELECT id FROM roleplay_sessions") == []
    world.refusals()


async def test_an_nsfw_persona_speaks_in_an_age_restricted_channel_and_its_threads(world: World) -> None:
    await world.make_persona("Sam")
    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=True)
    lounge = world.guild.create_text_channel("after-dark")
    await world.env.settle()
    age_restrict(world, lounge)
    created = world.env.backend.create_thread(lounge.id, "late game", world.admin.id)
    await world.env.settle()
    thread = next(t for t in lounge.threads if t.id == created.id)
    world.chat.script_reply("Evening.")

    result = await start(world, channel=lounge)
    await start(world, channel=thread)

    assert not result.ephemeral
    assert next(m.content for m in persona_messages(world, lounge)) == "Evening."
    assert len(world.chat.requests) == 2  # a greeting in the channel and one in its thread


async def test_a_cast_with_an_nsfw_member_does_not_come_into_an_ordinary_channel(world: World) -> None:
    await world.make_persona("Sam")
    await world.enhance(sketch="Jinx is a chaotic ADC main.", name="Jinx")
    await world.env.advance_time(15)
    await world.alice.slash(world.channel, "persona edit", name="Jinx", nsfw=True)
    await world.alice.slash(world.channel, "roleplay as", persona="Sam")  # for comparison: Sam alone may
    sessions_before = await world.rows("SELECT persona_id FROM roleplay_sessions")

    result = await start(world, persona="Jinx")

    assert "**Jinx** is marked NSFW" in result.response.content
    assert await world.rows("SELECT persona_id FROM roleplay_sessions") == sessions_before
    world.refusals()


async def test_a_persona_marked_nsfw_while_it_speaks_in_an_ordinary_channel_leaves_it(world: World) -> None:
    await world.make_persona("Sam")
    lounge = world.guild.create_text_channel("after-dark")
    await world.env.settle()
    age_restrict(world, lounge)
    await start(world)
    await start(world, channel=lounge)
    requests = len(world.chat.requests)

    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=True)
    await world.alice.send(world.channel, "Sam?")

    assert bot_notices(world)[-1] == (
        f"🔞 **Sam** left: it was marked NSFW by {world.alice.mention}, and this channel is not age-restricted."
    )
    assert len(world.chat.requests) == requests  # nothing more said here
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "No persona is speaking here" in status.response.content
    world.chat.script_reply("Still here.")
    await world.alice.send(lounge, "Sam?")
    assert persona_messages(world, lounge)[-1].content == "Still here."  # the age-restricted channel keeps it


@pytest.mark.parametrize("tag", ["nsfw", "NSFW", " Nsfw "])
async def test_a_card_tagged_nsfw_is_imported_as_an_nsfw_persona(world: World, tag: str) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Vex", "description": "A rogue."}}
    card["data"]["tags"] = ["fantasy", tag]

    await world.alice.slash(world.channel, "persona import", card=("vex.json", json.dumps(card).encode()))

    assert (await persona_row(world, "Vex"))["nsfw"] == 1


async def test_a_card_without_the_tag_is_not_nsfw(world: World) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Vex", "tags": ["nsfw-adjacent", "sfw"]}}

    await world.alice.slash(world.channel, "persona import", card=("vex.json", json.dumps(card).encode()))

    assert (await persona_row(world, "Vex"))["nsfw"] == 0


async def test_an_nsfw_persona_exported_and_imported_in_another_server_stays_nsfw(world: World) -> None:
    await world.make_persona("Sam")
    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=True)
    exported = await world.alice.slash(world.channel, "persona export", name="Sam")
    [file] = exported.response.attachments
    data = await file.read()
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    await carol.slash(lobby, "persona import", card=(file.filename, data))

    assert json.loads(data)["data"]["tags"] == ["nsfw"]
    assert [row["nsfw"] for row in await world.personas()] == [1, 1]


async def test_a_card_persona_marked_nsfw_here_stays_nsfw_elsewhere_and_its_card_is_unchanged(world: World) -> None:
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Vex", "description": "A smuggler.", "personality": "", "scenario": "", "first_mes": "Psst.",
        "mes_example": "", "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
        "alternate_greetings": [], "tags": ["fantasy"], "creator": "someone", "character_version": "1",
        "extensions": {},
    }}  # fmt: skip
    await world.alice.slash(world.channel, "persona import", card=("vex.json", json.dumps(card).encode()))
    await world.alice.slash(world.channel, "persona edit", name="Vex", nsfw=True)
    exported = await world.alice.slash(world.channel, "persona export", name="Vex", format="json")
    [file] = exported.response.attachments
    data = await file.read()
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    await carol.slash(lobby, "persona import", card=(file.filename, data))

    assert json.loads(data)["data"]["tags"] == ["fantasy"]  # the card's own tags go back as they came
    here, there = await world.personas()
    assert (here["nsfw"], there["nsfw"]) == (1, 1)
    assert here["card_json"] == there["card_json"]


async def test_an_nsfw_persona_leaves_a_channel_that_stops_being_age_restricted(world: World) -> None:
    await world.make_persona("Sam")
    await world.alice.slash(world.channel, "persona edit", name="Sam", nsfw=True)
    lounge = world.guild.create_text_channel("after-dark")
    await world.env.settle()
    age_restrict(world, lounge)
    await start(world, channel=lounge)
    requests = len(world.chat.requests)
    cached = world.bot.get_channel(lounge.id)
    assert isinstance(cached, discord.TextChannel)
    cached.nsfw = False  # a moderator turned the age restriction off

    await world.alice.send(lounge, "Sam?")

    assert bot_notices(world, lounge)[-1] == (
        "🔞 **Sam** left: it is marked NSFW, and this channel is no longer age-restricted."
    )
    assert len(world.chat.requests) == requests
    [ended] = await world.rows("SELECT end_reason FROM roleplay_sessions")
    assert ended == {"end_reason": "channel not age-restricted"}


# --- Commands that call the model: /scene recap and Regenerate count, and stop at the cap -----------


async def play_until_a_reply(world: World) -> Any:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.", usage=(40, 10))
    await start(world)
    world.chat.script_reply("Lantern's up.", usage=(30, 10))
    await world.alice.send(world.channel, "Sam, ready?")
    return persona_messages(world)[-1]


async def test_a_recap_and_a_regenerated_reply_count_towards_the_servers_tokens(world: World) -> None:
    reply = await play_until_a_reply(world)  # 90 tokens so far
    world.chat.script_reply("Hook first, questions later.", usage=(60, 15))
    await world.admin.context_menu(world.channel, "Regenerate", reply)
    world.chat.script_reply("Previously: Sam said hello and readied his lantern.", usage=(300, 20))

    recap = await world.admin.slash(world.channel, "scene recap")

    assert recap.response.content.startswith("📜")
    sam = await persona_row(world)
    rows = await world.rows("SELECT persona_id, tokens FROM chat_usage ORDER BY persona_id")
    assert rows == [{"persona_id": 0, "tokens": 320}, {"persona_id": sam["id"], "tokens": 165}]
    status = await world.alice.slash(world.channel, "roleplay status")
    lines = status.response.content.splitlines()
    assert "Chat model today (UTC): 485 of 500,000 tokens in this server." in lines
    # Who spent them, most first: the recap is the table's own.
    assert lines[lines.index("Chat model today (UTC): 485 of 500,000 tokens in this server.") + 1 :][:2] == [
        "  ◦ recaps: 320",
        "  ◦ Sam: 165",
    ]


@pytest.mark.parametrize("settings_overrides", [CAPPED])
async def test_at_the_cap_recap_and_regenerate_are_refused_without_a_model_call(world: World) -> None:
    world.chat.script_reply("Hi, I'm Sam.", usage=(90, 20))  # past the cap of 100 with the greeting
    await world.make_persona("Sam")
    await start(world)
    [greeting] = persona_messages(world)
    asked = len(world.chat.requests)

    regenerate = await world.admin.context_menu(world.channel, "Regenerate", greeting)
    recap = await world.admin.slash(world.channel, "scene recap")

    for result in (regenerate, recap):
        assert "used today's 100 chat-model tokens" in result.response.content
    assert len(world.chat.requests) == asked
    assert world.message(greeting.id).content == "Hi, I'm Sam."
    assert await world.rows("SELECT * FROM channel_recaps") == []
    assert len(world.refusals()) == 2
