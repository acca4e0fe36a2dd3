"""Bad input gets a clear, private answer and never reaches Humalike."""

from __future__ import annotations

import pytest
from simcord import SetupError

from tests.conftest import World


@pytest.mark.parametrize("sketch", ["   ", "\n\t  \n"])
async def test_a_blank_sketch_is_refused_privately(world: World, sketch: str) -> None:
    result = await world.enhance(sketch=sketch)

    assert result.ephemeral
    assert "sketch is empty" in result.response.content
    assert world.refusals() == [result.response.content]
    assert world.fake.billed_starts == 0
    assert await world.jobs() == []


async def test_a_blank_sketch_in_the_modal_is_refused_privately(world: World) -> None:
    shown = await world.alice.slash(world.channel, "enhance")
    result = await world.alice.submit_modal(shown, {"sketch": "     "})

    assert result.ephemeral
    assert "sketch is empty" in result.response.content
    assert len(world.refusals()) == 1
    assert world.fake.billed_starts == 0


async def test_discord_itself_refuses_a_sketch_over_4000_characters(world: World) -> None:
    # The option declares the limit, so the Discord client stops it before the bot sees it.
    with pytest.raises(SetupError, match="at most 4000 characters"):
        await world.enhance(sketch="x" * 4001)
    assert world.fake.billed_starts == 0


async def test_a_sketch_of_exactly_4000_characters_is_accepted(world: World) -> None:
    await world.enhance(sketch="Sam " + "x" * 3996)
    assert world.fake.billed_starts == 1


async def test_one_member_cannot_have_more_than_the_limit_in_flight(world: World) -> None:
    world.fake.default_enhancement = type(world.fake.default_enhancement)(pending_for=1, running_for=300)
    for _ in range(world.settings.max_jobs_per_user):
        await world.enhance()

    refused = await world.enhance()
    other_member = await world.enhance(member=world.bob)

    assert refused.ephemeral
    assert "already have 3 enhancements running" in refused.response.content
    assert len(world.refusals()) == 1
    assert not other_member.ephemeral
    assert world.fake.billed_starts == world.settings.max_jobs_per_user + 1


async def test_the_limit_frees_up_when_a_job_finishes(world: World) -> None:
    for _ in range(world.settings.max_jobs_per_user):
        await world.enhance()
    await world.env.advance_time(15)

    again = await world.enhance()

    assert not again.ephemeral
    assert world.fake.billed_starts == world.settings.max_jobs_per_user + 1


async def test_a_name_with_nothing_printable_is_refused(world: World) -> None:
    result = await world.enhance(name="***")

    assert result.ephemeral
    assert "nothing printable" in result.response.content
    assert len(world.refusals()) == 1
    assert world.fake.billed_starts == 0
