"""A persona from a character card brings its whole character: greetings, lorebook, examples, last words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.cards import read_card_object
from bot.character import DEFAULT_SCAN_DEPTH
from tests.conftest import World
from tests.test_roleplay import persona_messages

DATA = Path(__file__).parent / "data"
SERAPHINA_JSON = (DATA / "seraphina.json").read_bytes()
SERAPHINA_PNG = (DATA / "seraphina.png").read_bytes()
SERAPHINA = json.loads(SERAPHINA_JSON)["data"]
ELDORIA = "Eldoria is an ancient forest of silver-barked trees; its magic answers to Seraphina."
VEIL = "The Veil is the old barrier between Eldoria and the shadow realm; it is thinning."


async def import_seraphina(world: World, member: Any = None, *, channel: Any = None) -> Any:
    result = await (member or world.alice).slash(
        channel or world.channel, "persona import", card=("seraphina.png", SERAPHINA_PNG)
    )
    assert "Imported **Seraphina**" in result.response.content
    return result


async def start_seraphina(world: World, **options: Any) -> Any:
    return await world.admin.slash(world.channel, "roleplay as", persona="Seraphina", **options)


def system_of(request: Any) -> str:
    return request.messages[0]["content"]


# --- greetings ------------------------------------------------------------------------------------


async def test_a_persona_from_a_card_enters_with_its_first_message_not_a_generated_greeting(world: World) -> None:
    await import_seraphina(world)

    result = await start_seraphina(world)

    assert not result.ephemeral
    [greeting] = persona_messages(world)
    assert greeting.author.name == "Seraphina"
    assert greeting.content.startswith("*You wake on a bed of moss.")
    assert "Easy now, ada. You are safe in my glade. I am Seraphina," in greeting.content  # ada started it
    assert "{{" not in greeting.content
    assert world.chat.requests == []  # said as written: the chat model was not asked
    [stored] = await world.rows("SELECT message_id, persona_id FROM persona_messages")
    assert stored["message_id"] == greeting.id


async def test_greeting_2_picks_the_second_alternate_greeting(world: World) -> None:
    await import_seraphina(world)

    await start_seraphina(world, greeting=2)

    [greeting] = persona_messages(world)
    assert greeting.content.startswith("*Rain drums on the leaves. Seraphina holds a wide leaf over your head")
    assert "You picked a wet night to wander, ada." in greeting.content


async def test_the_greeting_is_what_the_persona_remembers_having_said(world: World) -> None:
    await import_seraphina(world)
    await start_seraphina(world, greeting=1)
    world.chat.script_reply("*smiles* Sit, the fire is warm.")

    await world.alice.send(world.channel, "Seraphina, may I sit?")

    [request] = world.chat.requests
    assert request.messages[2]["role"] == "assistant"
    assert request.messages[2]["content"].startswith("*The glade is quiet tonight. Seraphina looks up")


async def test_a_greeting_the_card_does_not_have_is_refused_and_nobody_joins(world: World) -> None:
    await import_seraphina(world)

    result = await start_seraphina(world, greeting=3)

    assert result.ephemeral
    assert "Seraphina has no greeting 3." in result.response.content
    assert "`greeting:1` to `greeting:2` are its alternates" in result.response.content
    assert persona_messages(world) == []
    assert await world.rows("SELECT id FROM roleplay_sessions") == []
    assert len(world.refusals()) == 1


async def test_a_greeting_asked_of_a_persona_without_a_card_is_refused(world: World) -> None:
    await world.make_persona("Sam")

    result = await world.admin.slash(world.channel, "roleplay as", persona="Sam", greeting=1)

    assert result.ephemeral
    assert "Sam has no greetings of its own" in result.response.content
    assert persona_messages(world) == []
    assert len(world.refusals()) == 1


async def test_a_persona_without_a_card_still_greets_in_words_of_the_chat_model(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hey all, Sam here.")

    await world.admin.slash(world.channel, "roleplay as", persona="Sam")

    assert [m.content for m in persona_messages(world)] == ["Hey all, Sam here."]
    assert len(world.chat.requests) == 1


async def test_a_greeting_cannot_reach_a_persona_of_another_server(world: World) -> None:
    await import_seraphina(world)
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    admins = other.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    owner = other.add_member(world.env.create_user("carol"), roles=[admins])

    result = await owner.slash(lobby, "roleplay as", persona="Seraphina", greeting=1)

    assert result.ephemeral
    assert "no persona called “Seraphina”" in result.response.content
    assert [m for m in lobby.history() if m.webhook_id is not None] == []
    assert persona_messages(world) == []
    assert len(world.refusals()) == 1


# --- the lorebook, examples and last words in the prompt ------------------------------------------


async def seraphina_listening(world: World) -> None:
    await import_seraphina(world)
    await start_seraphina(world, mode="always")


async def test_a_constant_lore_entry_is_always_in_the_persona_instructions(world: World) -> None:
    await seraphina_listening(world)

    await world.alice.send(world.channel, "hello")
    await world.bob.send(world.channel, "hi there")

    assert len(world.chat.requests) == 2
    for request in world.chat.requests:
        assert f"What you know of this world:\n{ELDORIA}" in system_of(request)


async def test_a_lore_entry_is_added_when_its_key_is_said_and_dropped_when_out_of_view(world: World) -> None:
    await seraphina_listening(world)

    await world.alice.send(world.channel, "what lies beyond the Veil?")
    said = world.chat.requests[-1]
    # Each message and its answer are two lines: the key stays in view while fewer than the depth follow it.
    for n in range(DEFAULT_SCAN_DEPTH // 2 - 1):
        await world.alice.send(world.channel, f"tell me more ({n})")
    still_in_view = world.chat.requests[-1]
    await world.alice.send(world.channel, "and now?")
    out_of_view = world.chat.requests[-1]

    assert VEIL in system_of(said)
    assert VEIL in system_of(still_in_view)
    assert VEIL not in system_of(out_of_view)
    assert ELDORIA in system_of(out_of_view)


async def test_a_case_sensitive_key_said_otherwise_brings_nothing(world: World) -> None:
    await seraphina_listening(world)

    await world.alice.send(world.channel, "she wore a veil")

    assert VEIL not in system_of(world.chat.requests[-1])


async def test_a_selective_entry_needs_both_of_its_keys_and_a_disabled_one_never_comes(world: World) -> None:
    await seraphina_listening(world)
    amulet = "Seraphina's amulet glows red when shadow beasts come near."

    await world.alice.send(world.channel, "what a pretty amulet. Shadowfang is near!")
    without_glow = system_of(world.chat.requests[-1])
    await world.alice.send(world.channel, "your amulet, why does it glow?")
    with_glow = system_of(world.chat.requests[-1])

    assert amulet not in without_glow and amulet in with_glow
    assert "Shadowfang" not in without_glow + with_glow  # its entry is switched off


async def test_examples_are_in_the_instructions_and_last_words_come_after_the_conversation(world: World) -> None:
    await seraphina_listening(world)

    await world.alice.send(world.channel, "where am I?")

    messages = world.chat.requests[-1].messages
    assert "Examples of how Seraphina speaks:\nalice: Where am I?\nSeraphina: *smiles" in messages[0]["content"]
    last = messages[-1]
    assert last["role"] == "user"
    assert last["content"].index("alice: where am I?") < last["content"].index("Write Seraphina's next reply only.")
    assert last["content"].endswith("never decide what alice does.")


@pytest.mark.parametrize("settings_overrides", [{"roleplay_lore_chars": 0}])
async def test_with_no_lore_budget_no_entry_is_sent(world: World) -> None:
    await seraphina_listening(world)

    await world.alice.send(world.channel, "the Veil?")

    assert "What you know of this world" not in system_of(world.chat.requests[-1])


# --- import, export, show -------------------------------------------------------------------------


async def test_import_keeps_the_whole_card_and_export_writes_it_back_unchanged(world: World) -> None:
    await import_seraphina(world)
    [first] = await world.rows("SELECT card_json FROM personas")
    assert json.loads(first["card_json"]) == SERAPHINA

    # The card came as a PNG, so it goes back as one (its picture is the avatar), card text inside.
    exported = await world.alice.slash(world.channel, "persona export", name="Seraphina")
    [file] = exported.response.attachments
    assert file.filename.endswith(".png")
    png = await file.read()
    card = read_card_object(png, file.filename)
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))
    await carol.slash(lobby, "persona import", card=(file.filename, png))

    assert card["spec"] == "chara_card_v2"
    assert {k: v for k, v in card["data"].items() if k != "extensions"} == {
        k: v for k, v in SERAPHINA.items() if k != "extensions"
    }
    assert card["data"]["extensions"]["depth_prompt"] == SERAPHINA["extensions"]["depth_prompt"]
    original, copy = await world.personas()
    assert copy["card_json"] == original["card_json"]  # byte for byte
    for key in ("name", "system_prompt", "markdown", "fields", "sketch", "grounding", "origin"):
        assert copy[key] == original[key], key
    assert copy["guild_id"] == other.id


async def test_a_renamed_and_edited_card_persona_comes_back_as_it_was_left(world: World) -> None:
    await import_seraphina(world)
    await world.alice.slash(world.channel, "persona rename", name="Seraphina", new_name="Sera")

    exported = await world.alice.slash(world.channel, "persona export", name="Sera")
    [file] = exported.response.attachments
    await world.bob.slash(world.channel, "persona import", card=(file.filename, await file.read()))

    original, copy = await world.personas()
    assert copy["name"] == "Sera (2)"  # the name it was left with, numbered here
    assert copy["system_prompt"] == original["system_prompt"]
    assert json.loads(copy["card_json"])["name"] == "Seraphina"  # the card itself is unchanged


async def test_a_persona_made_on_humalike_still_exports_and_comes_back_without_a_card(world: World) -> None:
    await world.make_persona("Sam")
    exported = await world.alice.slash(world.channel, "persona export", name="Sam")
    [file] = exported.response.attachments

    await world.bob.slash(world.channel, "persona import", card=(file.filename, await file.read()))

    assert json.loads(await file.read())["data"]["first_mes"] == ""
    assert [p["card_json"] for p in await world.personas()] == [None, None]


async def test_the_card_survives_a_restart(world: World) -> None:
    await import_seraphina(world)
    await world.restart()

    await start_seraphina(world)

    assert persona_messages(world)[0].content.startswith("*You wake on a bed of moss.")


async def test_show_says_how_many_greetings_and_lore_entries_a_card_persona_has(world: World) -> None:
    await import_seraphina(world)
    await world.make_persona("Sam")

    seraphina = await world.alice.slash(world.channel, "persona show", name="Seraphina")
    sam = await world.alice.slash(world.channel, "persona show", name="Sam")

    [embed] = seraphina.response.embeds
    field = next(f for f in embed.fields if f.name == "From its card")
    assert field.value == "3 greetings · 5 lore entries (1 switched off)"
    assert all(f.name != "From its card" for f in sam.response.embeds[0].fields)
