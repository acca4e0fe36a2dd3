"""Roleplay: saved personas speaking in channels, from `/roleplay as` to the last word.

`begin` starts personas in a channel; `hear` takes every message of a channel
where one is active and asks the right personas for a turn; the `Speaker`
writes each turn. Sessions live in the database and, while active, in memory.
"""

from __future__ import annotations

import logging

import discord

from bot.chat.client import ChatModel
from bot.clock import wall_clock
from bot.errors import UserFacingError
from bot.roleplay.access import check_may_start_here, may_start, member_and_channel
from bot.roleplay.addressing import ActivePersona, addressed
from bot.roleplay.backfill import read_back
from bot.roleplay.history import ChannelLine
from bot.roleplay.sessions import ActiveSessions
from bot.roleplay.speaker import HistoryBounds, Speaker
from bot.roleplay.transcript import Transcripts
from bot.roleplay.turns import TurnQueue
from bot.roleplay.webhooks import Speakable, WebhookPool, check_can_speak
from bot.settings import Settings
from storage.models import Persona
from storage.personas import PersonaStore
from storage.roleplay import AlreadyActive, RoleplayMode, RoleplayStore, Session, TooManyActive

log = logging.getLogger(__name__)

NO_MODEL = (
    "No chat model is set up, so personas cannot speak yet. Whoever runs the bot sets `CHAT_MODEL_BASE_URL`, "
    "`CHAT_MODEL_NAME` (and `CHAT_MODEL_API_KEY` if the server needs one) in its `.env` and restarts it; any "
    "OpenAI-compatible server works (OpenAI, Ollama, vLLM, LM Studio, llama.cpp, OpenRouter)."
)


def bold_names(sessions: list[Session]) -> str:
    return ", ".join(f"**{discord.utils.escape_markdown(s.persona_name)}**" for s in sessions)


class RoleplayService:
    def __init__(
        self,
        client: discord.Client,
        *,
        store: RoleplayStore,
        personas: PersonaStore,
        chat: ChatModel | None,
        settings: Settings,
    ) -> None:
        self._client = client
        self._store = store
        self._personas = personas
        self._settings = settings
        self._active = ActiveSessions()
        self._webhooks = WebhookPool(client, store)
        self._transcripts = Transcripts()
        self._turns = TurnQueue(settings.roleplay_channel_cooldown_seconds)
        self._speaker = (
            Speaker(
                chat=chat,
                webhooks=self._webhooks,
                store=store,
                transcripts=self._transcripts,
                bounds=HistoryBounds(
                    settings.roleplay_history_messages,
                    settings.roleplay_history_chars,
                    settings.roleplay_system_prompt_chars,
                ),
                max_tokens=settings.chat_model_max_tokens,
            )
            if chat is not None
            else None
        )
        # Channels whose sessions outlived a restart: their transcript is read back from Discord once.
        self._to_read_back: set[int] = set()

    async def load(self) -> None:
        """Take up every session the last run left active."""
        for session in await self._store.active():
            await self._remember(session)
            self._to_read_back.add(session.channel_id)

    async def close(self) -> None:
        await self._turns.stop()

    def in_channel(self, channel_id: int) -> list[Session]:
        return self._active.in_channel(channel_id)

    # --- Starting and ending --------------------------------------------------------------------

    async def begin(self, interaction: discord.Interaction, personas: list[Persona], mode: RoleplayMode) -> None:
        """Start every one of `personas` speaking where `interaction` happened (a cast at once), or none."""
        if self._speaker is None:
            raise UserFacingError(NO_MODEL)
        member, channel = member_and_channel(interaction)
        if any(persona.guild_id != member.guild.id for persona in personas):
            raise UserFacingError("That persona belongs to another server.")
        check_may_start_here(member, channel, await self._store.guild_settings(member.guild.id))
        check_can_speak(channel, member.guild.me)
        await self._webhooks.get(channel)  # made now, so a refusal is told now and not at the first word
        here = {s.persona_id for s in self._active.in_channel(channel.id)}
        joining = [persona for persona in personas if persona.id not in here]
        if not joining:
            names = " and ".join(persona.name for persona in personas)
            raise UserFacingError(f"{names} {'is' if len(personas) == 1 else 'are'} already speaking here.")
        active = len(await self._store.active(guild_id=member.guild.id))
        limit = self._settings.roleplay_max_active_per_guild
        if active + len(joining) > limit:
            raise UserFacingError(
                f"{active} personas are already active in this server and {len(joining)} more would pass the "
                f"limit of {limit}. End some with `/roleplay stop` first."
            )
        sessions = []
        for persona in joining:
            try:
                session = await self._store.start(
                    guild_id=member.guild.id,
                    channel_id=channel.id,
                    persona_id=persona.id,
                    mode=mode,
                    started_by=member.id,
                    now=wall_clock(),
                    max_active_in_guild=limit,
                )
            except (AlreadyActive, TooManyActive):
                continue  # started meanwhile by someone else, or the last slot was taken: not an error here
            await self._remember(session)
            sessions.append(session)
        talk = "Say a name or reply to one of them to talk" if mode == "mention" else "They answer every message here"
        verb = "joins" if len(sessions) == 1 else "join"
        await interaction.response.send_message(
            f"🎭 {bold_names(sessions)} {verb} {channel.mention}. {talk}; `/roleplay stop` ends it."
        )
        for session in sessions:
            self._request_turn(channel, session, greeting=True)

    async def stop(self, interaction: discord.Interaction, persona: Persona | None) -> list[Session]:
        """End `persona` (or every persona) in this channel, as far as the member may; the sessions ended."""
        member, channel = member_and_channel(interaction)
        active = self._active.in_channel(channel.id)
        if persona is not None:
            active = [s for s in active if s.persona_id == persona.id]
            if not active:
                raise UserFacingError(f"{persona.name} is not speaking here.")
        if not active:
            raise UserFacingError("No persona is speaking here.")
        starter = may_start(member, await self._store.guild_settings(member.guild.id))
        allowed = [s for s in active if s.started_by == member.id or starter]
        if not allowed:
            raise UserFacingError(
                "Only whoever started a persona here, or a member who may start roleplay, can stop it."
            )
        for session in allowed:
            await self._end(session, reason=f"stopped by {member.id}")
        return allowed

    async def end_persona(self, persona_id: int) -> None:
        """A deleted persona stops speaking everywhere at once."""
        for session in self._active.everywhere():
            if session.persona_id == persona_id:
                await self._end(session, reason="persona deleted")
        self._active.forget_persona(persona_id)

    async def expire_idle(self) -> None:
        """End the sessions of channels nobody has talked in for ROLEPLAY_IDLE_MINUTES, saying so."""
        idle_after = self._settings.roleplay_idle_minutes * 60
        for session in self._active.idle(now=wall_clock(), idle_after=idle_after):
            await self._end(session, reason="idle")
            channel = self._client.get_channel(session.channel_id)
            if not isinstance(channel, discord.TextChannel | discord.Thread):
                continue
            name = discord.utils.escape_markdown(session.persona_name)
            try:
                await channel.send(f"💤 **{name}** left: nobody talked with them for {round(idle_after / 60)} minutes.")
            except discord.HTTPException:
                log.info("Could not say that %s left channel %s", session.persona_name, channel.id)

    async def _remember(self, session: Session) -> None:
        persona = self._active.persona(session.persona_id) or await self._personas.get(session.persona_id)
        self._active.add(session, persona)

    async def _end(self, session: Session, *, reason: str) -> None:
        await self._store.end(session.id, now=wall_clock(), reason=reason)
        if self._active.remove(session):
            self._transcripts.forget(session.channel_id)

    # --- Conversation ---------------------------------------------------------------------------

    async def hear(self, message: discord.Message) -> None:
        """A message in a channel: remember it, and ask the personas it calls on for a turn."""
        sessions = self._active.in_channel(message.channel.id)
        channel = message.channel
        if not sessions or not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        if message.webhook_id is not None and message.webhook_id == await self._our_webhook_id(channel):
            return  # a persona's own words: already in the transcript
        me = self._client.user
        if me is not None and message.author.id == me.id:
            return
        if message.author.bot and not self._settings.roleplay_answer_other_bots:
            return
        self._active.heard(channel.id, message.created_at.timestamp())
        if channel.id in self._to_read_back:
            self._to_read_back.discard(channel.id)
            earlier = await read_back(
                channel,
                since=min(s.started_at for s in sessions),
                before=message,
                store=self._store,
                bot_user_id=me.id if me else 0,
            )
            self._transcripts.extend(channel.id, earlier)
        text = message.clean_content
        line = ChannelLine(
            author_name=message.author.display_name, content=text, persona_id=None, author_id=message.author.id
        )
        self._transcripts.add(channel.id, line, at=message.created_at.timestamp())
        if self._speaker is None:
            return  # sessions outlived the chat model's settings: nobody can answer until it is back
        targets = addressed(
            text=text,
            active=[ActivePersona(s.persona_id, s.persona_name, s.mode, s.started_at) for s in sessions],
            reply_to_persona=await self._replied_persona(message),
            mentions_bot=me is not None and me in message.mentions,
            last_speaker=self._speaker.last_speaker.get(channel.id),
        )
        by_persona = {s.persona_id: s for s in sessions}
        for persona_id in targets:
            self._request_turn(channel, by_persona[persona_id])

    async def _our_webhook_id(self, channel: Speakable) -> int | None:
        try:
            return (await self._webhooks.get(channel)).id
        except (UserFacingError, discord.HTTPException):
            return None

    async def _replied_persona(self, message: discord.Message) -> int | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        found = await self._store.persona_of_messages([reference.message_id])
        return found.get(reference.message_id)

    def _request_turn(self, channel: Speakable, session: Session, *, greeting: bool = False) -> None:
        speaker = self._speaker
        persona = self._active.persona(session.persona_id)
        if speaker is None or persona is None:
            return
        others = [s.persona_name for s in self._active.in_channel(channel.id) if s.persona_id != session.persona_id]

        async def turn() -> None:
            if not self._active.is_active(session):
                return  # stopped while waiting
            await speaker.speak(channel, session, persona.system_prompt, others, greeting=greeting)

        self._turns.request(channel.id, session.persona_id, turn)
