"""Every way Humalike can say no, and what the member sees then."""

from __future__ import annotations

import pytest

from tests.conftest import SAM_SKETCH, World
from tests.fakes.humalike import Fail, Fault, error_body, validation_error_body, validation_failed_body


def embed_text(message) -> str:  # type: ignore[no-untyped-def]
    embed = message.embeds[0]
    return f"{embed.title}\n{embed.description}"


def has_retry_button(message) -> bool:  # type: ignore[no-untyped-def]
    return any(
        child.custom_id and child.custom_id.startswith("enhance:retry:")
        for row in message.components
        for child in row.children
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "retry"),
    [
        (401, None, "rejected the bot's token", True),
        (402, None, "Out of Humalike credits", True),
        (403, None, "may not enhance personas", True),
        (422, validation_failed_body(msg="String should have at least 5 characters"), "at least 5 characters", False),
        (422, validation_error_body(message="persona looks like spam"), "persona looks like spam", False),
        (502, error_body("UPSTREAM_ERROR", "upstream down", trace_id="trc_abc123"), "trc_abc123", True),
        (429, None, "unavailable right now", True),
        (500, "<html>Bad gateway</html>", "unavailable right now", True),
    ],
)
async def test_a_refused_start_is_told_plainly_and_nothing_is_followed(
    world: World, status: int, body: object, expected: str, retry: bool
) -> None:
    world.fake.fail_next_start(status, body)

    result = await world.enhance()

    reply = world.message(result.response.id)
    assert expected in embed_text(reply)
    assert has_retry_button(reply) is retry
    assert world.fake.billed_starts == 0
    [job] = await world.jobs()
    assert job["state"] == "failed"
    await world.env.advance_time(60)
    assert sum(world.fake.polls.values()) == 0


async def test_a_start_that_gets_no_answer_is_not_resent(world: World) -> None:
    # Humalike accepted (and billed) the job but the answer was lost: resending could bill twice.
    # (A timeout is the same case to the bot: tests/test_humalike_client.py proves it raises NetworkError.)
    world.fake.fail_next_start(Fault.drop(commit=True))

    result = await world.enhance()

    assert "cannot tell whether Humalike started" in embed_text(world.message(result.response.id))
    assert world.fake.billed_starts == 1
    await world.env.advance_time(60)
    assert world.fake.billed_starts == 1


async def test_humalike_out_of_reach_is_told_plainly(world: World, unused_tcp_port: int) -> None:
    world.bot.humalike._base_url = f"http://127.0.0.1:{unused_tcp_port}"  # nothing listens there

    result = await world.enhance()

    assert "unavailable right now" in embed_text(world.message(result.response.id))


@pytest.mark.parametrize("error", ["provider_error", {"code": "provider_error", "message": "model overloaded"}])
async def test_a_failed_job_says_why_and_offers_retry(world: World, error: object) -> None:
    world.fake.script_enhancement(outcome=Fail(error))  # type: ignore[arg-type]
    result = await world.enhance()

    await world.env.advance_time(15)

    reply = world.message(result.response.id)
    assert "could not finish this persona" in embed_text(reply)
    assert "provider_error" in embed_text(reply)
    assert has_retry_button(reply)
    assert await world.personas() == []
    polls = sum(world.fake.polls.values())
    await world.env.advance_time(60)
    assert sum(world.fake.polls.values()) == polls  # a failed job is never polled again


async def test_retry_starts_one_fresh_enhancement_of_the_same_sketch(world: World) -> None:
    world.fake.script_enhancement(outcome=Fail("provider_error"))
    first = await world.enhance(grounding="web")
    await world.env.advance_time(40)

    retried = await world.alice.click(world.message(first.response.id), label="Retry")

    assert world.fake.billed_starts == 2
    assert world.fake.starts[1].body == {"persona": SAM_SKETCH, "grounding": "web"}
    assert not has_retry_button(world.message(first.response.id))
    await world.env.advance_time(60)
    card = world.message(retried.response.id)
    assert card.embeds[0].title == "Sam Okafor"
    assert len(await world.personas()) == 1


async def test_a_second_click_on_retry_does_not_start_a_second_job(world: World) -> None:
    world.fake.script_enhancement(outcome=Fail("provider_error"))
    first = await world.enhance()
    await world.env.advance_time(15)
    failure_message = world.message(first.response.id)
    # The bot cannot take the button away (say it lost access), so it is still there to click.
    world.env.inject_error("PATCH", f"/channels/*/messages/{failure_message.id}", status=403, code=50001)

    await world.alice.click(failure_message, label="Retry")
    second = await world.alice.click(failure_message, label="Retry")

    assert second.ephemeral
    assert "already retried" in second.response.content
    assert world.fake.billed_starts == 2


async def test_only_the_member_who_asked_can_retry(world: World) -> None:
    world.fake.script_enhancement(outcome=Fail("provider_error"))
    first = await world.enhance()
    await world.env.advance_time(15)

    result = await world.bob.click(world.message(first.response.id), label="Retry")

    assert result.ephemeral
    assert world.alice.mention in result.response.content
    assert world.fake.billed_starts == 1
    assert has_retry_button(world.message(first.response.id))


@pytest.mark.parametrize(
    "fault",
    [
        Fault.error(502),
        Fault.error(503),
        Fault.error(429, headers={"Retry-After": "5"}),
        Fault.error(429),
        Fault.null(),
        Fault.drop(),
        Fault.error(200, body="not json"),
    ],
    ids=["502", "503", "429-retry-after", "429", "null", "dropped", "garbage"],
)
async def test_poll_faults_are_retried_and_never_end_the_job(world: World, fault: Fault) -> None:
    world.fake.fail_next_polls(fault, times=4)
    result = await world.enhance()

    await world.env.advance_time(300)

    card = world.message(result.response.id)
    assert card.embeds[0].title == "Sam Okafor"
    assert len(await world.personas()) == 1
    assert world.fake.billed_starts == 1


async def test_the_reply_says_when_humalike_stops_answering_and_when_it_is_back(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=400)
    result = await world.enhance()
    await world.env.advance_time(3)
    world.fake.fail_next_polls(502, times=5)

    await world.env.advance_time(40)
    assert "isn't answering" in embed_text(world.message(result.response.id))

    await world.env.advance_time(200)
    assert "isn't answering" not in embed_text(world.message(result.response.id))
    assert "Running" in embed_text(world.message(result.response.id))


async def test_retry_after_is_honoured(world: World) -> None:
    result = await world.enhance()
    job_id = world.fake.starts[0].job_id
    world.fake.fail_next_polls(Fault.error(429, headers={"Retry-After": "120"}))

    await world.env.advance_time(100)
    assert world.fake.polls[job_id] == 1  # the 429 itself; nothing until 120 s have passed

    await world.env.advance_time(40)
    assert world.fake.polls[job_id] >= 2
    assert world.message(result.response.id).embeds[0].title == "Sam Okafor"


async def test_a_rejected_token_while_polling_pauses_the_job_and_says_so(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=60)
    result = await world.enhance()
    world.fake.fail_next_polls(401, times=100)

    await world.env.advance_time(10)

    assert "refused the bot's token" in embed_text(world.message(result.response.id))
    [job] = await world.jobs()
    assert job["state"] == "stalled"
    polls = sum(world.fake.polls.values())
    await world.env.advance_time(60)
    assert sum(world.fake.polls.values()) == polls


async def test_a_job_humalike_keeps_denying_knowledge_of_is_reported_lost(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=10_000)
    result = await world.enhance()
    world.fake.fail_next_polls(Fault.null(), times=1000)

    await world.env.advance_time(3600)

    reply = world.message(result.response.id)
    assert "lost track" in embed_text(reply)
    assert has_retry_button(reply)
