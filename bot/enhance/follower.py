"""Following every running job from one loop, to its end: saved and shown, or failed.

One task sleeps until the next poll is due (or a new job wakes it, through a
`Wakeup` of its own rather than a Discord event), then polls the due jobs,
each poll its own short task. Nothing here outlives `stop()`. State that
changes on every poll (errors, the next due time) stays in memory; the
database is written only when the job itself changes.

`finish_failed` is the one way a job fails, here or before it was followed.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from dataclasses import dataclass, replace

from bot.clock import wall_clock
from bot.enhance import failures
from bot.enhance.kinds import Kind
from bot.enhance.render import Progress, Reply, render_failure, render_progress
from bot.enhance.reply import ReplyEditor
from bot.enhance.schedule import PollSettings, next_poll_delay
from bot.enhance.wakeup import Wakeup
from bot.humalike import errors
from bot.humalike.models import Grounding, JobStatus
from storage.jobs import JobStore
from storage.models import Job, JobKind, JobState

log = logging.getLogger(__name__)

# Consecutive unanswered polls before the reply says Humalike is having trouble.
TROUBLE_AFTER_ERRORS = 3
# `null` for a job Humalike accepted is treated as a blip; this many in a row means it is gone.
LOST_AFTER_NULLS = 20
MAX_CONCURRENT_POLLS = 64

STATE_FOR_STATUS = {JobStatus.PENDING: JobState.PENDING, JobStatus.RUNNING: JobState.RUNNING}


@dataclass
class Followed:
    job: Job
    due: float  # time.monotonic() of the next poll
    errors: int = 0
    nulls: int = 0
    shown: tuple[object, ...] | None = None  # signature of the reply last shown
    polling: bool = False
    produced: tuple[int, int] | None = None  # (made, asked for), for a job that reports it (a cast)


class EnhancementFollower:
    def __init__(
        self,
        *,
        jobs: JobStore,
        kinds: dict[JobKind, Kind],
        editor: ReplyEditor,
        poll: PollSettings,
        deadline_seconds: float,
    ) -> None:
        self._jobs = jobs
        self._kinds = kinds
        self._editor = editor
        self._poll = poll
        self._deadline_seconds = deadline_seconds
        self._followed: dict[int, Followed] = {}
        # (due, job id), soonest first. An entry whose job is gone or due elsewhere is skipped:
        # cheaper than scanning every followed job each time the loop wakes.
        self._due: list[tuple[float, int]] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self._wakeup = Wakeup()

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="enhancement-follower")

    async def stop(self) -> None:
        tasks = [*self._polls, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None
        self._polls.clear()

    async def adopt(self, job: Job) -> None:
        """Follow a job Humalike has accepted: show where it stands, then poll it."""
        entry = self._follow(job, due=time.monotonic() + self._poll.first_delay)
        await self._show_progress(entry)
        self._wakeup.wake()

    def resume(self, job: Job) -> None:
        """Follow a job found unfinished at start-up: poll it at once; the poll updates the reply."""
        self._follow(job, due=time.monotonic())
        self._wakeup.wake()

    def keep_only(self, held: set[int]) -> None:
        """Stop following the jobs this process no longer holds: another has taken them over."""
        for job_id in [job_id for job_id in self._followed if job_id not in held]:
            log.warning("Job %s was taken over by another process; no longer following it here", job_id)
            self._followed.pop(job_id, None)

    def _follow(self, job: Job, *, due: float) -> Followed:
        entry = Followed(job=job, due=due)
        self._followed[job.id] = entry
        heapq.heappush(self._due, (due, job.id))
        return entry

    def _reschedule(self, entry: Followed, due: float) -> None:
        entry.due = due
        heapq.heappush(self._due, (due, entry.job.id))

    def _is_current(self, due: float, job_id: int) -> bool:
        entry = self._followed.get(job_id)
        return entry is not None and not entry.polling and entry.due == due

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                due, job_id = heapq.heappop(self._due)
                if self._is_current(due, job_id):
                    entry = self._followed[job_id]
                    entry.polling = True
                    task = asyncio.create_task(self._poll_once(entry), name=f"poll-job-{job_id}")
                    self._polls.add(task)
                    task.add_done_callback(self._polls.discard)
            while self._due and not self._is_current(*self._due[0]):
                heapq.heappop(self._due)
            timeout = max(0.0, self._due[0][0] - time.monotonic()) if self._due else None
            # Not a bare sleep: a new job, or a poll that rescheduled its job, wakes the loop at once.
            await self._wakeup.sleep(timeout)

    async def _poll_once(self, entry: Followed) -> None:
        retry_after: float | None = None
        try:
            async with self._slots:
                await self._check(entry)
        except errors.RateLimited as error:
            entry.errors += 1
            retry_after = error.retry_after
            await self._note_trouble(entry)
        except errors.TransientError as error:
            entry.errors += 1
            log.info("Poll of job %s failed, will retry: %s", entry.job.id, error)
            await self._note_trouble(entry)
        except errors.ValidationFailed as error:
            await self.finish_failed(entry.job, failures.Failure(failures.LOST, error.message))
        except errors.FinalError as error:
            await self._stall(entry, error)
        except Exception:
            entry.errors += 1
            log.exception("Unexpected error while following job %s", entry.job.id)
        finally:
            entry.polling = False
        if entry.job.id in self._followed:
            await self._check_deadline(entry)
            self._reschedule(entry, time.monotonic() + self._next_delay(entry, retry_after))
            self._wakeup.wake()

    async def _check_deadline(self, entry: Followed) -> None:
        """Past its deadline a job is reported as late, once, whether or not Humalike is answering."""
        job = entry.job
        if job.timed_out or job.deadline_at is None or wall_clock() < job.deadline_at:
            return
        await self._jobs.mark_timed_out(job.id)
        entry.job = replace(job, timed_out=True)
        await self._show_progress(entry)

    def _next_delay(self, entry: Followed, retry_after: float | None) -> float:
        job = entry.job
        elapsed = wall_clock() - (job.started_at or job.created_at)
        delay = next_poll_delay(
            elapsed=elapsed,
            grounding=Grounding(job.grounding),
            settings=self._poll,
            consecutive_errors=entry.errors,
            retry_after=retry_after,
            past_deadline=job.timed_out,
        )
        # A little jitter on backoff keeps a thousand retrying jobs from polling in lockstep.
        return delay * (1 + 0.1 * random.random()) if entry.errors else delay

    async def _check(self, entry: Followed) -> None:
        job = entry.job
        kind = self._kinds[job.kind]
        polled = await kind.poll(job)
        if polled is None:
            entry.nulls += 1
            if entry.nulls >= LOST_AFTER_NULLS:
                await self.finish_failed(job, failures.Failure(failures.LOST))
                return
            raise errors.UnexpectedResponse("Humalike answered null for a job it accepted")
        entry.errors = entry.nulls = 0
        entry.produced = kind.produced(polled) or entry.produced
        if polled.status is JobStatus.SUCCEEDED:
            saved = await kind.save(job, polled)
            if isinstance(saved, failures.Failure):
                await self.finish_failed(job, saved)
                return
            await self._editor.show(job, saved)
            self._followed.pop(job.id, None)  # only once saved: a failed save is polled again
            return
        if polled.status is JobStatus.FAILED:
            reported = polled.error
            failure = (
                failures.Failure(reported.code, reported.message) if reported else failures.Failure("unknown_error")
            )
            await self.finish_failed(job, failure)
            return
        new_state = STATE_FOR_STATUS[polled.status]
        if new_state is not job.state:
            await self._jobs.set_state(job.id, new_state)
            entry.job = replace(job, state=new_state)
        # Rendering is cheap; _show compares and edits only when what the user sees changed.
        await self._show_progress(entry)

    def _progress(self, entry: Followed) -> Progress:
        return Progress(
            state=entry.job.state,
            trouble=entry.errors >= TROUBLE_AFTER_ERRORS,
            timed_out=entry.job.timed_out,
            deadline_seconds=self._deadline_seconds,
            produced=entry.produced,
        )

    async def _show_progress(self, entry: Followed) -> None:
        job = entry.job
        await self._show(entry, render_progress(job, self._kinds[job.kind].subject(job), self._progress(entry)))

    async def _show(self, entry: Followed, reply: Reply) -> None:
        signature = reply.signature()
        if signature == entry.shown:
            return  # edit only when something the user sees changes
        entry.job = await self._editor.show(entry.job, reply)
        entry.shown = signature

    async def _note_trouble(self, entry: Followed) -> None:
        if entry.errors >= TROUBLE_AFTER_ERRORS:
            await self._show_progress(entry)

    async def finish_failed(self, job: Job, failure: failures.Failure) -> None:
        """Record the failure, stop following the job, then tell the member.

        Recorded first: a restart must never start or poll it again.
        """
        await self._jobs.finish_failed(job.id, code=failure.code, detail=failure.detail, finished_at=wall_clock())
        self._followed.pop(job.id, None)
        await self._editor.show(job, render_failure(job, self._kinds[job.kind].subject(job), failure))

    async def _stall(self, entry: Followed, error: errors.HumalikeError) -> None:
        log.error("Humalike refused to report on job %s (%s); pausing it until restart", entry.job.id, error)
        self._followed.pop(entry.job.id, None)
        await self._jobs.set_state(entry.job.id, JobState.STALLED)
        stalled = replace(entry.job, state=JobState.STALLED)
        subject = self._kinds[stalled.kind].subject(stalled)
        await self._editor.show(stalled, render_progress(stalled, subject, Progress(state=JobState.STALLED)))
