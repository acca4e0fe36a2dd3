"""/enhance: start, follow and keep a persona enhancement."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.enhance.follower import EnhancementFollower
from bot.enhance.naming import tidy_name
from bot.enhance.reply import NO_MENTIONS, ReplyEditor
from bot.enhance.schedule import PollSettings
from bot.enhance.service import EnhancementService
from bot.enhance.views import SKETCH_LIMIT, RetryButton, SketchModal
from bot.errors import UserFacingError
from storage.jobs import AlreadyRetried, TooManyJobs
from storage.models import JobState

log = logging.getLogger(__name__)

INTERACTION_TOKEN_LIFETIME = 15 * 60


def checked_sketch(sketch: str) -> str:
    """The sketch as sent to Humalike, or a UserFacingError saying what is wrong with it."""
    text = sketch.strip()
    if not text:
        raise UserFacingError("The sketch is empty. Describe your character in a sentence or more.")
    if len(text) > SKETCH_LIMIT:
        raise UserFacingError(
            f"The sketch is {len(text):,} characters; the limit is {SKETCH_LIMIT:,}. Trim it and try again."
        )
    return text


class Enhance(commands.Cog):
    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.editor = ReplyEditor(bot, bot.jobs)
        self.service = EnhancementService(
            humalike=bot.humalike,
            jobs=bot.jobs,
            personas=bot.personas,
            casts=bot.casts,
            editor=self.editor,
            deadline_seconds=settings.job_deadline_seconds,
        )
        self.follower = EnhancementFollower(
            bot,
            humalike=bot.humalike,
            jobs=bot.jobs,
            editor=self.editor,
            poll=PollSettings(
                first_delay=settings.poll_first_delay_seconds,
                interval=settings.poll_interval_seconds,
                max_backoff=settings.poll_max_backoff_seconds,
            ),
            deadline_seconds=settings.job_deadline_seconds,
            on_succeeded=self.service.complete,
        )
        self.service.follower = self.follower

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RetryButton)
        self.follower.start()
        resumed = await self.service.resume_unfinished()
        if resumed:
            log.info("Resumed following %d unfinished enhancement(s)", resumed)
        reshown = await self.service.reshow_stale_replies()
        if reshown:
            log.info("Showed again %d result(s) Discord did not take before the last stop", reshown)

    async def cog_unload(self) -> None:
        await self.follower.stop()
        self.editor.close()
        self.bot.remove_dynamic_items(RetryButton)

    @app_commands.command(name="enhance")
    @app_commands.guild_only()
    @app_commands.describe(
        sketch="A short description of the character; leave it out to write a long one in a form",
        grounding="How much real-world lookup Humalike does first (research is slowest)",
        name="The persona's name; by default it comes from the result or the sketch",
    )
    async def enhance(
        self,
        interaction: discord.Interaction,
        sketch: app_commands.Range[str, 1, SKETCH_LIMIT] | None = None,
        grounding: Literal["off", "web", "research"] = "off",
        name: app_commands.Range[str, 1, 80] | None = None,
    ) -> None:
        """Turn a short character sketch into a full Humalike persona."""
        if sketch is None:
            modal = SketchModal(
                lambda modal_interaction, text, modal_name: self.begin(modal_interaction, text, grounding, modal_name),
                name=name,
            )
            await interaction.response.send_modal(modal)
            return
        await self.begin(interaction, sketch, grounding, name)

    async def begin(
        self,
        interaction: discord.Interaction,
        sketch: str,
        grounding: str,
        name: str | None,
        *,
        retry_of: int | None = None,
        cast_size: int | None = None,
    ) -> None:
        """Validate, record the job, answer at once, then start it on Humalike.

        With `cast_size`, the job is a population: `sketch` is its prompt and `name` the cast's.
        """
        assert interaction.guild_id is not None and interaction.channel_id is not None
        text = checked_sketch(sketch)
        requested_name = tidy_name(name) if name else None
        if name is not None and not requested_name:
            raise UserFacingError("That name has nothing printable in it. Pick another, or leave it out.")
        if (
            requested_name
            and cast_size is None
            and await self.bot.personas.name_taken(interaction.guild_id, requested_name)
        ):
            raise UserFacingError(
                f"A persona named “{requested_name}” already exists in this server. "
                "Pick another name, or leave it out to let the bot choose."
            )
        if (
            requested_name
            and cast_size is not None
            and await self.bot.casts.by_name(interaction.guild_id, requested_name)
        ):
            raise UserFacingError(f"A cast named “{requested_name}” already exists in this server. Pick another name.")
        try:
            job = await self.bot.jobs.create(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                sketch=text,
                grounding=grounding,
                requested_name=requested_name,
                created_at=wall_clock(),
                max_in_flight=self.bot.settings.max_jobs_per_user,
                retry_of=retry_of,
                user_name=interaction.user.display_name,
                kind="population" if cast_size is not None else "enhancement",
                cast_size=cast_size,
            )
        except TooManyJobs as error:
            raise UserFacingError(
                f"You already have {error.in_flight} enhancements running, the most one member may have at "
                "once. Wait for one to finish, then try again."
            ) from None
        reply = self.service.queued_reply(job)
        try:
            callback = await interaction.response.send_message(embed=reply.embed, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            # The member never saw an answer (the interaction expired, say): nothing was started.
            await self.bot.jobs.discard(job.id)
            raise
        message = callback.resource
        if isinstance(message, discord.InteractionMessage):
            job = (
                await self.bot.jobs.attach_reply(
                    job.id,
                    application_id=interaction.application_id,
                    token=interaction.token,
                    token_expires_at=interaction.created_at.timestamp() + INTERACTION_TOKEN_LIFETIME,
                    message_id=message.id,
                )
                or job
            )
        await self.service.launch(job)

    async def retry(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Retry button: a fresh enhancement of the same sketch, started once however often clicked."""
        failed = await self.bot.jobs.get(job_id)
        if failed is None or failed.guild_id != interaction.guild_id:
            await interaction.response.send_message("That job no longer exists.", ephemeral=True)
            return
        if interaction.user.id != failed.user_id:
            await interaction.response.send_message(
                f"Only <@{failed.user_id}>, who asked for this persona, can retry it.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        if failed.state is not JobState.FAILED:
            await interaction.response.send_message(
                "That job has not failed, so there is nothing to retry.", ephemeral=True
            )
            return
        try:
            await self.begin(
                interaction,
                failed.sketch,
                failed.grounding,
                failed.requested_name,
                retry_of=failed.id,
                cast_size=failed.cast_size if failed.is_cast else None,
            )
        except AlreadyRetried:
            retried = await self.bot.jobs.retry_of(failed.id)
            where = (
                f" (see https://discord.com/channels/{retried.guild_id}/{retried.channel_id}/{retried.message_id})"
                if retried and retried.message_id
                else ""
            )
            await interaction.response.send_message(f"This job was already retried{where}.", ephemeral=True)
            return
        except UserFacingError as error:
            await interaction.response.send_message(error.message, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if interaction.message is not None:
            try:
                await interaction.message.edit(view=None)
            except discord.HTTPException:
                log.info("Could not remove the Retry button from job %s's reply", failed.id)


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Enhance(bot))
