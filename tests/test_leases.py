"""Leases: each job in flight is followed by one bot process at a time, and taken over when it dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.enhance.leases import LeaseKeeper
from storage.database import Backend, Database
from storage.jobs import JobStore, Lease
from storage.models import Job, JobState
from tests.databases import BACKENDS, fresh_database

NOW = 1_767_225_600.0
LEASE = 15.0


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend: Backend = request.param
    async with fresh_database(backend, tmp_path) as db:
        yield db


@pytest.fixture
def jobs(database: Database) -> JobStore:
    return JobStore(database)


async def new_job(jobs: JobStore, lease: Lease | None = None, *, user: int = 11) -> Job:
    return await jobs.create(
        guild_id=1,
        channel_id=5,
        user_id=user,
        sketch="Sam is a support main.",
        grounding="off",
        requested_name=None,
        created_at=NOW,
        max_in_flight=1000,
        lease=lease,
    )


def held_by(owner: str, *, at: float = NOW) -> Lease:
    return Lease(owner, at + LEASE)


async def test_a_new_job_is_held_by_the_process_that_recorded_it(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))

    assert (job.lease_owner, job.lease_until) == ("a", NOW + LEASE)
    assert await jobs.claim_orphans(held_by("b"), now=NOW + 1) == []


async def test_a_job_whose_lease_ran_out_is_taken_over(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))

    [taken] = await jobs.claim_orphans(held_by("b", at=NOW + LEASE + 1), now=NOW + LEASE + 1)

    assert (taken.id, taken.lease_owner, taken.lease_until) == (job.id, "b", NOW + 2 * LEASE + 1)
    stored = await jobs.get(job.id)
    assert stored is not None and stored.lease_owner == "b"


async def test_a_renewed_lease_is_not_taken_over(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))

    assert await jobs.renew_leases(held_by("a", at=NOW + 10)) == {job.id}

    assert await jobs.claim_orphans(held_by("b", at=NOW + LEASE + 1), now=NOW + LEASE + 1) == []


async def test_finished_jobs_are_neither_renewed_nor_taken_over(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))
    await jobs.finish_failed(job.id, code="provider_error", detail=None, finished_at=NOW + 1)

    assert await jobs.renew_leases(held_by("a", at=NOW + 2)) == set()
    assert await jobs.claim_orphans(held_by("b", at=NOW + 99), now=NOW + 99) == []


async def test_a_lease_given_up_at_a_stop_is_taken_over_at_once(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))

    assert await jobs.release_leases("a") == 1
    [taken] = await jobs.claim_orphans(held_by("b", at=NOW + 1), now=NOW + 1)

    assert (taken.id, taken.lease_owner) == (job.id, "b")


async def test_a_lost_lease_is_not_renewed_by_its_old_holder(jobs: JobStore) -> None:
    job = await new_job(jobs, held_by("a"))
    await jobs.claim_orphans(held_by("b", at=NOW + LEASE + 1), now=NOW + LEASE + 1)

    assert await jobs.renew_leases(held_by("a", at=NOW + LEASE + 2)) == set()
    assert await jobs.renew_leases(held_by("b", at=NOW + LEASE + 2)) == {job.id}


async def test_every_job_is_taken_when_no_other_process_can_hold_one(jobs: JobStore) -> None:
    live = await new_job(jobs, held_by("a"))

    [taken] = await jobs.claim_orphans(held_by("b", at=NOW + 1), now=NOW + 1, every_job=True)

    assert (taken.id, taken.lease_owner) == (live.id, "b")


async def test_processes_claiming_at_once_never_take_the_same_job(jobs: JobStore) -> None:
    for index in range(120):
        await new_job(jobs, user=index)  # never leased: a dead process's jobs, say

    claims = await asyncio.gather(
        *(jobs.claim_orphans(held_by(owner), now=NOW, limit=25) for owner in "abcdefgh" for _ in range(3))
    )

    taken = [job.id for claim in claims for job in claim]
    assert len(taken) == len(set(taken)) == 120
    for claim in claims:
        for job in claim:
            stored = await jobs.get(job.id)
            assert stored is not None and stored.lease_owner == job.lease_owner
            assert stored.state is JobState.QUEUED


# --- Processes: a keeper per bot process ------------------------------------------------------


class Process:
    """What a bot process's enhancement service does with its leases: the jobs it follows."""

    def __init__(self, jobs: JobStore, name: str, *, shared: bool = True) -> None:
        self.following: set[int] = set()
        self.keeper = LeaseKeeper(
            jobs,
            lease_seconds=LEASE,
            shared=shared,
            on_claimed=self._follow,
            on_renewed=self._keep_only,
            owner=name,
        )

    async def _follow(self, job: Job) -> None:
        self.following.add(job.id)

    def _keep_only(self, held: set[int]) -> None:
        self.following &= held


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [NOW]
    monkeypatch.setattr("bot.enhance.leases.wall_clock", lambda: now[0])
    return now


async def test_a_killed_processs_jobs_are_taken_over_once_their_leases_run_out(
    jobs: JobStore, clock: list[float]
) -> None:
    a, b = Process(jobs, "a"), Process(jobs, "b")
    job = await new_job(jobs, a.keeper.lease())
    await a.keeper.tick()
    await b.keeper.tick()
    assert (a.following, b.following) == (set(), set())  # a recorded it: b leaves it alone

    clock[0] += LEASE - 1  # a is killed: it renews no more
    assert await b.keeper.tick() == 0
    clock[0] += 2  # a's lease has run out
    assert await b.keeper.tick() == 1

    assert b.following == {job.id}
    stored = await jobs.get(job.id)
    assert stored is not None and stored.lease_owner == "b"


async def test_a_live_process_keeps_its_jobs_and_drops_one_taken_from_it(
    jobs: JobStore, database: Database, clock: list[float]
) -> None:
    a, b = Process(jobs, "a"), Process(jobs, "b")
    kept, lost = await new_job(jobs, a.keeper.lease()), await new_job(jobs, a.keeper.lease())
    a.following = {kept.id, lost.id}

    for _ in range(10):  # a lives on, renewing in time: b finds nothing to take
        clock[0] += LEASE / 3
        await a.keeper.tick()
        assert await b.keeper.tick() == 0
    # a's lease on one job runs out (a pause longer than the lease, say) and b takes that job.
    await database.write("UPDATE jobs SET lease_until = ? WHERE id = ?", (clock[0] - 1, lost.id))
    assert await b.keeper.tick() == 1
    clock[0] += LEASE / 3
    await a.keeper.tick()

    assert (a.following, b.following) == ({kept.id}, {lost.id})


async def test_on_sqlite_the_one_process_takes_every_unfinished_job_at_start(
    tmp_path: Path, clock: list[float]
) -> None:
    async with fresh_database("sqlite", tmp_path) as database:
        jobs = JobStore(database)
        before_restart = await new_job(jobs, Lease("the-process-that-crashed", NOW + LEASE))
        restarted = Process(jobs, "after-restart", shared=jobs.shared)

        assert await restarted.keeper.start() == 1  # at once, not after the crashed process's lease

        assert restarted.following == {before_restart.id}


async def test_more_jobs_than_one_claim_takes_are_each_taken_once(jobs: JobStore, clock: list[float]) -> None:
    for index in range(250):
        await new_job(jobs, user=index)
    alone = Process(jobs, "alone", shared=jobs.shared)

    assert await alone.keeper.start() == 250

    assert len(alone.following) == 250
