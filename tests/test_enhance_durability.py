"""Jobs survive restarts, expired tokens, deleted replies and slow Humalike days."""

from __future__ import annotations

import discord
import pytest

from tests.conftest import World


def status_of(world: World, message_id: int) -> str:
    embed = world.message(message_id).embeds[0]
    return f"{embed.title}\n{embed.description}"


async def test_a_restart_mid_job_resumes_it_and_edits_the_same_reply(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=40)
    result = await world.enhance()
    await world.env.advance_time(3)
    assert "Running" in status_of(world, result.response.id)

    await world.restart()
    await world.env.advance_time(60)

    card = world.message(result.response.id)
    assert card.embeds[0].title == "Sam Okafor"
    assert world.fake.billed_starts == 1
    assert len(await world.personas()) == 1
    [job] = await world.jobs()
    assert job["state"] == "succeeded"


async def test_a_job_that_ended_while_the_bot_was_down_is_collected_on_start_up(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=5)
    result = await world.enhance()
    await world.bot.close()  # a graceful stop, before the job ends
    world.fake.finish(world.fake.starts[0].job_id)

    await world.restart()
    await world.env.advance_time(1)

    assert world.message(result.response.id).embeds[0].title == "Sam Okafor"
    assert world.fake.billed_starts == 1
    assert len(await world.personas()) == 1


async def test_restarting_twice_never_saves_twice(world: World) -> None:
    result = await world.enhance()
    await world.restart()
    await world.env.advance_time(15)
    await world.restart()
    await world.env.advance_time(15)

    assert len(await world.personas()) == 1
    assert world.fake.billed_starts == 1
    assert world.message(result.response.id).embeds[0].title == "Sam Okafor"


async def test_a_job_caught_before_humalike_confirmed_it_is_not_resent(world: World) -> None:
    # The bot went down between sending the job's start and hearing back from Humalike.
    world.fake.fail_next_start(502)
    result = await world.enhance()
    await world.rows("UPDATE jobs SET state = 'sending', error_code = NULL")

    await world.restart()

    reply = world.message(result.response.id)
    assert "restarted while starting this job" in status_of(world, reply.id)
    assert any(child.label == "Retry" for row in reply.components for child in row.children)
    assert world.fake.billed_starts == 0


@pytest.mark.parametrize("settings_overrides", [{"job_deadline_seconds": 120}])
async def test_a_job_past_its_deadline_is_reported_and_still_saved_when_it_ends(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=600)
    result = await world.enhance(grounding="research")

    await world.env.advance_time(180)
    assert "taking longer than 2 minutes" in status_of(world, result.response.id)
    assert await world.personas() == []

    await world.wait(600)
    card = world.message(result.response.id)
    assert card.embeds[0].title == "Sam Okafor"
    assert "after the deadline" in card.content
    assert len(await world.personas()) == 1


async def test_after_the_token_expires_the_reply_is_edited_as_the_bot(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=20 * 60)
    result = await world.enhance()

    await world.wait(25 * 60)

    card = world.message(result.response.id)
    assert card.embeds[0].title == "Sam Okafor"
    channel_edits = [
        r
        for r in world.env.http_requests
        if r.method == "PATCH" and r.path.startswith("/channels/") and str(result.response.id) in r.path
    ]
    assert channel_edits, "the final edit went through the channel message, not the expired token"


async def test_a_deleted_reply_is_replaced_by_a_new_message_with_the_result(world: World) -> None:
    reply_id = (await world.enhance()).response.id
    await world.env.advance_time(3)
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    moderator = world.guild.add_member(world.env.create_user("mod"), roles=[mods])
    await moderator.delete(world.message(reply_id))

    await world.env.advance_time(15)

    last = world.channel.history()[-1]
    assert last.id != reply_id
    assert last.embeds[0].title == "Sam Okafor"
    [job] = await world.jobs()
    assert job["message_id"] == last.id
    assert len(await world.personas()) == 1


async def test_the_retry_button_still_works_after_a_restart(world: World) -> None:
    from tests.fakes.humalike import Fail

    world.fake.script_enhancement(outcome=Fail("provider_error"))
    first = await world.enhance()
    await world.env.advance_time(15)

    await world.restart()
    retried = await world.alice.click(world.message(first.response.id), label="Retry")
    await world.env.advance_time(15)

    assert world.fake.billed_starts == 2
    assert world.message(retried.response.id).embeds[0].title == "Sam Okafor"


async def test_a_reply_that_cannot_be_sent_leaves_no_job_behind(world: World) -> None:
    world.env.inject_error("POST", "/interactions/*/callback", status=500)

    await world.enhance()

    [error] = world.env.errors
    assert isinstance(error.__cause__, discord.HTTPException)
    assert await world.jobs() == []
    assert world.fake.billed_starts == 0
    await world.restart()
    assert world.fake.billed_starts == 0


@pytest.mark.parametrize("settings_overrides", [{"job_deadline_seconds": 120}])
async def test_the_deadline_is_reported_even_while_humalike_is_down(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=600)
    result = await world.enhance()
    await world.env.advance_time(3)
    world.fake.fail_next_polls(502, times=1000)

    await world.wait(300)

    text = status_of(world, result.response.id)
    assert "taking longer than 2 minutes" in text
    assert "isn't answering" in text


REPLY_ROUTES = (("PATCH", "/webhooks/*"), ("PATCH", "/channels/*/messages/*"), ("POST", "/channels/*/messages"))


def refuse_every_reply_route(world: World) -> None:
    """Discord takes the reply nowhere: not through the token, not as the bot, not as a new message
    (access lost for a while: a 5xx would do the same, after discord.py's own retries)."""
    for method, path in REPLY_ROUTES:
        world.env.inject_error(method, path, status=403, code=50001, message="Missing Access", times=None)


def end_the_outage(world: World) -> None:
    world.env.backend.faults.clear()


async def test_a_result_discord_took_nowhere_is_shown_once_it_takes_it_again(world: World) -> None:
    reply_id = (await world.enhance()).response.id
    await world.env.advance_time(3)
    refuse_every_reply_route(world)

    await world.env.advance_time(15)  # the job ends and is saved while Discord refuses the reply
    assert [persona["name"] for persona in await world.personas()] == ["Sam Okafor"]
    assert world.message(reply_id).embeds[0].title != "Sam Okafor"

    end_the_outage(world)
    await world.env.advance_time(31)

    assert world.message(reply_id).embeds[0].title == "Sam Okafor"
    assert len(world.channel.history()) == 1  # the same reply, edited; nothing posted twice


async def test_a_reply_waiting_to_be_shown_again_never_overwrites_a_newer_one(world: World) -> None:
    reply_id = (await world.enhance()).response.id
    refuse_every_reply_route(world)
    await world.env.advance_time(3)  # "pending" or "running" is refused, and waits to be shown again
    end_the_outage(world)

    await world.env.advance_time(15)  # the card is shown
    assert world.message(reply_id).embeds[0].title == "Sam Okafor"
    await world.env.advance_time(700)  # long past every wait of the refused progress reply

    assert world.message(reply_id).embeds[0].title == "Sam Okafor"


async def test_a_result_discord_took_nowhere_before_a_restart_is_shown_after_it(world: World) -> None:
    reply_id = (await world.enhance()).response.id
    await world.env.advance_time(3)
    refuse_every_reply_route(world)
    await world.env.advance_time(15)
    [job] = await world.jobs()
    assert job["state"] == "succeeded" and job["reply_stale"] == 1

    end_the_outage(world)
    await world.restart()  # before the in-memory retry came round

    assert world.message(reply_id).embeds[0].title == "Sam Okafor"
    [job] = await world.jobs()
    assert job["reply_stale"] == 0
    assert len(await world.personas()) == 1 and world.fake.billed_starts == 1


async def test_a_stale_result_whose_persona_was_deleted_is_let_go_at_restart(world: World) -> None:
    reply_id = (await world.enhance()).response.id
    await world.env.advance_time(3)
    refuse_every_reply_route(world)
    await world.env.advance_time(15)
    shown_before = world.message(reply_id).embeds[0].title
    [persona] = await world.personas()
    await world.bot.personas.delete(persona["id"])

    end_the_outage(world)
    await world.restart()

    assert world.message(reply_id).embeds[0].title == shown_before
    [job] = await world.jobs()
    assert job["reply_stale"] == 0


async def test_a_failure_discord_took_nowhere_before_a_restart_is_shown_after_it_with_retry(world: World) -> None:
    from tests.fakes.humalike import Fail

    world.fake.script_enhancement(outcome=Fail("provider_error"))
    reply_id = (await world.enhance()).response.id
    refuse_every_reply_route(world)
    await world.env.advance_time(15)

    end_the_outage(world)
    await world.restart()

    reply = world.message(reply_id)
    assert reply.embeds[0].title.startswith("❌")
    assert "provider_error" in (reply.embeds[0].description or "") + str(reply.embeds[0].fields)
    retried = await world.alice.click(reply, label="Retry")
    await world.env.advance_time(15)
    assert world.message(retried.response.id).embeds[0].title == "Sam Okafor"


async def test_a_result_given_up_on_is_let_go_of_in_memory_and_kept_for_the_next_start(world: World) -> None:
    await world.enhance()
    await world.env.advance_time(3)
    refuse_every_reply_route(world)
    await world.env.advance_time(15)  # saved while Discord refuses the reply
    assert world.bot.enhancements.held_replies() != set()

    await world.wait(30 + 120 + 600 + 60)  # every re-show refused too: given up

    assert world.bot.enhancements.held_replies() == set()
    [job] = await world.jobs()
    assert job["reply_stale"] == 1  # the next start-up shows it


async def test_a_progress_reply_given_up_on_is_unmarked_once_a_later_reply_is_shown(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=900)
    reply_id = (await world.enhance()).response.id
    refuse_every_reply_route(world)
    await world.env.advance_time(3)  # "pending" or "running" is refused
    await world.wait(30 + 120 + 600 + 10)  # and every re-show of it: given up, while the job still runs
    assert world.bot.enhancements.held_replies() == set()
    end_the_outage(world)

    await world.wait(300)  # the job ends and its card is shown

    assert world.message(reply_id).embeds[0].title == "Sam Okafor"
    [job] = await world.jobs()
    assert job["reply_stale"] == 0
