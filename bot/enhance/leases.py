"""Which bot process follows which job: leases renewed while a process lives, taken over when it dies.

Every job in flight carries a lease in the database: the process holding it and until when. A
process renews its leases every third of the lease time; a job whose lease ran out (its process
was killed, its host lost) is claimed by the next process to look, within the lease time plus one
claim interval, and its reply goes on being edited from there: that needs only Discord's HTTP API.

On the embedded SQLite file only one process can use the database, so there is nobody to share
with: at start-up it takes every unfinished job, and nothing is renewed or claimed afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from bot.clock import wall_clock
from bot.enhance.wakeup import Wakeup
from storage.errors import DatabaseUnavailable
from storage.jobs import JobStore, Lease
from storage.models import Job

log = logging.getLogger(__name__)

# The longest gap between two looks for orphaned jobs: a dead process's jobs are taken over at
# most this long after their leases run out.
MAX_CLAIM_INTERVAL_SECONDS = 2.0
CLAIM_BATCH = 100


def process_owner() -> str:
    """This process's name in the leases it holds: its host and pid, and a random part for pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    def __init__(
        self,
        jobs: JobStore,
        *,
        lease_seconds: float,
        shared: bool,
        on_claimed: Callable[[Job], Awaitable[None]],
        on_renewed: Callable[[set[int]], None],
        owner: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._lease_seconds = lease_seconds
        self._shared = shared
        self._on_claimed = on_claimed
        self._on_renewed = on_renewed
        self.owner = owner or process_owner()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = Wakeup()
        self._renew_every = lease_seconds / 3
        self._next_renewal = 0.0
        self._released = False

    def lease(self) -> Lease:
        """A lease of this process's, from now."""
        return Lease(self.owner, wall_clock() + self._lease_seconds)

    async def start(self) -> int:
        """Take the jobs this process is to follow now; then, when shared, keep them and look for more."""
        taken = await self._claim(every_job=not self._shared)
        if self._shared and self._task is None:
            self._task = asyncio.create_task(self._keep(), name="job-leases")
        return taken

    async def stop(self) -> None:
        """Stop renewing; when shared, hand every job back so another process takes it over at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not self._shared or self._released:
            return
        self._released = True
        try:
            released = await self._jobs.release_leases(self.owner)
        except DatabaseUnavailable:
            log.warning("Could not hand this process's jobs back; others take them when their leases run out")
            return
        if released:
            log.info("Handed %d unfinished job(s) back for another process to follow", released)

    async def _claim(self, *, every_job: bool) -> int:
        taken = 0
        while True:
            claimed = await self._jobs.claim_orphans(
                self.lease(), now=wall_clock(), limit=CLAIM_BATCH, every_job=every_job
            )
            for job in claimed:
                await self._on_claimed(job)
            taken += len(claimed)
            if len(claimed) < CLAIM_BATCH:
                return taken

    async def _keep(self) -> None:
        self._next_renewal = wall_clock() + self._renew_every
        while True:
            await self._wakeup.sleep(min(MAX_CLAIM_INTERVAL_SECONDS, self._renew_every))
            try:
                await self.tick()
            except Exception:  # the database may be away for a while: keep trying, and say so
                log.exception("Could not renew or claim job leases; trying again")

    async def tick(self) -> int:
        """One round: renew this process's leases when due, then take over orphaned jobs; how many."""
        if wall_clock() >= self._next_renewal:
            self._next_renewal = wall_clock() + self._renew_every
            self._on_renewed(await self._jobs.renew_leases(self.lease()))
        taken = await self._claim(every_job=False)
        if taken:
            log.info("Took over %d job(s) whose process stopped renewing them", taken)
        return taken
