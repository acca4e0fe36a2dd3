"""Keeping a job's one reply current, whatever happened to the interaction.

While the interaction token lives (15 minutes) the reply is edited through
it. After that, or if it fails, the bot edits the message as itself. If even
that is impossible (the message was deleted, access lost), the result is
posted in the channel, and that message becomes the job's reply. If Discord
takes it nowhere (an outage), it is shown again a little later, a few times,
unless a newer reply for the job has come first; the job is marked meanwhile,
so a restart shows its result again too.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import replace
from typing import Any

import discord

from bot.enhance.render import Reply
from bot.enhance.views import retry_view
from storage.jobs import JobStore
from storage.models import Job

log = logging.getLogger(__name__)

# Stop using the token a little before Discord does, so an edit never races its expiry.
TOKEN_MARGIN_SECONDS = 30.0
# Waits before showing again a reply Discord took nowhere; then it is given up (and logged).
RESHOW_AFTER_SECONDS = (30.0, 120.0, 600.0)


def _files(reply: Reply) -> list[discord.File]:
    return [discord.File(io.BytesIO(f.content), filename=f.filename) for f in reply.files]


def _view(reply: Reply) -> discord.ui.View | None:
    return retry_view(reply.retry_job_id) if reply.retry_job_id is not None else None


def _edit(reply: Reply) -> dict[str, Any]:
    """An edit that replaces everything: text, embed, files and buttons."""
    return {
        "content": reply.content,
        "embed": reply.embed,
        "attachments": _files(reply),
        "view": _view(reply),
    }


class ReplyEditor:
    def __init__(self, client: discord.Client, jobs: JobStore) -> None:
        self._client = client
        self._jobs = jobs
        self._reshowing: dict[int, asyncio.Task[None]] = {}  # job id -> its reply waiting to be shown again
        # Jobs marked stale in the database by this run while a re-show of theirs is pending: a re-show
        # that succeeds clears the mark behind the caller's back, so the caller's copy of the job cannot say.
        self._stale: set[int] = set()

    async def show(self, job: Job, reply: Reply) -> Job:
        """Show `reply` as the job's reply; returns the job, with its reply moved if it had to be.

        The job returned says whether its reply is stale: pass it to the next `show`.
        """
        waiting = self._reshowing.pop(job.id, None)
        if waiting is not None:
            waiting.cancel()  # this reply is newer
        shown = await self._show_once(job, reply)
        if shown is None:
            await self._mark_stale(job, True)
            self._reshow_later(job, reply, attempt=0)
            return replace(job, reply_stale=True)
        await self._mark_stale(job, False)
        return replace(shown, reply_stale=False)

    async def _mark_stale(self, job: Job, stale: bool) -> None:
        # Written only on a change: a reply shown as usual costs no write.
        if stale and job.id not in self._stale:
            await self._jobs.mark_reply_stale(job.id, True)
        elif not stale and (job.reply_stale or job.id in self._stale):
            await self._jobs.mark_reply_stale(job.id, False)
        if stale:
            self._stale.add(job.id)
        else:
            self._stale.discard(job.id)

    def close(self) -> None:
        for task in self._reshowing.values():
            task.cancel()
        self._reshowing.clear()
        self._stale.clear()

    def held_jobs(self) -> set[int]:
        """Every job kept in memory: those with a re-show pending, no other."""
        return set(self._reshowing) | self._stale

    def _reshow_later(self, job: Job, reply: Reply, *, attempt: int) -> None:
        if attempt >= len(RESHOW_AFTER_SECONDS):
            # Still marked in the database, so the next start-up shows it; and the job the caller holds
            # says it is stale (see `show`), so a later reply that is shown clears the mark.
            log.warning("Gave up showing job %s's reply: Discord took it nowhere", job.id)
            self._stale.discard(job.id)
            return
        self._reshowing[job.id] = asyncio.create_task(self._reshow(job, reply, attempt), name=f"reshow-job-{job.id}")

    async def _reshow(self, job: Job, reply: Reply, attempt: int) -> None:
        await asyncio.sleep(RESHOW_AFTER_SECONDS[attempt])
        # Still registered while it shows, so a newer reply cancels it rather than racing it.
        shown = await self._show_once(job, reply)
        if self._reshowing.get(job.id) is asyncio.current_task():
            del self._reshowing[job.id]
        if shown is None:
            self._reshow_later(job, reply, attempt=attempt + 1)
        else:
            await self._mark_stale(job, False)

    async def _show_once(self, job: Job, reply: Reply) -> Job | None:
        """Show `reply` by the first route Discord takes; None if it took none."""
        now = discord.utils.utcnow().timestamp()
        if job.message_id is not None:
            token_alive = (
                job.interaction_token is not None
                and job.application_id is not None
                and job.token_expires_at is not None
                and now < job.token_expires_at - TOKEN_MARGIN_SECONDS
            )
            if token_alive and await self._edit_through_token(job, reply):
                return job
            if await self._edit_as_bot(job, reply):
                return job
        return await self._post_anew(job, reply)

    async def _edit_through_token(self, job: Job, reply: Reply) -> bool:
        assert job.application_id and job.interaction_token and job.message_id
        webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=self._client)
        try:
            await webhook.edit_message(job.message_id, **_edit(reply))
            return True
        except discord.HTTPException as error:
            log.info("Editing job %s through its token failed (%s); editing as the bot", job.id, error.status)
            return False

    async def _edit_as_bot(self, job: Job, reply: Reply) -> bool:
        assert job.message_id
        message = self._client.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            await message.edit(**_edit(reply))
            return True
        except discord.HTTPException as error:
            log.info("Editing job %s's message as the bot failed (%s); posting anew", job.id, error.status)
            return False

    async def _post_anew(self, job: Job, reply: Reply) -> Job | None:
        channel = self._client.get_partial_messageable(job.channel_id)
        view = _view(reply)
        try:
            message = await channel.send(
                content=reply.content,
                embed=reply.embed,
                files=_files(reply),
                **({"view": view} if view is not None else {}),
            )
        except discord.HTTPException:
            log.warning("Could not show job %s's reply anywhere in channel %s", job.id, job.channel_id)
            return None
        await self._jobs.replace_reply(job.id, message.id)
        return replace(job, message_id=message.id, interaction_token=None, token_expires_at=None)
