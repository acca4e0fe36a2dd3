"""/scene: a channel's scene, its narrator, recaps and transcripts, as the table sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import pytest
import simcord

from tests.conftest import World
from tests.test_roleplay import persona_messages, start

TAVERN = "The Rusty Anchor, a harbour tavern at midnight.\nRain hammers the shutters; a stranger waits by the fire."


def callbacks(world: World) -> list[Any]:
    """What the bot answered to interactions, as sent to Discord."""
    return [r for r in world.env.http_requests if r.path.startswith("/interactions/") and r.method == "POST"]


def system_prompt(world: World, request: int = -1) -> str:
    return str(world.chat.requests[request].messages[0]["content"])


async def scene_rows(world: World) -> list[dict[str, Any]]:
    return await world.rows("SELECT channel_id, guild_id, text, set_by FROM channel_scenes ORDER BY channel_id")


async def recap_rows(world: World) -> list[dict[str, Any]]:
    return await world.rows("SELECT channel_id, guild_id, text, written_by FROM channel_recaps ORDER BY channel_id")


@dataclass
class OtherServer:
    guild: Any
    channel: Any
    admin: Any


def other_server(world: World) -> OtherServer:
    guild = world.env.create_guild(name="Elsewhere")
    channel = guild.create_text_channel("general")
    owners = guild.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    return OtherServer(guild, channel, guild.add_member(world.env.create_user("mallory"), roles=[owners]))


# --- Setting, showing and clearing ---------------------------------------------------------------


async def test_setting_a_scene_tells_the_channel_who_set_it_and_pings_nobody(world: World) -> None:
    result = await world.admin.slash(world.channel, "scene set", text=TAVERN)

    assert not result.ephemeral
    assert result.response.content == (
        f"🎬 Scene set by {world.admin.mention}: The Rusty Anchor, a harbour tavern at midnight.…"
    )
    assert callbacks(world)[-1].json["data"]["allowed_mentions"] == {"parse": []}
    assert await scene_rows(world) == [
        {"channel_id": world.channel.id, "guild_id": world.guild.id, "text": TAVERN, "set_by": world.admin.id}
    ]


async def test_changing_the_scene_says_so_and_show_gives_it_privately(world: World) -> None:
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    changed = await world.admin.slash(world.channel, "scene set", text="Dawn on the docks. The stranger is gone.")
    shown = await world.alice.slash(world.channel, "scene show")

    assert changed.response.content.startswith(f"🎬 Scene changed by {world.admin.mention}: Dawn on the docks.")
    assert shown.ephemeral
    [embed] = shown.response.embeds
    assert "Dawn on the docks. The stranger is gone." in embed.description
    assert "Rusty Anchor" not in embed.description
    assert [row["text"] for row in await scene_rows(world)] == ["Dawn on the docks. The stranger is gone."]


async def test_show_without_a_scene_says_there_is_none(world: World) -> None:
    shown = await world.alice.slash(world.channel, "scene show")

    assert shown.ephemeral
    assert shown.response.content == "No scene is set here. Set one with `/scene set`."


async def test_scene_set_without_text_opens_a_form_holding_the_current_scene(world: World) -> None:
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    form = await world.admin.slash(world.channel, "scene set")
    [row] = form.modal["components"]
    [text_input] = row["components"]
    submitted = await world.admin.submit_modal(form, {"scene": TAVERN + "\nThe stranger stands up."})

    assert text_input["value"] == TAVERN
    assert text_input["max_length"] == 2000
    assert text_input["style"] == discord.TextStyle.paragraph.value
    assert submitted.response.content.startswith(f"🎬 Scene changed by {world.admin.mention}: The Rusty Anchor")
    assert [row["text"] for row in await scene_rows(world)] == [TAVERN + "\nThe stranger stands up."]


async def test_clearing_the_scene_tells_the_channel_and_leaves_nothing_stored(world: World) -> None:
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    cleared = await world.admin.slash(world.channel, "scene clear")
    again = await world.admin.slash(world.channel, "scene clear")

    assert not cleared.ephemeral
    assert cleared.response.content == f"🎬 Scene cleared by {world.admin.mention}."
    assert again.ephemeral and again.response.content == "There is no scene or recap here to clear."
    assert await scene_rows(world) == []
    assert world.refusals() == ["There is no scene or recap here to clear."]


async def test_a_scene_longer_than_the_bound_is_refused_by_the_command_itself(world: World) -> None:
    with pytest.raises(simcord.OptionError, match="at most 2000 characters"):
        await world.admin.slash(world.channel, "scene set", text="x" * 2001)

    assert await scene_rows(world) == []


async def test_members_who_may_not_start_roleplay_cannot_set_clear_or_recap(world: World) -> None:
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    set_ = await world.alice.slash(world.channel, "scene set", text="A coup: Alice rules the tavern.")
    form = await world.alice.slash(world.channel, "scene set")
    cleared = await world.alice.slash(world.channel, "scene clear")
    recap = await world.alice.slash(world.channel, "scene recap")

    assert form.modal is None
    for result in (set_, form, cleared, recap):
        assert result.ephemeral
        assert "Only members who may start roleplay can" in result.response.content
        assert "Manage Server" in result.response.content
    assert [row["text"] for row in await scene_rows(world)] == [TAVERN]
    assert len(world.refusals()) == 4


async def test_members_with_the_roleplay_role_may_set_the_scene(world: World) -> None:
    players = world.guild.create_role("Players")
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[players])
    await world.admin.slash(world.channel, "roleplay role", role=players)

    result = await carol.slash(world.channel, "scene set", text=TAVERN)

    assert not result.ephemeral
    assert [row["set_by"] for row in await scene_rows(world)] == [carol.id]


# --- What the personas see -----------------------------------------------------------------------


async def test_every_persona_here_sees_the_scene_and_its_change_at_once(world: World) -> None:
    await world.make_persona("Sam")
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    await start(world)
    greeting_prompt = system_prompt(world)
    await world.admin.slash(world.channel, "scene set", text="Dawn on the docks.")
    await world.alice.send(world.channel, "Sam, what now?")

    assert f"The scene: {TAVERN}" in greeting_prompt
    assert "The scene: Dawn on the docks." in system_prompt(world)
    assert "Rusty Anchor" not in system_prompt(world)


async def test_the_scene_survives_a_restart(world: World) -> None:
    await world.make_persona("Sam")
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    await start(world)

    await world.restart()
    await world.alice.send(world.channel, "Sam, who is the stranger?")
    shown = await world.alice.slash(world.channel, "scene show")

    assert f"The scene: {TAVERN}" in system_prompt(world)
    assert TAVERN in shown.response.embeds[0].description


async def test_a_cleared_scene_is_gone_from_the_next_turn(world: World) -> None:
    await world.make_persona("Sam")
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    await start(world)

    await world.admin.slash(world.channel, "scene clear", what="scene")
    await world.alice.send(world.channel, "Sam?")

    assert "The scene:" not in system_prompt(world)


# --- The narrator --------------------------------------------------------------------------------


async def test_a_narrator_stays_silent_until_named_or_called(world: World) -> None:
    await world.make_persona("Moira")

    joined = await start(world, persona="Moira", mode="narrator")
    await world.alice.send(world.channel, "we walk into the tavern")
    await world.alice.send(world.channel, f"{world.bot.user.mention} anyone here?")
    assert persona_messages(world) == []  # no greeting without a scene, no answer unasked
    assert world.chat.requests == []

    world.chat.script_reply("The fire gutters as the door swings open.")
    await world.alice.send(world.channel, "Moira, what do we see?")

    assert "/scene narrate" in joined.response.content
    [line] = persona_messages(world)
    assert (line.author.name, line.content) == ("Moira", "The fire gutters as the door swings open.")
    prompt = system_prompt(world)
    assert "You are Moira, the narrator and game master of this story." in prompt
    assert "never speak or act for the players' characters" in prompt
    assert "Reply as Moira only" not in prompt


async def test_scene_narrate_gives_the_narrator_a_turn_with_what_should_happen(world: World) -> None:
    await world.make_persona("Moira")
    await start(world, persona="Moira", mode="narrator")
    world.chat.script_reply("Thunder. The shutters burst open.")

    called = await world.alice.slash(world.channel, "scene narrate", what="A storm breaks over the harbour")

    assert world.refusals() == [
        "Only whoever brought the narrator in, or a member who may start roleplay, can call on it."
    ]
    assert called.ephemeral and persona_messages(world) == []

    called = await world.admin.slash(world.channel, "scene narrate", what="A storm breaks over the harbour")

    assert not called.ephemeral
    assert called.response.content == f"🎲 {world.admin.mention} calls on **Moira**: “A storm breaks over the harbour”"
    assert [m.content for m in persona_messages(world)] == ["Thunder. The shutters burst open."]
    last_turn = world.chat.requests[-1].messages[-1]
    assert last_turn["role"] == "user"
    assert last_turn["content"].endswith("(What should happen now: A storm breaks over the harbour)")


async def test_scene_narrate_without_direction_asks_for_what_happens_next(world: World) -> None:
    await world.make_persona("Moira")
    await start(world, persona="Moira", mode="narrator")

    await world.admin.slash(world.channel, "scene narrate")

    assert (
        world.chat.requests[-1]
        .messages[-1]["content"]
        .endswith("(What should happen now: Describe what happens next.)")
    )


async def test_a_narrator_opens_the_scene_the_channel_has(world: World) -> None:
    await world.make_persona("Moira")
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    world.chat.script_reply("Midnight at the Rusty Anchor. The stranger looks up.")

    await start(world, persona="Moira", mode="narrator")

    assert [m.content for m in persona_messages(world)] == ["Midnight at the Rusty Anchor. The stranger looks up."]
    [request] = world.chat.requests
    assert f"The scene: {TAVERN}" in request.messages[0]["content"]
    assert "Open the scene for the players" in request.messages[-1]["content"]
    assert "Greet everyone" not in request.messages[-1]["content"]


async def test_next_to_an_always_persona_the_narrator_still_waits_to_be_called(world: World) -> None:
    await world.make_persona("Moira")
    await world.make_persona("Sam")
    await start(world, persona="Moira", mode="narrator")
    await start(world, persona="Sam", mode="always")
    world.chat.script_reply("Sam shrugs.")

    await world.alice.send(world.channel, "so what do we do?")

    assert [m.author.name for m in persona_messages(world)] == ["Sam", "Sam"]  # greeting, then the answer


async def test_scene_narrate_without_a_narrator_here_is_refused(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, persona="Sam")

    result = await world.admin.slash(world.channel, "scene narrate", what="A storm")

    assert result.ephemeral
    assert "No narrator is speaking here" in result.response.content
    assert "mode:narrator" in result.response.content
    assert len(persona_messages(world)) == 1  # Sam's greeting only
    world.refusals()


# --- Recaps --------------------------------------------------------------------------------------


async def play_a_session(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Evening. Sit by the fire.")
    await start(world)
    await world.alice.send(world.channel, "I order an ale and ask about the stranger")
    world.chat.script_reply("He came in on the night ferry, asking for a map.")
    await world.alice.send(world.channel, "Sam, who is he?")
    await world.admin.slash(world.channel, "roleplay stop")


RECAP = "Alice reached the Rusty Anchor, where Sam told her of a stranger off the night ferry, hunting a map."


async def test_a_recap_is_posted_kept_and_given_to_the_next_session(world: World) -> None:
    await play_a_session(world)
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    world.chat.script_reply(RECAP)

    recap = await world.admin.slash(world.channel, "scene recap")

    assert not recap.ephemeral
    assert recap.response.content == f"📜 **Previously in {world.channel.mention}…**\n{RECAP}"
    assert await recap_rows(world) == [
        {"channel_id": world.channel.id, "guild_id": world.guild.id, "text": RECAP, "written_by": world.admin.id}
    ]
    asked = world.chat.requests[-1].messages
    assert "Previously on…" in asked[0]["content"] and f"The scene: {TAVERN}" in asked[0]["content"]
    assert asked[1]["content"].splitlines()[1:] == [
        "Sam (character): Evening. Sit by the fire.",
        "alice: I order an ale and ask about the stranger",
        "alice: Sam, who is he?",
        "Sam (character): He came in on the night ferry, asking for a map.",
    ]

    await world.restart()  # next week
    await start(world)

    assert f"Previously: {RECAP}" in system_prompt(world)
    shown = await world.alice.slash(world.channel, "scene show")
    assert RECAP in shown.response.embeds[0].description


async def test_clearing_only_the_recap_keeps_the_scene(world: World) -> None:
    await play_a_session(world)
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    world.chat.script_reply(RECAP)
    await world.admin.slash(world.channel, "scene recap")

    cleared = await world.admin.slash(world.channel, "scene clear", what="recap")

    assert cleared.response.content == f"🎬 Recap cleared by {world.admin.mention}."
    assert await recap_rows(world) == []
    assert [row["text"] for row in await scene_rows(world)] == [TAVERN]


async def test_recap_in_a_channel_that_never_had_a_session_says_so(world: World) -> None:
    result = await world.admin.slash(world.channel, "scene recap")

    assert result.ephemeral
    assert result.response.content == "No persona has spoken in this channel yet, so there is no session to recap."
    assert world.chat.requests == []
    world.refusals()


@pytest.mark.parametrize("settings_overrides", [{"chat_model_base_url": None, "chat_model_name": None}])
async def test_recap_without_a_chat_model_says_how_to_set_one_up(world: World) -> None:
    result = await world.admin.slash(world.channel, "scene recap")

    assert result.ephemeral
    assert "CHAT_MODEL_BASE_URL" in result.response.content
    world.refusals()


async def test_a_recap_the_model_fails_to_write_is_told_and_keeps_the_old_one(world: World) -> None:
    await play_a_session(world)
    world.chat.script_reply(RECAP)
    await world.admin.slash(world.channel, "scene recap")
    world.chat.fail_next(503)

    result = await world.admin.slash(world.channel, "scene recap")

    assert result.response.content.startswith("No recap this time. The chat model is unavailable right now")
    assert [row["text"] for row in await recap_rows(world)] == [RECAP]
    world.refusals()


# --- Export --------------------------------------------------------------------------------------


async def test_export_gives_the_session_as_markdown_with_personas_marked(world: World) -> None:
    await world.alice.send(world.channel, "before the game: anyone seen my dice?")
    await world.env.advance_time(60)
    await play_a_session(world)
    await world.admin.slash(world.channel, "scene set", text=TAVERN)

    result = await world.bob.slash(world.channel, "scene export")

    assert result.ephemeral
    assert result.response.content == f"📄 The session in {world.channel.mention}: 4 messages."
    [file] = result.response.attachments
    assert file.filename.startswith("general-") and file.filename.endswith(".md")
    markdown = (await file.read()).decode()
    assert markdown.startswith("# #general · Game Night\n")
    assert f"**Scene:** {TAVERN}" in markdown
    assert "**Sam** *(persona)* · " in markdown and "> Evening. Sit by the fire." in markdown
    assert "**alice** · " in markdown and "> I order an ale and ask about the stranger" in markdown
    assert "dice" not in markdown  # said before the session began
    assert "Scene set by" not in markdown and "joins" not in markdown  # the bot's own notices are not the story
    assert markdown.index("Evening.") < markdown.index("I order an ale") < markdown.index("night ferry")


async def test_export_of_a_channel_without_a_session_says_so(world: World) -> None:
    result = await world.bob.slash(world.channel, "scene export")

    assert result.ephemeral
    assert result.response.content == "No persona has spoken in this channel yet, so there is no session to export."
    assert result.response.attachments == []
    world.refusals()


# --- Other servers -------------------------------------------------------------------------------


async def test_a_member_of_another_server_neither_sees_nor_changes_this_channels_scene(world: World) -> None:
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    other = other_server(world)

    shown = await other.admin.slash(other.channel, "scene show")
    cleared = await other.admin.slash(other.channel, "scene clear")
    await other.admin.slash(other.channel, "scene set", text="A space station.")

    assert shown.response.content == "No scene is set here. Set one with `/scene set`."
    assert cleared.response.content == "There is no scene or recap here to clear."
    assert await scene_rows(world) == [
        {"channel_id": world.channel.id, "guild_id": world.guild.id, "text": TAVERN, "set_by": world.admin.id},
        {
            "channel_id": other.channel.id,
            "guild_id": other.guild.id,
            "text": "A space station.",
            "set_by": other.admin.id,
        },
    ]
    assert TAVERN in (await world.alice.slash(world.channel, "scene show")).response.embeds[0].description
    world.refusals()


async def test_another_servers_session_is_neither_recapped_nor_exported(world: World) -> None:
    await play_a_session(world)
    other = other_server(world)

    recap = await other.admin.slash(other.channel, "scene recap")
    export = await other.admin.slash(other.channel, "scene export")

    assert "no session to recap" in recap.response.content
    assert "no session to export" in export.response.content
    assert export.response.attachments == []
    assert await recap_rows(world) == []
    assert len(world.refusals()) == 2


async def test_a_narrator_of_another_server_cannot_be_used(world: World) -> None:
    await world.make_persona("Moira")
    await start(world, persona="Moira", mode="narrator")
    other = other_server(world)

    narrate = await other.admin.slash(other.channel, "scene narrate", what="A storm")
    bring_in = await other.admin.slash(other.channel, "roleplay as", persona="Moira", mode="narrator")

    assert "No narrator is speaking here" in narrate.response.content
    assert "no persona called “Moira”" in bring_in.response.content
    assert persona_messages(world) == [] and persona_messages(world, other.channel) == []
    assert world.chat.requests == []
    assert len(world.refusals()) == 2


async def test_after_the_last_persona_leaves_no_scene_is_kept_in_memory(world: World) -> None:
    await world.make_persona("Sam")
    await world.admin.slash(world.channel, "scene set", text=TAVERN)
    await start(world)
    assert world.bot.roleplay.scenes.channels() == {world.channel.id}  # read once, then from memory

    await world.admin.slash(world.channel, "roleplay stop")

    assert world.bot.roleplay.held_channels() == set()
    assert [row["text"] for row in await scene_rows(world)] == [TAVERN]  # stored, for the next session
