"""With ROLEPLAY_ANSWER_OTHER_BOTS on, bots cannot talk with a persona forever, nor keep it from leaving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.test_roleplay import persona_messages, start

ANSWER_BOTS = pytest.mark.parametrize("settings_overrides", [{"roleplay_answer_other_bots": True}])


def last_is_a_persona_line(world: World) -> bool:
    last = world.channel.history()[-1]
    return last.webhook_id is not None and last.author.name == "Sam"


async def a_bot_that_answers_every_persona_line(world: World, robot: Any, *, at_most: int = 10) -> int:
    """Another bot in the channel, answering each new line of the persona; how many times it answered."""
    answered = 0
    while last_is_a_persona_line(world) and answered < at_most:
        await robot.send(world.channel, f"Sam, beep {answered}")
        answered += 1
    return answered


async def another_copy_of_the_bot_says(world: World, webhook_id: int, text: str) -> None:
    """A persona of a second copy of this bot (its own webhook in the channel) speaks."""
    world.env.backend.create_message(world.channel.id, webhook_id, text, webhook_id=webhook_id, author_name="Jinx")
    await world.env.settle()


@ANSWER_BOTS
async def test_a_persona_answers_a_bot_at_most_three_times_in_a_row_then_waits_for_a_member(world: World) -> None:
    await world.make_persona("Sam")
    robot = world.guild.add_member(world.env.create_user("robot", bot=True))
    await start(world, mode="always")

    answered = await a_bot_that_answers_every_persona_line(world, robot)

    assert answered == 4  # the greeting and three answers; the fourth bot line gets none
    assert len(persona_messages(world)) == 1 + 3
    assert not last_is_a_persona_line(world)

    await world.alice.send(world.channel, "Sam, still with us?")
    assert len(persona_messages(world)) == 5  # a member spoke: the persona answers again

    answered = await a_bot_that_answers_every_persona_line(world, robot)
    assert answered == 4
    assert len(persona_messages(world)) == 5 + 3


@ANSWER_BOTS
async def test_a_second_copy_of_the_bot_cannot_ping_pong_with_a_persona(world: World) -> None:
    await world.make_persona("Sam")
    other_copy = world.env.backend.create_webhook(world.channel.id, "Humalike personas", world.bot.user.id)
    await start(world, mode="always")

    for line in range(6):
        await another_copy_of_the_bot_says(world, other_copy.id, f"Sam! Rockets! ({line})")

    assert len(persona_messages(world)) - 6 == 1 + 3  # the greeting and three answers to the other copy


@pytest.mark.parametrize("settings_overrides", [{"roleplay_answer_other_bots": True, "roleplay_max_bot_turns": 1}])
async def test_the_number_of_answers_to_bots_in_a_row_is_a_setting(world: World) -> None:
    await world.make_persona("Sam")
    robot = world.guild.add_member(world.env.create_user("robot", bot=True))
    await start(world, mode="always")

    answered = await a_bot_that_answers_every_persona_line(world, robot)

    assert answered == 2
    assert len(persona_messages(world)) == 1 + 1


@ANSWER_BOTS
async def test_a_bots_messages_do_not_keep_a_persona_past_its_idle_time(world: World) -> None:
    await world.make_persona("Sam")
    robot = world.guild.add_member(world.env.create_user("robot", bot=True))
    await start(world)
    await world.wait(20 * 60)
    await robot.send(world.channel, "beep boop, status report")

    await world.wait(12 * 60)  # 32 minutes after the last member spoke (the start), 12 after the bot

    assert "left: nobody talked with them for 30 minutes" in world.channel.history()[-1].content


@ANSWER_BOTS
async def test_a_bots_messages_do_not_keep_a_persona_past_its_idle_time_across_a_restart(world: World) -> None:
    await world.make_persona("Sam")
    robot = world.guild.add_member(world.env.create_user("robot", bot=True))
    await start(world, mode="always")
    await world.wait(20 * 60)
    await robot.send(world.channel, "beep boop, status report")  # answered: the persona's line is stored

    await world.restart()
    await world.wait(12 * 60)

    assert "left: nobody talked with them for 30 minutes" in world.channel.history()[-1].content
