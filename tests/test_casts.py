"""/cast: a whole cast from one prompt, followed live, saved, and brought to a channel at once."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.fakes.humalike import Fail, population_result


def status(world: World, message_id: int) -> str:
    embed = world.message(message_id).embeds[0]
    return f"{embed.title}\n{embed.description}"


async def generate(world: World, **options: Any) -> Any:
    options.setdefault("prompt", "four League of Legends players from around the globe")
    options.setdefault("count", 4)
    return await world.alice.slash(world.channel, "cast generate", **options)


async def test_a_cast_is_followed_with_a_progress_bar_and_saved_as_personas(world: World) -> None:
    world.fake.script_population(pending_for=1, running_for=40)
    result = await generate(world, name="Ranked Night")
    reply = result.response.id
    assert world.fake.starts[0].body == {
        "prompt": "four League of Legends players from around the globe",
        "count": 4,
        "grounding": "off",
    }

    await world.env.advance_time(30)  # about three quarters through its running time
    assert "2/4 personas written" in status(world, reply)

    await world.env.advance_time(60)
    card = world.message(reply)
    assert card.embeds[0].title == "Cast: Ranked Night"
    assert "4 personas" in card.content
    personas = await world.personas()
    generated = population_result(4)["personas"]
    assert [p["name"] for p in personas] == [g["fields"]["name"] for g in generated]
    assert [p["system_prompt"] for p in personas] == [g["system_prompt"] for g in generated]
    assert all(p["creator_id"] == world.alice.id for p in personas)
    assert world.fake.billed_starts == 1


async def test_the_cast_size_is_bounded(world: World) -> None:
    import pytest
    from simcord import SetupError

    with pytest.raises(SetupError, match=r"10"):
        await generate(world, count=11)
    assert world.fake.billed_starts == 0


async def test_a_failed_cast_offers_retry_which_starts_one_new_population(world: World) -> None:
    world.fake.script_population(pending_for=1, running_for=5, outcome=Fail("provider_error"))
    result = await generate(world)
    await world.env.advance_time(30)
    assert "could not finish" in status(world, result.response.id)

    retried = await world.alice.click(world.message(result.response.id), label="Retry")
    await world.env.advance_time(60)

    assert world.fake.billed_starts == 2
    assert world.fake.starts[1].body["count"] == 4
    assert world.message(retried.response.id).embeds[0].title.startswith("Cast: ")
    assert len(await world.personas()) == 4


async def test_a_restart_mid_cast_saves_it_once(world: World) -> None:
    world.fake.script_population(pending_for=1, running_for=40)
    result = await generate(world)
    await world.env.advance_time(10)

    await world.restart()
    await world.env.advance_time(60)
    await world.restart()
    await world.env.advance_time(10)

    assert world.message(result.response.id).embeds[0].title.startswith("Cast: four League")
    assert len(await world.personas()) == 4
    assert len(await world.rows("SELECT * FROM casts")) == 1
    assert world.fake.billed_starts == 1


async def test_cast_roleplay_brings_every_member_in_at_once(world: World) -> None:
    await generate(world, name="Ranked Night", count=3)
    await world.env.advance_time(60)

    result = await world.admin.slash(world.channel, "cast roleplay", cast="ranked night")

    assert "join" in result.response.content
    speakers = sorted(m.author.name for m in world.channel.history() if m.webhook_id is not None)
    assert speakers == sorted(p["name"] for p in await world.personas())
    assert len(speakers) == 3
    status_reply = await world.admin.slash(world.channel, "roleplay status")
    assert status_reply.response.content.count("mention mode") == 3


async def test_another_servers_cast_cannot_be_brought_in(world: World) -> None:
    import discord

    await generate(world, name="Ranked Night", count=2)
    await world.env.advance_time(60)
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    intruder = other.add_member(world.env.create_user("mallory"), roles=[owners])

    result = await intruder.slash(lobby, "cast roleplay", cast="Ranked Night")
    choices = await intruder.autocomplete(lobby, "cast roleplay", "cast", "ran")

    assert "no cast called" in result.response.content
    assert choices == []
    world.refusals()


async def test_a_cast_refused_for_credits_says_so_and_starts_nothing(world: World) -> None:
    world.fake.fail_next_start(402)

    result = await generate(world)

    assert "Out of Humalike credits" in status(world, result.response.id)
    assert world.fake.billed_starts == 0
    assert len(await world.rows("SELECT * FROM casts")) == 0


async def test_cast_autocomplete_takes_percent_and_underscore_literally(world: World) -> None:
    for name in ("Ranked Night", "100% Chaos"):
        await generate(world, name=name, count=1)
        await world.env.advance_time(60)

    percent = await world.admin.autocomplete(world.channel, "cast roleplay", "cast", "%")
    underscore = await world.admin.autocomplete(world.channel, "cast roleplay", "cast", "_")

    assert [choice["value"] for choice in percent] == ["100% Chaos"]
    assert underscore == []  # names lose their underscores (Markdown), so none holds one
