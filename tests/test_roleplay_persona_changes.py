"""A persona renamed, edited or deleted while it speaks: the change takes effect at once, and each channel is told."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.test_roleplay import persona_messages, start


def notices(world: World, channel: Any = None) -> list[str]:
    """What the bot itself said in the channel, apart from its answers to commands."""
    return [
        m.content
        for m in (channel or world.channel).history()
        if m.author.id == world.bot.user.id and m.webhook_id is None and m.interaction_metadata is None
    ]


def notice_requests(world: World, text: str) -> list[Any]:
    return [
        r
        for r in world.env.http_requests
        if r.method == "POST" and r.path.endswith("/messages") and text in (r.json or {}).get("content", "")
    ]


async def test_a_persona_renamed_while_speaking_answers_under_its_new_name_after_one_notice(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)

    await world.alice.slash(world.channel, "persona rename", name="Sam", new_name="Samantha")
    world.chat.script_reply("Samantha now. Same lantern.")
    await world.alice.send(world.channel, "samantha, you there?")

    assert notices(world) == ["✏️ **Sam** is now called **Samantha**."]
    last = persona_messages(world)[-1]
    assert (last.author.name, last.content) == ("Samantha", "Samantha now. Same lantern.")
    assert "Reply as Samantha only" in world.chat.requests[-1].messages[0]["content"]
    status = await world.admin.slash(world.channel, "roleplay status")
    assert "**Samantha**" in status.response.content


async def test_an_edited_prompt_reaches_the_next_line_and_the_channel_is_told_without_a_ping(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    form = await world.alice.slash(world.channel, "persona edit", name="Sam")

    await world.alice.submit_modal(form, {"name": "Sam", "prompt": "You are Sam, terse and dry."})
    await world.alice.send(world.channel, "Sam, thoughts?")

    assert notices(world) == [f"✏️ **Sam**'s instructions were edited by {world.alice.mention}."]
    [sent] = notice_requests(world, "instructions were edited")
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert world.chat.requests[-1].messages[0]["content"].startswith("You are Sam, terse and dry.")


async def test_a_rename_reaches_every_channel_the_persona_speaks_in(world: World) -> None:
    await world.make_persona("Sam")
    other = world.guild.create_text_channel("off-topic")
    await start(world)
    await world.admin.slash(other, "roleplay as", persona="Sam")

    await world.alice.slash(other, "persona rename", name="Sam", new_name="Samwise")
    await world.alice.send(world.channel, "samwise?")
    await world.alice.send(other, "samwise!")

    assert notices(world) == notices(world, other) == ["✏️ **Sam** is now called **Samwise**."]
    assert [m.author.name for m in persona_messages(world)] == ["Sam", "Samwise"]
    assert [m.author.name for m in persona_messages(world, other)] == ["Sam", "Samwise"]


@pytest.mark.parametrize("settings_overrides", [{"roleplay_channel_cooldown_seconds": 30}])
async def test_a_turn_waiting_out_the_cooldown_during_a_rename_speaks_under_the_new_name(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")  # the greeting starts the cooldown
    await world.alice.send(world.channel, "what do we pick?")  # its answer waits out the cooldown

    await world.alice.slash(world.channel, "persona rename", name="Sam", new_name="Samantha")
    await world.env.advance_time(31)

    assert [m.author.name for m in persona_messages(world)] == ["Sam", "Samantha"]
    assert "Reply as Samantha only" in world.chat.requests[-1].messages[0]["content"]


async def test_a_persona_not_speaking_anywhere_is_renamed_without_a_notice(world: World) -> None:
    await world.make_persona("Sam")

    await world.alice.slash(world.channel, "persona rename", name="Sam", new_name="Samantha")

    assert notices(world) == []


async def test_deleting_a_speaking_persona_ends_its_sessions_with_a_line_saying_why(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    asked = await world.alice.slash(world.channel, "persona delete", name="Sam")

    await world.alice.click(asked.response, label="Delete")

    assert notices(world) == [f"👋 **Sam** left: {world.alice.mention} deleted this persona."]
    [sent] = notice_requests(world, "deleted this persona")
    assert sent.json["allowed_mentions"] == {"parse": []}
    status = await world.admin.slash(world.channel, "roleplay status")
    assert "No persona is speaking here" in status.response.content
