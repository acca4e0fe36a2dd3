"""Steering a persona's reply: Regenerate it, Edit it, or Stop it while it streams.

A reply is found by its Discord message: persona_messages says whose session sent it, and the
transcript line it is in knows its message ids. Regenerate and Edit change both what the channel
shows and what the persona remembers, so the next turn's history holds only the new text.

A reply split over several messages (past Discord's 2,000 characters) becomes one message: the
new text goes into the first, the others are deleted, and a regenerated text longer than one
message keeps its first part (cut at a sentence), which is also what the persona remembers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import discord

from bot.answering import answer
from bot.chat.client import ChatModel, ChatModelError
from bot.errors import UserFacingError
from bot.roleplay.access import may_direct, member_and_channel
from bot.roleplay.history import ChannelLine, Stage
from bot.roleplay.sessions import ActiveSessions
from bot.roleplay.speaker import Speaker, add_greeting_cue
from bot.roleplay.splitting import split_message
from bot.roleplay.token_meter import whole_reply
from bot.roleplay.transcript import Transcripts
from bot.roleplay.webhooks import Speakable, WebhookPool
from storage.models import Persona
from storage.roleplay import RoleplayStore, Session

log = logging.getLogger(__name__)

NOT_A_LINE = (
    "That is not a message of a persona speaking in this channel now. Regenerate and Edit work on the "
    "replies of the personas `/roleplay status` lists here."
)
ALREADY_FINISHED = "That reply already finished, so there is nothing to stop."
STILL_STREAMING = "That reply is still being written. Press its Stop button first, or wait until it is done."
FORGOTTEN = "That reply is too far back: only the recent lines of a session can be changed."
GONE = "That message was deleted meanwhile, so there is nothing to change."
NO_MODEL = "No chat model is set up, so no reply can be written again. Whoever runs the bot sets CHAT_MODEL_BASE_URL."


def not_yours(persona_name: str) -> str:
    name = discord.utils.escape_markdown(persona_name)
    return (
        f"That reply is not yours to change: only whoever started **{name}** here, members who may start "
        "roleplay, and members with Manage Server can."
    )


@dataclass(frozen=True)
class Target:
    """A persona's reply a member asked to steer, checked: in this channel, of a session active here."""

    channel: Speakable
    session: Session
    persona: Persona
    message_id: int  # the message the member chose (any of the reply's)


StageOf = Callable[[Speakable, Session, Persona], Awaitable[Stage]]


class Steering:
    def __init__(
        self,
        *,
        store: RoleplayStore,
        active: ActiveSessions,
        transcripts: Transcripts,
        webhooks: WebhookPool,
        speaker: Speaker | None,
        chat: ChatModel | None,
        max_tokens: int,
        stage: StageOf,
        catch_up: Callable[[Speakable], Awaitable[None]],
    ) -> None:
        self._store = store
        self._active = active
        self._transcripts = transcripts
        self._webhooks = webhooks
        self._speaker = speaker
        self._chat = chat
        self._max_tokens = max_tokens
        self._stage = stage
        self._catch_up = catch_up  # after a restart, the channel's past is read back once

    # --- Regenerate -----------------------------------------------------------------------------

    async def regenerate(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Write the reply in `message` again from the history before it, in place of the old one."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # the model takes seconds
        target = await self._target(interaction, message.id, channel_of_message=message.channel.id)
        if self._speaker is None or self._chat is None:
            raise UserFacingError(NO_MODEL)
        line = await self._line(target)
        channel, session, persona = target.channel, target.session, target.persona
        before = self._transcripts.before(channel.id, target.message_id, session.started_at)
        others = [s.persona_name for s in self._active.in_channel(channel.id) if s.persona_id != session.persona_id]
        stage = await self._stage(channel, session, persona)
        messages = self._speaker.messages(channel, session, persona.system_prompt, others, stage=stage, lines=before)
        if not any(earlier.persona_id == session.persona_id for earlier in before):
            add_greeting_cue(messages)  # a persona's first line in a session is its greeting
        text = await self._write(session, messages)
        await self._rewrite(target, line, split_message(text)[0])
        name = discord.utils.escape_markdown(session.persona_name)
        await answer(interaction, f"🔁 **{name}**'s reply was written again.", ephemeral=True)

    async def _write(self, session: Session, messages: list[dict[str, str]]) -> str:
        """The whole new reply, read to the end before anything changes in the channel."""
        assert self._chat is not None and self._speaker is not None
        meter = self._speaker.meter  # a regenerated reply costs tokens like any turn, within the same cap
        if meter is not None:
            await meter.check_room(session.guild_id)
        try:
            text = await whole_reply(
                self._chat,
                messages,
                max_tokens=self._max_tokens,
                meter=meter,
                guild_id=session.guild_id,
                persona_id=session.persona_id,
            )
        except ChatModelError as error:
            log.warning("The chat model failed to regenerate for %s: %s", session.persona_name, error.kind)
            raise UserFacingError(f"{error.user_line()} The reply is unchanged.") from None
        text = text.strip()
        if not text:
            raise UserFacingError("The chat model sent no text, so the reply is unchanged.")
        return text

    # --- Edit -----------------------------------------------------------------------------------

    async def editable(self, interaction: discord.Interaction, message: discord.Message) -> tuple[Target, str]:
        """The reply in `message`, checked, and its text as the persona remembers it (the form's start)."""
        target = await self._target(interaction, message.id, channel_of_message=message.channel.id)
        found = self._transcripts.find(target.channel.id, message.id)
        return target, found[1].content if found else message.content

    async def edit(self, interaction: discord.Interaction, message_id: int, text: str) -> None:
        """Make `text` the reply in `message_id`: shown in the channel, and what the persona remembers saying."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel_id = interaction.channel.id if interaction.channel else 0
        target = await self._target(interaction, message_id, channel_of_message=channel_id)
        line = await self._line(target)
        await self._rewrite(target, line, text.strip())
        name = discord.utils.escape_markdown(target.session.persona_name)
        await answer(interaction, f"✏️ **{name}**'s reply now reads as you wrote it.", ephemeral=True)

    # --- Stop -----------------------------------------------------------------------------------

    async def stop(self, interaction: discord.Interaction) -> None:
        """The Stop button: cut the streaming reply it is on where it is."""
        message = interaction.message
        reply = self._speaker.running.find(message.id) if self._speaker is not None and message else None
        if reply is None:
            # Left over by a restart mid-reply: take the dead button away and say why.
            await interaction.response.edit_message(view=None)
            await interaction.followup.send(ALREADY_FINISHED, ephemeral=True)
            return
        member, channel = member_and_channel(interaction)
        session = reply.session
        if session.guild_id != member.guild.id or reply.channel_id != channel.id:
            raise UserFacingError(ALREADY_FINISHED)
        if not may_direct(member, session.started_by, await self._store.guild_settings(member.guild.id)):
            raise UserFacingError(not_yours(session.persona_name))
        reply.stream.stop()
        name = discord.utils.escape_markdown(session.persona_name)
        await interaction.response.send_message(f"⏹️ **{name}** stops there.", ephemeral=True)

    # --- Shared ---------------------------------------------------------------------------------

    async def _target(self, interaction: discord.Interaction, message_id: int, *, channel_of_message: int) -> Target:
        """The reply in `message_id`, if it is a line of a session active here that the member may steer."""
        member, channel = member_and_channel(interaction)
        origin = await self._store.message_origin(message_id)
        if origin is None or origin.channel_id != channel.id or channel_of_message != channel.id:
            raise UserFacingError(NOT_A_LINE)
        # Looked up among this channel's sessions only: another server's persona is never reachable.
        session = next((s for s in self._active.in_channel(channel.id) if s.id == origin.session_id), None)
        persona = self._active.persona(origin.persona_id)
        if session is None or persona is None or session.guild_id != member.guild.id:
            raise UserFacingError(NOT_A_LINE)
        if not may_direct(member, session.started_by, await self._store.guild_settings(member.guild.id)):
            raise UserFacingError(not_yours(session.persona_name))
        return Target(channel, session, persona, message_id)

    async def _line(self, target: Target) -> ChannelLine:
        """The transcript line the target's message is in."""
        if self._speaker is not None and self._speaker.running.find(target.message_id) is not None:
            raise UserFacingError(STILL_STREAMING)
        await self._catch_up(target.channel)
        found = self._transcripts.find(target.channel.id, target.message_id)
        if found is None:
            raise UserFacingError(FORGOTTEN)
        return found[1]

    async def _rewrite(self, target: Target, line: ChannelLine, text: str) -> None:
        """Show `text` in place of `line` (its first message; the rest deleted), and remember it instead."""
        first = line.message_id if line.message_id is not None else target.message_id
        try:
            await self._webhooks.edit(target.channel, first, text)
        except discord.NotFound:
            raise UserFacingError(GONE) from None
        for later in line.continued_in:
            with contextlib.suppress(discord.NotFound):  # deleted by a moderator already: as wanted
                await self._webhooks.delete(target.channel, later)
        self._transcripts.replace(target.channel.id, first, replace(line, content=text, continued_in=()))
