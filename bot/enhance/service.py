"""Starting enhancements and saving what they produce; Discord-facing code calls this."""

from __future__ import annotations

import logging

from bot.clock import wall_clock
from bot.enhance import failures
from bot.enhance.follower import EnhancementFollower
from bot.enhance.naming import cast_name_from, infer_name
from bot.enhance.render import (
    Progress,
    Reply,
    render_cast_card,
    render_failure,
    render_persona_card,
    render_progress,
)
from bot.enhance.reply import ReplyEditor
from bot.humalike import errors
from bot.humalike.client import HumalikeClient
from bot.humalike.models import Enhancement, Grounding, PolledJob, Population
from storage.casts import CastMember, CastStore
from storage.jobs import JobStore
from storage.models import Job, JobState
from storage.personas import PersonaStore

log = logging.getLogger(__name__)


class EnhancementService:
    def __init__(
        self,
        *,
        humalike: HumalikeClient,
        jobs: JobStore,
        personas: PersonaStore,
        casts: CastStore,
        editor: ReplyEditor,
        deadline_seconds: float,
    ) -> None:
        self._humalike = humalike
        self._jobs = jobs
        self._personas = personas
        self._casts = casts
        self._editor = editor
        self._deadline_seconds = deadline_seconds
        self.follower: EnhancementFollower  # set by the owner once both exist

    def queued_reply(self, job: Job) -> Reply:
        return render_progress(job, Progress(state=JobState.QUEUED))

    async def launch(self, job: Job) -> None:
        """Start the job on Humalike (billed, so exactly once) and hand it to the follower."""
        try:
            if job.is_cast:
                assert job.cast_size is not None
                started = await self._humalike.start_population(job.sketch, job.cast_size, Grounding(job.grounding))
            else:
                started = await self._humalike.start_enhancement(job.sketch, Grounding(job.grounding))
        except errors.HumalikeError as error:
            # Never retried here: an unanswered start may still have started a job.
            log.warning("Starting job %s failed: %s", job.id, error)
            failure = failures.failure_for_start_error(error)
            await self._fail(job, failure)
            return
        now = wall_clock()
        started_job = await self._jobs.mark_started(
            job.id, enhancement_id=started.id, started_at=now, deadline_at=now + self._deadline_seconds
        )
        assert started_job is not None
        await self.follower.adopt(started_job)

    async def _fail(self, job: Job, failure: failures.Failure) -> None:
        """Record the failure, then tell the member (recorded first: a restart must not resend it)."""
        await self._jobs.finish_failed(job.id, code=failure.code, detail=failure.detail, finished_at=wall_clock())
        await self._editor.show(job, render_failure(job, failure))

    async def reshow_stale_replies(self) -> int:
        """Show again the results Discord took nowhere before the last stop; returns how many."""
        stale = await self._jobs.finished_with_stale_replies()
        for job in stale:
            reply = await self._stored_result(job)
            if reply is None:  # its persona or cast was deleted since: nothing left to show
                await self._jobs.mark_reply_stale(job.id, False)
                continue
            await self._editor.show(job, reply)
        return len(stale)

    async def _stored_result(self, job: Job) -> Reply | None:
        """A finished job's reply, rebuilt from what was saved."""
        if job.state is JobState.SUCCEEDED and job.is_cast:
            cast = await self._casts.by_job(job.id)
            if cast is not None:
                return render_cast_card(cast, requested_by=job.user_id)
        elif job.state is JobState.SUCCEEDED and job.persona_id is not None:
            persona = await self._personas.get(job.persona_id)
            if persona is not None:
                return render_persona_card(persona, requested_by=job.user_id)
        elif job.state is JobState.FAILED and job.error_code is not None:
            return render_failure(job, failures.Failure(job.error_code, job.error_detail))
        return None

    async def resume_unfinished(self) -> int:
        """Pick up every job left unfinished by the last run; returns how many are followed again."""
        resumed = 0
        for job in await self._jobs.unfinished():
            if job.state is JobState.QUEUED:
                # We cannot know whether Humalike received the start; resending could start it twice.
                failure = failures.Failure(failures.INTERRUPTED)
                await self._fail(job, failure)
                continue
            self.follower.resume(job)
            resumed += 1
        return resumed

    async def complete(self, job: Job, result: PolledJob) -> None:
        """Save what a succeeded job produced (once, whatever happens) and show it."""
        if isinstance(result, Population):
            await self._complete_cast(job, result)
            return
        assert isinstance(result, Enhancement)
        persona = result.persona
        if persona is None:
            failure = failures.Failure("empty_result")
            await self._fail(job, failure)
            return
        name = infer_name(
            requested=job.requested_name,
            fields=persona.fields,
            sketch=job.sketch,
            sheet=persona.markdown,
            system_prompt=persona.system_prompt,
        )
        saved = await self._personas.save_enhanced(
            job,
            name=name,
            humalike_persona_id=persona.persona_id,
            fields=persona.fields,
            system_prompt=persona.system_prompt,
            markdown=persona.markdown,
            now=wall_clock(),
        )
        note = None
        if saved.persona.name != name:
            note = f"“{name}” was already taken in this server, so it is saved as “{saved.persona.name}”."
        if job.timed_out:
            note = ((note or "") + " It finished after the deadline, but it is all here.").strip()
        await self._editor.show(job, render_persona_card(saved.persona, requested_by=job.user_id, note=note))

    async def _complete_cast(self, job: Job, population: Population) -> None:
        generated = population.result.personas if population.result else []
        if not generated:
            failure = failures.Failure("empty_result")
            await self._fail(job, failure)
            return
        cast_name = job.requested_name or cast_name_from(job.sketch)
        members = [
            CastMember(
                name=infer_name(
                    requested=None,
                    fields=persona.fields,
                    sketch="",
                    sheet=persona.markdown,
                    system_prompt=persona.system_prompt,
                    placeholder=f"{cast_name} #{position + 1}",
                ),
                humalike_persona_id=persona.persona_id,
                fields=persona.fields,
                system_prompt=persona.system_prompt,
                markdown=persona.markdown,
            )
            for position, persona in enumerate(generated)
        ]
        cast = await self._casts.save_population(job, cast_name=cast_name, members=members, now=wall_clock())
        await self._editor.show(job, render_cast_card(cast, requested_by=job.user_id))
