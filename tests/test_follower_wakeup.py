"""The follower wakes for a new job by itself: no Discord client, no Discord event."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.enhance.follower import EnhancementFollower
from bot.enhance.kinds import all_kinds
from bot.enhance.render import Reply
from bot.enhance.reply import ReplyEditor
from bot.enhance.schedule import PollSettings
from bot.humalike.client import HumalikeClient
from bot.humalike.models import Grounding
from storage.casts import CastStore
from storage.jobs import JobStore
from storage.models import Job
from storage.personas import PersonaStore
from storage.sqlite import SqliteDatabase
from tests.conftest import SAM_SKETCH
from tests.fakes.humalike import DEFAULT_TOKEN, FakeHumalike

# Real seconds: this follower runs on the event loop's own clock.
FIRST_POLL_AFTER = 0.05
PATIENCE = 1.0  # twenty times the first delay


class RecordedReplies(ReplyEditor):
    """What the member would be shown, kept here: this follower has no Discord client at all."""

    def __init__(self) -> None:  # no client to hand the base class, on purpose
        self.replies: list[tuple[int, Reply]] = []

    async def show(self, job: Job, reply: Reply) -> Job:
        self.replies.append((job.id, reply))
        return job


async def accepted_job(jobs: JobStore, humalike: HumalikeClient) -> Job:
    """A job recorded and accepted by Humalike, as the bot hands it to the follower."""
    job = await jobs.create(
        guild_id=1,
        channel_id=2,
        user_id=3,
        sketch=SAM_SKETCH,
        grounding="off",
        requested_name=None,
        created_at=time.time(),
        max_in_flight=3,
    )
    started = await humalike.start_enhancement(job.sketch, Grounding.OFF)
    now = time.time()
    accepted = await jobs.mark_started(job.id, enhancement_id=started.id, started_at=now, deadline_at=now + 1800)
    assert accepted is not None
    return accepted


async def test_a_sleeping_follower_is_woken_by_a_new_job_without_any_discord_client(
    tmp_path: Path, fake_humalike: FakeHumalike
) -> None:
    database = await SqliteDatabase.open(tmp_path / "bot.sqlite3")
    jobs = JobStore(database)
    try:
        async with aiohttp.ClientSession() as session:
            assert fake_humalike.base_url is not None
            humalike = HumalikeClient(
                session, base_url=fake_humalike.base_url, token=SecretStr(DEFAULT_TOKEN), timeout=2.0
            )
            follower = EnhancementFollower(
                jobs=jobs,
                kinds=all_kinds(humalike, PersonaStore(database), CastStore(database)),
                editor=RecordedReplies(),
                poll=PollSettings(first_delay=FIRST_POLL_AFTER, interval=FIRST_POLL_AFTER),
                deadline_seconds=1800,
            )
            follower.start()
            await asyncio.sleep(FIRST_POLL_AFTER)  # nothing to follow yet: asleep, with no time to wake up
            job = await accepted_job(jobs, humalike)
            assert job.enhancement_id is not None

            await follower.adopt(job)
            await asyncio.sleep(PATIENCE)
            await follower.stop()

        assert fake_humalike.polls[job.enhancement_id] >= 1  # woken by the job, it polled at the first delay
    finally:
        await database.close()
