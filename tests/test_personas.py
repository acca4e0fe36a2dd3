"""/persona: the library a server browses and manages; nothing crosses from one server to another."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ReportedBugs, World


async def make(world: World, name: str, member: Any = None) -> None:
    await world.enhance(member=member, sketch=f"{name} is a support main.", name=name)
    await world.env.advance_time(15)


def embed_of(result: Any) -> Any:
    return result.response.embeds[0]


async def test_list_shows_names_creators_and_ages_newest_first(world: World) -> None:
    await make(world, "Sam")
    await world.env.advance_time(60)
    await make(world, "Jinx", member=world.bob)

    result = await world.alice.slash(world.channel, "persona list")

    lines = embed_of(result).description.splitlines()
    assert lines[0].startswith("**Jinx** · by bob · <t:")
    assert lines[1].startswith("**Sam** · by alice · <t:")


async def test_list_mine_shows_only_my_personas(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx", member=world.bob)

    result = await world.bob.slash(world.channel, "persona list", which="mine")

    assert "Jinx" in embed_of(result).description
    assert "Sam" not in embed_of(result).description


async def test_pages_turn_only_for_whoever_asked(world: World) -> None:
    for index in range(12):  # a member may run three at once, so let each finish
        await world.enhance(sketch=f"Persona number {index}.", name=f"P{index:02d}")
        await world.env.advance_time(15)
    listing = await world.alice.slash(world.channel, "persona list")
    assert embed_of(listing).footer.text.startswith("Page 1 of 2 · 12 personas")

    stranger = await world.bob.click(listing.response, label="Next")
    assert stranger.ephemeral and "belong to whoever asked" in stranger.response.content
    assert world.message(listing.response.id).embeds[0].footer.text.startswith("Page 1 of 2")

    await world.alice.click(listing.response, label="Next")
    page_two = world.message(listing.response.id).embeds[0]
    assert page_two.footer.text.startswith("Page 2 of 2")
    assert len(page_two.description.splitlines()) == 2


async def test_show_gives_the_card_the_whole_sheet_and_a_roleplay_button(world: World) -> None:
    await make(world, "Sam")

    result = await world.bob.slash(world.channel, "persona show", name="sam")

    assert embed_of(result).title == "Sam"
    [sheet] = result.response.attachments
    assert sheet.filename == "sam.md"
    assert (await sheet.read()).decode().startswith("# Sam Okafor")
    started = await world.admin.click(result.response, label="Roleplay as Sam here")
    assert "joins" in started.response.content


async def test_the_roleplay_button_tells_a_member_who_may_not_start_roleplay_why(world: World) -> None:
    await make(world, "Sam")
    shown = await world.bob.slash(world.channel, "persona show", name="Sam")

    refused = await world.bob.click(shown.response, label="Roleplay as Sam here")

    assert refused.ephemeral
    assert "Starting roleplay needs the Manage Server permission" in refused.response.content
    assert [m for m in world.channel.history() if m.webhook_id is not None] == []


async def test_a_fault_behind_a_button_gets_an_apology_and_a_logged_traceback(
    world: World, reported_bugs: ReportedBugs, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make(world, "Sam")
    asked = await world.alice.slash(world.channel, "persona delete", name="Sam")

    async def disk_gone(persona_id: int) -> bool:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(world.bot.personas, "delete", disk_gone)  # the database fails under the button
    result = await world.alice.click(asked.response, label="Delete")

    assert result.ephemeral
    assert result.response.content.startswith("Something went wrong on my side")
    assert "disk I/O error" not in result.response.content
    [bug] = reported_bugs.take()
    assert "ConfirmDelete" in bug.getMessage()
    assert bug.exc_info is not None and bug.exc_info[0] is RuntimeError
    assert [type(error) for error in world.env.errors] == [RuntimeError]  # simcord saw it too


async def test_rename_by_the_creator_and_refused_to_others(world: World) -> None:
    await make(world, "Sam")

    refused = await world.bob.slash(world.channel, "persona rename", name="Sam", new_name="Bob's Sam")
    renamed = await world.alice.slash(world.channel, "persona rename", name="Sam", new_name="Samwise")

    assert refused.ephemeral and "Only whoever made “Sam”" in refused.response.content
    assert "is now **Samwise**" in renamed.response.content
    assert [p["name"] for p in await world.personas()] == ["Samwise"]
    assert len(world.refusals()) == 1


async def test_members_with_manage_server_may_rename_anyones(world: World) -> None:
    await make(world, "Sam")

    renamed = await world.admin.slash(world.channel, "persona rename", name="Sam", new_name="Moderated Sam")

    assert not renamed.ephemeral
    assert [p["name"] for p in await world.personas()] == ["Moderated Sam"]


async def test_rename_to_a_taken_name_is_refused(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")

    result = await world.alice.slash(world.channel, "persona rename", name="Jinx", new_name="sam")

    assert "already exists" in result.response.content
    assert sorted(p["name"] for p in await world.personas()) == ["Jinx", "Sam"]
    world.refusals()


async def test_edit_changes_the_name_and_the_prompt(world: World) -> None:
    await make(world, "Sam")
    form = await world.alice.slash(world.channel, "persona edit", name="Sam")

    await world.alice.submit_modal(form, {"name": "Sam O.", "prompt": "You are Sam O., terse and dry."})

    [persona] = await world.personas()
    assert (persona["name"], persona["system_prompt"]) == ("Sam O.", "You are Sam O., terse and dry.")


async def test_delete_asks_first_and_ends_the_personas_roleplay(world: World) -> None:
    await make(world, "Sam")
    await world.admin.slash(world.channel, "roleplay as", persona="Sam")
    asked = await world.alice.slash(world.channel, "persona delete", name="Sam")
    assert asked.ephemeral and len(await world.personas()) == 1

    done = await world.alice.click(asked.response, label="Delete")

    assert "Deleted **Sam**" in done.response.content
    assert await world.personas() == []
    status = await world.admin.slash(world.channel, "roleplay status")
    assert "No persona is speaking here" in status.response.content
    requests = len(world.chat.requests)
    await world.alice.send(world.channel, "Sam?")
    assert len(world.chat.requests) == requests


async def test_a_member_who_lost_manage_server_after_asking_cannot_confirm_the_delete(world: World) -> None:
    await make(world, "Sam")  # alice's; ada may delete it only through her Manage Server role
    asked = await world.admin.slash(world.channel, "persona delete", name="Sam")
    admins = world.guild.roles["Admins"]
    world.env.backend.remove_member_role(world.guild.id, world.admin.id, admins.id)

    pressed = await world.admin.click(asked.response, label="Delete")

    assert pressed.ephemeral
    assert "Only whoever made “Sam” or a member with Manage Server can delete it" in pressed.response.content
    assert [p["name"] for p in await world.personas()] == ["Sam"]
    assert len(world.refusals()) == 1


async def test_keep_it_deletes_nothing(world: World) -> None:
    await make(world, "Sam")
    asked = await world.alice.slash(world.channel, "persona delete", name="Sam")

    kept = await world.alice.click(asked.response, label="Keep it")

    assert kept.response.content == "Nothing was deleted."
    assert len(await world.personas()) == 1


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("persona show", {"name": "Sam"}),
        ("persona rename", {"name": "Sam", "new_name": "Stolen"}),
        ("persona edit", {"name": "Sam"}),
        ("persona delete", {"name": "Sam"}),
        ("persona export", {"name": "Sam"}),
        ("roleplay as", {"persona": "Sam"}),
    ],
)
async def test_another_servers_personas_cannot_be_reached(world: World, command: str, options: dict[str, Any]) -> None:
    await make(world, "Sam")
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    import discord

    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    intruder = other.add_member(world.env.create_user("mallory"), roles=[owners])

    result = await intruder.slash(lobby, command, **options)

    assert result.ephemeral
    assert "no persona called “Sam”" in result.response.content
    assert [p["name"] for p in await world.personas()] == ["Sam"]
    world.refusals()


async def test_another_servers_personas_are_not_listed_or_autocompleted(world: World) -> None:
    await make(world, "Sam")
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    listing = await carol.slash(lobby, "persona list")
    choices = await carol.autocomplete(lobby, "persona show", "name", "sa")

    assert "No personas yet" in embed_of(listing).description
    assert choices == []


async def test_export_then_import_elsewhere_gives_the_same_persona(world: World) -> None:
    import json

    await make(world, "Sam")
    exported = await world.alice.slash(world.channel, "persona export", name="Sam")
    [file] = exported.response.attachments
    data = await file.read()
    card = json.loads(data)
    assert card["spec"] == "chara_card_v2" and card["data"]["name"] == "Sam"
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    imported = await carol.slash(lobby, "persona import", card=(file.filename, data))

    assert "Imported **Sam**" in imported.response.content
    original, copy = await world.personas()
    for key in ("name", "system_prompt", "markdown", "fields", "sketch", "grounding", "humalike_persona_id"):
        assert copy[key] == original[key], key
    assert copy["guild_id"] == other.id and copy["creator_id"] == carol.id


async def test_importing_a_name_already_here_saves_it_numbered(world: World) -> None:
    await make(world, "Sam")
    exported = await world.alice.slash(world.channel, "persona export", name="Sam")
    [file] = exported.response.attachments

    imported = await world.bob.slash(world.channel, "persona import", card=(file.filename, await file.read()))

    assert "saved as “Sam (2)”" in imported.response.content
    assert [p["name"] for p in await world.personas()] == ["Sam", "Sam (2)"]


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("notes.txt", b"just some notes", "not a character card"),
        ("card.json", b'{"spec": "chara_card_v2", "data": {"name": ""}}', "name"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested"),
        ("card.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG"),
        ("big.json", b'{"name": "Big", "description": "' + b"a" * 3_000_000 + b'"}', "too large"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 9_000_000, "too large"),
    ],
    ids=["not-a-card", "no-name", "deeply-nested", "broken-png", "too-large-json", "too-large-file"],
)
async def test_bad_cards_are_refused_and_nothing_is_saved(
    world: World, filename: str, data: bytes, expected: str
) -> None:
    result = await world.alice.slash(world.channel, "persona import", card=(filename, data))

    assert result.ephemeral
    assert expected.lower() in result.response.content.lower()
    assert await world.personas() == []
    assert len(world.refusals()) == 1


async def test_a_v1_card_from_another_tool_becomes_a_persona(world: World) -> None:
    import json

    card = {"name": "Mira", "description": "{{char}} is a tavern keeper.", "personality": "warm", "scenario": ""}

    result = await world.alice.slash(world.channel, "persona import", card=("mira.json", json.dumps(card).encode()))

    assert "Imported **Mira**" in result.response.content
    [persona] = await world.personas()
    assert persona["system_prompt"].startswith("You are Mira.")
    assert "Mira is a tavern keeper." in persona["system_prompt"]


async def test_a_png_card_with_an_embedded_v2_card_is_imported(world: World) -> None:
    from tests.test_cards import b64, png, text_chunk, v2_card

    image = png(text_chunk("chara", b64(v2_card(name="Rin", description="A courier who never stops running."))))

    result = await world.alice.slash(world.channel, "persona import", card=("rin.png", image))

    assert "Imported **Rin**" in result.response.content
    [persona] = await world.personas()
    assert "A courier who never stops running." in persona["system_prompt"]


@pytest.mark.parametrize("command", ["persona edit", "persona delete"])
async def test_only_the_creator_or_manage_server_may_edit_or_delete(world: World, command: str) -> None:
    await make(world, "Sam")

    result = await world.bob.slash(world.channel, command, name="Sam")

    assert result.ephemeral
    assert "Only whoever made “Sam” or a member with Manage Server" in result.response.content
    assert len(await world.personas()) == 1
    assert len(world.refusals()) == 1


# --- imports the bot can always show ---------------------------------------------------------------


async def exported_card(world: World, name: str = "Sam") -> dict[str, Any]:
    import json

    exported = await world.alice.slash(world.channel, "persona export", name=name)
    [file] = exported.response.attachments
    return json.loads(await file.read())


async def import_json(world: World, card: dict[str, Any], member: Any = None) -> Any:
    import json

    data = json.dumps(card).encode()
    return await (member or world.bob).slash(world.channel, "persona import", card=("card.json", data))


async def test_an_exported_card_with_a_5000_character_grounding_is_refused_and_nothing_is_saved(world: World) -> None:
    await make(world, "Sam")
    card = await exported_card(world)
    card["data"]["name"] = "Sam Again"
    card["data"]["extensions"]["humalike"]["grounding"] = "g" * 5000

    result = await import_json(world, card)

    assert result.ephemeral
    assert "“grounding” should be one of off, web, research" in result.response.content
    assert [p["name"] for p in await world.personas()] == ["Sam"]
    assert len(world.refusals()) == 1


async def test_a_persona_stored_with_oversized_data_is_still_shown(world: World) -> None:
    import json

    from storage.database import open_database

    await make(world, "Sam")
    database = await open_database(url=world.settings.database_url, path=world.settings.database_path)
    try:  # as an import could store it before imported fields were bounded
        fields = {f"{letter}{'k' * 255}": letter * 2000 for letter in "abcdefgh"}
        await database.write(
            "UPDATE personas SET grounding = ?, humalike_persona_id = ?, fields_json = ?, markdown = ?",
            ("g" * 5000, "i" * 5000, json.dumps(fields), "m" * 5000),
        )
    finally:
        await database.close()

    result = await world.bob.slash(world.channel, "persona show", name="Sam")

    assert not result.ephemeral
    assert embed_of(result).title == "Sam"
    assert embed_of(result).fields[0].value.startswith("aaaa")
    [sheet] = result.response.attachments
    assert await sheet.read() == b"m" * 5000


async def test_an_import_whose_answer_discord_refuses_is_not_kept(
    world: World, reported_bugs: ReportedBugs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import discord

    def too_big_to_show(persona: Any) -> discord.Embed:  # a card Discord answers 400 (50035) to
        return discord.Embed(title=persona.name, description="x" * 4000).set_footer(text="f" * 2048)

    live_cog_module = sys.modules["cogs.personas"]  # the module the bot loaded as its extension
    monkeypatch.setattr(live_cog_module, "persona_card_embed", too_big_to_show)
    card = {"name": "Mira", "description": "A tavern keeper."}

    await import_json(world, card)

    assert await world.personas() == []
    assert [type(error).__name__ for error in world.env.errors] == ["CommandInvokeError"]


async def test_a_card_named_with_a_masked_link_is_imported_under_the_links_text(world: World) -> None:
    card = {"name": "[Sam](https://phish.example/login)", "description": "A support main."}

    result = await import_json(world, card)

    assert result.response.content.startswith("📥 Imported **Sam**.")
    assert "phish.example" not in result.response.content
    assert [p["name"] for p in await world.personas()] == ["Sam"]


async def test_an_imported_persona_says_where_it_came_from(world: World) -> None:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {"name": "Mira", "description": "A tavern keeper.", "creator": "Rook", "extensions": {"fav": False}},
    }
    card["data"]["extensions"]["talkativeness"] = "0.5"
    origin = "Imported from a Character Card V2 (SillyTavern) by Rook"

    imported = await import_json(world, card)
    shown = await world.alice.slash(world.channel, "persona show", name="Mira")

    assert embed_of(imported).footer.text == origin
    assert embed_of(shown).footer.text == origin
    assert [p["origin"] for p in await world.personas()] == [origin]


async def test_a_persona_made_on_humalike_is_labelled_with_its_humalike_id(world: World) -> None:
    await make(world, "Sam")
    [persona] = await world.personas()

    shown = await world.alice.slash(world.channel, "persona show", name="Sam")

    assert embed_of(shown).footer.text == f"Humalike persona {persona['humalike_persona_id']}"
    assert persona["origin"] is None


async def test_a_member_over_the_import_limit_is_told_when_to_try_again(world: World) -> None:
    cards = [{"name": f"Mira {number}", "description": "A tavern keeper."} for number in range(7)]
    for card in cards[:5]:
        assert "Imported" in (await import_json(world, card)).response.content

    refused = await import_json(world, cards[5])
    other_member = await import_json(world, cards[5], member=world.alice)
    await world.env.advance_time(61)
    later = await import_json(world, cards[6])

    assert refused.ephemeral
    assert "You can import 5 character cards a minute" in refused.response.content
    assert "Try again <t:" in refused.response.content and ":R>" in refused.response.content
    assert "Imported **Mira 5**" in other_member.response.content
    assert "Imported **Mira 6**" in later.response.content
    assert len(await world.personas()) == 7
    assert len(world.refusals()) == 1


async def test_a_card_is_read_off_the_event_loop(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    from bot.cards import import_card

    loops_seen: list[bool] = []

    def import_card_noting_the_loop(data: bytes, filename: str) -> Any:
        try:
            asyncio.get_running_loop()
            loops_seen.append(True)
        except RuntimeError:  # no loop runs in this thread: the bot's loop is free meanwhile
            loops_seen.append(False)
        return import_card(data, filename)

    monkeypatch.setattr(sys.modules["cogs.personas"], "import_card", import_card_noting_the_loop)

    result = await import_json(world, {"name": "Mira", "description": "A tavern keeper."})

    assert "Imported **Mira**" in result.response.content
    assert loops_seen == [False]
