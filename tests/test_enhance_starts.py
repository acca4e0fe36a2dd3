"""Billable starts go out through the bot's own queue: each sent once, none reported unsent as unconfirmed."""

from __future__ import annotations

import asyncio

import pytest

from bot.enhance.service import SEND_RETRY_SECONDS
from bot.enhance.starts import StartQueue
from storage.errors import DatabaseUnavailable
from storage.models import Job, JobState
from tests.conftest import World
from tests.test_render import make_job

MANY = 300


async def queue_jobs_the_last_run_never_sent(world: World, count: int) -> None:
    """`count` answered jobs, recorded but not yet sent, as a stop leaves those waiting in the queue."""
    world.fake.fail_next_start(503)  # the one real /enhance is refused, so nothing is billed by it
    await world.enhance()
    await world.rows("UPDATE jobs SET state = 'queued', error_code = NULL, error_detail = NULL, finished_at = NULL")
    await world.rows(
        "WITH RECURSIVE copies(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copies WHERE n < ?)"
        " INSERT INTO jobs (guild_id, channel_id, user_id, user_name, sketch, grounding, state, created_at, kind)"
        " SELECT guild_id, channel_id, user_id, user_name, sketch || ' #' || n, grounding, state, created_at, kind"
        " FROM jobs, copies",
        count - 1,
    )


# Room to settle 300 starts, yet short of the HTTP pool's 15 s keep-alive sweep, which settling would wait for.
@pytest.mark.simcord(settle_timeout=10)
@pytest.mark.parametrize(
    "settings_overrides",
    [{"humalike_max_connections": 10, "humalike_max_concurrent_starts": 8}],
)
async def test_300_unsent_jobs_at_start_up_are_each_started_once_over_10_connections_and_none_unconfirmed(
    world: World,
) -> None:
    await queue_jobs_the_last_run_never_sent(world, MANY)
    # Slow enough that starts pile up: the queue, not luck, keeps them to 8 on the wire. (Starts timed
    # out while waiting for a connection are tests/test_humalike_client.py's: simcord's clock stands
    # still while a request is out.)
    world.fake.start_latency = 0.02

    await world.restart()

    jobs = await world.jobs()
    assert len(jobs) == MANY
    assert {job["state"] for job in jobs} == {"pending"}  # accepted, followed; none failed nor unconfirmed
    assert world.fake.billed_starts == MANY
    assert sorted(job["enhancement_id"] for job in jobs) == sorted(start.job_id for start in world.fake.starts)
    assert len({start.body["persona"] for start in world.fake.starts}) == MANY  # each job started exactly once
    assert world.fake.most_starts_in_flight <= 8  # the rest waited, unsent, in the bot's queue
    shown = [f"{m.embeds[0].title}\n{m.embeds[0].description}" for m in world.channel.history() if m.embeds]
    assert len([text for text in shown if "**Pending**" in text]) == MANY  # every member sees theirs accepted
    assert not [text for text in shown if "cannot tell" in text or "restarted" in text]


async def test_a_stop_sends_nothing_more_and_lets_the_starts_on_the_wire_be_answered() -> None:
    answer = asyncio.Event()
    sent: list[int] = []
    answered: list[int] = []

    async def send(job: Job) -> None:
        sent.append(job.id)
        await answer.wait()
        answered.append(job.id)

    starts = StartQueue(send, max_concurrent=2)
    for job_id in range(1, 6):
        starts.put(make_job(id=job_id, state=JobState.QUEUED))
    await asyncio.sleep(0.01)
    assert sent == [1, 2]  # two on the wire, three waiting unsent
    assert starts.waiting == 3

    stopping = asyncio.create_task(starts.stop())
    await asyncio.sleep(0.01)
    answer.set()
    await stopping

    assert sent == answered == [1, 2]  # the three waiting stay "queued", for the next start-up
    starts.put(make_job(id=6, state=JobState.QUEUED))
    await asyncio.sleep(0.01)
    assert sent == [1, 2]


async def test_a_start_the_database_could_not_mark_is_sent_once_it_is_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark_sending = world.bot.jobs.mark_sending
    refusals = [DatabaseUnavailable("connection refused")]

    async def away_once(job_id: int) -> Job | None:
        if refusals:
            raise refusals.pop()
        return await mark_sending(job_id)

    monkeypatch.setattr(world.bot.jobs, "mark_sending", away_once)
    result = await world.enhance()
    await world.env.advance_time(1)
    assert world.fake.billed_starts == 0  # nothing went out while the database was away

    await world.env.advance_time(SEND_RETRY_SECONDS)

    assert world.fake.billed_starts == 1
    [job] = await world.jobs()
    assert job["state"] in ("pending", "running")
    assert "Pending" in world.message(result.response.id).embeds[0].description
