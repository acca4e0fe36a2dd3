"""The bot's own queue of billable starts: at most N on the wire, the rest waiting, still "queued".

Without it every start goes out at once and waits in the HTTP client's pool for a connection,
where a slow Humalike day could time it out before it was ever sent, and it would be reported
as "may have started". Here a job waits unsent until a slot is free; whoever sends it marks it
"sending" first (durably), so after a stop a job still "queued" was never sent and is started
after the next start-up, and only a "sending" one may have been.

Jobs leave in the order they came. The workers live only while there is work: an idle queue
holds no task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from storage.models import Job

log = logging.getLogger(__name__)

# At a stop, how long starts already on the wire may take to be answered. Most are answered in
# well under a second; one still unanswered after this is cut off, and reported at the next start-up.
STOP_GRACE_SECONDS = 5.0


class StartQueue:
    def __init__(self, send: Callable[[Job], Awaitable[None]], *, max_concurrent: int) -> None:
        self._send = send
        self._max_concurrent = max_concurrent
        self._waiting: deque[Job] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        # Counted by the workers themselves, so one that has just found the queue empty is never
        # counted on to take a job put after that (its task is not done until a later loop turn).
        self._working = 0
        self._stopping = False

    @property
    def waiting(self) -> int:
        """Jobs waiting for a free slot (not counting those being sent)."""
        return len(self._waiting)

    def put(self, job: Job) -> None:
        """Send the job's start once a slot is free (at once if one is)."""
        if self._stopping:
            return  # it stays "queued" in the database and is started after the next start-up
        self._waiting.append(job)
        if self._working < self._max_concurrent:
            self._working += 1
            worker = asyncio.create_task(self._work(), name="humalike-starts")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        try:
            while self._waiting and not self._stopping:
                job = self._waiting.popleft()
                try:
                    await self._send(job)
                except Exception:
                    log.exception("Unexpected error while starting job %s", job.id)
        finally:
            self._working -= 1

    async def stop(self) -> None:
        """Send nothing more; let the starts on the wire be answered, for a little while.

        The jobs still waiting need nothing written: they are "queued" in the database already.
        """
        self._stopping = True
        if self._waiting:
            log.info("Stopping with %d start(s) not yet sent; they go out after the next start-up", len(self._waiting))
        self._waiting.clear()
        workers = list(self._workers)
        if not workers:
            return
        _, unanswered = await asyncio.wait(workers, timeout=STOP_GRACE_SECONDS)
        for worker in unanswered:
            worker.cancel()
        await asyncio.gather(*unanswered, return_exceptions=True)
