"""Making personas and casts on Humalike: from a member's request to a saved result.

`submit` is the whole way in: check the request, record the job, answer the
member at once, and queue its start; when a slot is free (`starts`) the job is
sent to Humalike and handed to the follower, which sees it to its end. At
start-up, `start` picks up what the last run left unfinished, sending what it
never sent. What differs between a persona and a cast is in `kinds`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import discord

from bot import discord_limits
from bot.clock import wall_clock
from bot.enhance import failures
from bot.enhance.follower import EnhancementFollower
from bot.enhance.kinds import Kind, all_kinds
from bot.enhance.leases import LeaseKeeper
from bot.enhance.render import Progress, Reply, render_failure, render_progress
from bot.enhance.reply import ReplyEditor
from bot.enhance.request import JobRequest, checked_name, checked_sketch
from bot.enhance.schedule import PollSettings
from bot.enhance.starts import StartQueue
from bot.enhance.wakeup import Wakeup
from bot.errors import UserFacingError
from bot.humalike import errors
from bot.humalike.client import HumalikeClient
from storage.casts import CastStore
from storage.errors import DatabaseUnavailable
from storage.jobs import AlreadyRetried, JobStore, TooManyJobs
from storage.models import Job, JobState
from storage.personas import PersonaStore

log = logging.getLogger(__name__)

# A start that could not be marked "sending" (the database away) is tried again after this long.
SEND_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class JobLimits:
    max_in_flight_per_user: int
    deadline_seconds: float  # when a job is reported as late (it is still followed)
    max_concurrent_starts: int  # billable starts on the wire at once; the rest wait, unsent
    lease_seconds: float = 15.0  # how long a job stays with a process that stopped renewing it


class EnhancementService:
    def __init__(
        self,
        client: discord.Client,
        *,
        humalike: HumalikeClient,
        jobs: JobStore,
        personas: PersonaStore,
        casts: CastStore,
        poll: PollSettings,
        limits: JobLimits,
    ) -> None:
        self._jobs = jobs
        self._limits = limits
        self._kinds = all_kinds(humalike, personas, casts)
        self._editor = ReplyEditor(client, jobs)
        self._follower = EnhancementFollower(
            jobs=jobs,
            kinds=self._kinds,
            editor=self._editor,
            poll=poll,
            deadline_seconds=limits.deadline_seconds,
        )
        self._starts = StartQueue(self._send, max_concurrent=limits.max_concurrent_starts)
        self._sending_later: set[asyncio.Task[None]] = set()
        self._leases = LeaseKeeper(
            jobs,
            lease_seconds=limits.lease_seconds,
            shared=jobs.shared,
            on_claimed=self._take,
            on_renewed=self._follower.keep_only,
        )

    def held_replies(self) -> set[int]:
        """The jobs whose reply is kept in memory: those waiting to be shown again, no other."""
        return self._editor.held_jobs()

    def _kind(self, job: Job) -> Kind:
        return self._kinds[job.kind]

    # --- Start-up and shut-down -----------------------------------------------------------------

    async def start(self) -> None:
        """Follow every unfinished job nobody else holds, and show again what Discord did not take."""
        self._follower.start()
        taken = await self._leases.start()
        if taken:
            log.info("Took up %d unfinished job(s)", taken)
        reshown = await self._reshow_stale_replies()
        if reshown:
            log.info("Showed again %d result(s) Discord did not take before the last stop", reshown)

    async def stop(self) -> None:
        for task in self._sending_later:  # still "queued": sent after the next start-up, or by another process
            task.cancel()
        await self._starts.stop()  # first: a start answered meanwhile is handed to the follower
        await self._follower.stop()
        await self._leases.stop()  # last: what is still unfinished goes to another process at once
        self._editor.close()

    async def _take(self, job: Job) -> None:
        """Follow a job left unfinished by the last run, or by a process that died."""
        if job.state is JobState.QUEUED:
            self._starts.put(job)  # never sent: it goes out now, in the order it came
        elif job.state is JobState.SENDING:
            # We cannot know whether Humalike received the start; resending could start it twice.
            await self._follower.finish_failed(job, failures.Failure(failures.INTERRUPTED))
        else:
            self._follower.resume(job)

    async def _reshow_stale_replies(self) -> int:
        stale = await self._jobs.finished_with_stale_replies()
        for job in stale:
            reply = await self._stored_result(job)
            if reply is None:  # its persona or cast was deleted since: nothing left to show
                await self._jobs.mark_reply_stale(job.id, False)
                continue
            await self._editor.show(job, reply)
        return len(stale)

    async def _stored_result(self, job: Job) -> Reply | None:
        if job.state is JobState.SUCCEEDED:
            return await self._kind(job).stored_result(job)
        if job.state is JobState.FAILED and job.error_code is not None:
            return render_failure(job, self._kind(job).subject(job), failures.Failure(job.error_code, job.error_detail))
        return None

    # --- A member's request ---------------------------------------------------------------------

    async def submit(self, interaction: discord.Interaction, request: JobRequest) -> None:
        """Check the request, record the job, answer at once, then queue its start on Humalike."""
        assert interaction.guild_id is not None
        text = checked_sketch(request.text)
        name = checked_name(request.name)
        if name is not None:
            await self._kinds[request.kind].refuse_taken_name(interaction.guild_id, name)
        job = await self._record(interaction, request, text, name)
        job = await self._answer(interaction, job)
        self._starts.put(job)

    async def _record(self, interaction: discord.Interaction, request: JobRequest, text: str, name: str | None) -> Job:
        """Written before Humalike is called: a job is never lost, nor started twice."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        try:
            return await self._jobs.create(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                sketch=text,
                grounding=request.grounding,
                requested_name=name,
                created_at=wall_clock(),
                max_in_flight=self._limits.max_in_flight_per_user,
                retry_of=request.retry_of,
                user_name=interaction.user.display_name,
                kind=request.kind,
                cast_size=request.size,
                lease=self._leases.lease(),
            )
        except TooManyJobs as error:
            raise UserFacingError(
                f"You already have {error.in_flight} enhancements running, the most one member may have at "
                "once. Wait for one to finish, then try again."
            ) from None

    async def _answer(self, interaction: discord.Interaction, job: Job) -> Job:
        """The queued card, as the interaction's answer; the job with where its reply is."""
        reply = render_progress(job, self._kind(job).subject(job), Progress(state=JobState.QUEUED))
        try:
            callback = await interaction.response.send_message(embed=reply.embed)
        except discord.HTTPException:
            # The member never saw an answer (the interaction expired, say): nothing was started.
            await self._jobs.discard(job.id)
            raise
        message = callback.resource
        if not isinstance(message, discord.InteractionMessage):
            return job
        attached = await self._jobs.attach_reply(
            job.id,
            application_id=interaction.application_id,
            token=interaction.token,
            token_expires_at=interaction.created_at.timestamp() + discord_limits.INTERACTION_TOKEN_LIFETIME_SECONDS,
            message_id=message.id,
        )
        return attached or job

    async def _send(self, queued: Job) -> None:
        """Start the job on Humalike (billed, so exactly once) and hand it to the follower.

        Marked "sending" before the request goes out, and only if still "queued": a job is sent once,
        and after a stop only a job that may have been sent is left "sending".
        """
        try:
            job = await self._jobs.mark_sending(queued.id)
        except DatabaseUnavailable:
            # Nothing was sent, and the job is still "queued" in the database: try again shortly.
            log.warning("The database is away; job %s will be sent in %.0f s", queued.id, SEND_RETRY_SECONDS)
            self._send_later(queued)
            return
        if job is None:
            log.warning("Job %s was no longer queued when its turn came; not sent", queued.id)
            return
        try:
            started = await self._kind(job).start(job)
        except errors.HumalikeError as error:
            # Never retried here: an unanswered start may still have started a job.
            log.warning("Starting job %s failed: %s", job.id, error)
            await self._follower.finish_failed(job, failures.failure_for_start_error(error))
            return
        now = wall_clock()
        started_job = await self._jobs.mark_started(
            job.id, enhancement_id=started.id, started_at=now, deadline_at=now + self._limits.deadline_seconds
        )
        assert started_job is not None
        await self._follower.adopt(started_job)

    def _send_later(self, job: Job) -> None:
        async def after_a_while() -> None:
            await Wakeup().sleep(SEND_RETRY_SECONDS)  # the core's own sleep: one clock for all its waits
            self._starts.put(job)

        task = asyncio.create_task(after_a_while(), name=f"send-job-{job.id}-later")
        self._sending_later.add(task)
        task.add_done_callback(self._sending_later.discard)

    async def retry(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Retry button: a fresh job of the same request, started once however often pressed."""
        failed = await self._jobs.get(job_id)
        if failed is None or failed.guild_id != interaction.guild_id:
            raise UserFacingError("That job no longer exists.")
        if interaction.user.id != failed.user_id:
            raise UserFacingError(f"Only <@{failed.user_id}>, who asked for this persona, can retry it.")
        if failed.state is not JobState.FAILED:
            raise UserFacingError("That job has not failed, so there is nothing to retry.")
        request = JobRequest(
            kind=failed.kind,
            text=failed.sketch,
            grounding=failed.grounding,
            name=failed.requested_name,
            size=failed.cast_size,
            retry_of=failed.id,
        )
        try:
            await self.submit(interaction, request)
        except AlreadyRetried:
            raise UserFacingError(f"This job was already retried{await self._link_to_retry(failed)}.") from None
        if interaction.message is not None:
            try:
                await interaction.message.edit(view=None)
            except discord.HTTPException:
                log.info("Could not remove the Retry button from job %s's reply", failed.id)

    async def _link_to_retry(self, failed: Job) -> str:
        retried = await self._jobs.retry_of(failed.id)
        if retried is None or retried.message_id is None:
            return ""
        return f" (see https://discord.com/channels/{retried.guild_id}/{retried.channel_id}/{retried.message_id})"
