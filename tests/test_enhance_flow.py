"""/enhance from the command to the saved persona, as a member sees it."""

from __future__ import annotations

from tests.conftest import SAM_SKETCH, World


def status_of(message) -> str:  # type: ignore[no-untyped-def]
    return message.embeds[0].description.splitlines()[0]


async def test_enhance_answers_at_once_then_follows_the_job_to_a_saved_persona(world: World) -> None:
    result = await world.enhance()

    assert not result.ephemeral
    reply_id = result.response.id
    assert "Pending" in status_of(world.message(reply_id))
    assert world.fake.billed_starts == 1
    assert world.fake.starts[0].body == {"persona": SAM_SKETCH, "grounding": "off"}

    await world.env.advance_time(3)
    assert "Running" in status_of(world.message(reply_id))

    await world.env.advance_time(10)
    card = world.message(reply_id)
    assert card.embeds[0].title == "Sam Okafor"
    assert "Saved **Sam Okafor**" in card.content

    [persona] = await world.personas()
    assert persona["name"] == "Sam Okafor"
    assert persona["sketch"] == SAM_SKETCH
    assert persona["grounding"] == "off"
    assert persona["guild_id"] == world.guild.id
    assert persona["creator_id"] == world.alice.id
    assert persona["fields"]["main_champion"] == "Thresh"
    assert persona["system_prompt"].startswith("You are Sam Okafor")
    assert persona["markdown"].startswith("# Sam Okafor")
    assert persona["enhancement_id"] == world.fake.starts[0].job_id
    assert world.fake.billed_starts == 1
