"""Keeping a job's one reply current, whatever happened to the interaction.

While the interaction token lives (15 minutes) the reply is edited through
it. After that, or if it fails, the bot edits the message as itself. If even
that is impossible (the message was deleted, access lost), the result is
posted in the channel, and that message becomes the job's reply.
"""

from __future__ import annotations

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

NO_MENTIONS = discord.AllowedMentions.none()
# Stop using the token a little before Discord does, so an edit never races its expiry.
TOKEN_MARGIN_SECONDS = 30.0


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
        "allowed_mentions": NO_MENTIONS,
    }


class ReplyEditor:
    def __init__(self, client: discord.Client, jobs: JobStore) -> None:
        self._client = client
        self._jobs = jobs

    async def show(self, job: Job, reply: Reply) -> Job:
        """Show `reply` as the job's reply; returns the job, with its reply moved if it had to be."""
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

    async def _post_anew(self, job: Job, reply: Reply) -> Job:
        channel = self._client.get_partial_messageable(job.channel_id)
        view = _view(reply)
        try:
            message = await channel.send(
                content=reply.content,
                embed=reply.embed,
                files=_files(reply),
                allowed_mentions=NO_MENTIONS,
                **({"view": view} if view is not None else {}),
            )
        except discord.HTTPException:
            log.warning("Could not show job %s's reply anywhere in channel %s", job.id, job.channel_id)
            return job
        await self._jobs.replace_reply(job.id, message.id)
        return replace(job, message_id=message.id, interaction_token=None, token_expires_at=None)
