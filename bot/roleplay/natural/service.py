"""Natural personas in Discord: a conductor per channel, their words through the channel's webhook.

`RoleplayService` hands a session in `natural` mode here when it starts (or after a restart),
every line of its channel as it is heard, and the session when it ends. This module opens the
persona's thread (one per persona per channel, its id ours), drafts a reply with the chat model
when turn-taking says speak, and posts each paced piece under the persona's name, pinging nobody.

Refusals: a 402 (credits spent), 401 or 403 (the token) is told in the channel once a day, and
the persona goes on in `mention` mode; a 422 is logged with its request id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import discord

from bot.chat.client import ChatModel, ChatModelError
from bot.clock import wall_clock
from bot.humalike.errors import FinalError, OutOfCredits, ValidationFailed
from bot.humalike.turn_taking import TurnTakingClient
from bot.humalike.turn_taking_models import Integrations, SocialMemory
from bot.roleplay.history import ChannelLine
from bot.roleplay.natural.budget import Budget
from bot.roleplay.natural.conductor import Conductor, Heard, Voice
from bot.roleplay.natural.thread import Piece, ThreadLink
from bot.roleplay.speaker import Speaker, show_typing
from bot.roleplay.token_meter import whole_reply
from bot.roleplay.transcript import Transcripts
from bot.settings import Settings
from storage.models import Persona
from storage.natural import NaturalStore
from storage.roleplay import Session

log = logging.getLogger(__name__)

CREDITS_NOTICE = "out_of_credits"
TOKEN_NOTICE = "token_refused"


def memory_bank(guild_id: int, persona_id: int) -> str:
    """One memory per persona per server, named by our ids: it never follows a persona to another server."""
    return f"guild-{guild_id}-persona-{persona_id}"


def recalled_note(system_prompt: str, recalled: str) -> str:
    if not recalled.strip():
        return system_prompt
    return f"{system_prompt}\n\nWhat you remember about the people in this conversation:\n{recalled.strip()}"


class NaturalRoleplay:
    def __init__(
        self,
        client: discord.Client,
        *,
        turn_taking: TurnTakingClient,
        store: NaturalStore,
        speaker: Speaker,
        transcripts: Transcripts,
        chat: ChatModel,
        settings: Settings,
        answer_plainly: Callable[[Session], None],
        fall_back: Callable[[Session], Awaitable[None]],
        tell: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self._client = client
        self._turn_taking = turn_taking
        self._store = store
        self._speaker = speaker  # the usual speaker's history, posting and typing, for natural turns too
        self._transcripts = transcripts
        self._chat = chat
        self._settings = settings
        self._answer_plainly = answer_plainly  # a turn as in mention mode, through the usual speaker
        self._fall_back = fall_back  # the session goes on in mention mode
        self._tell = tell  # a notice from the bot in a channel, pinging nobody
        self.budget = Budget(store, daily_calls=settings.roleplay_natural_daily_calls, capped=self._tell_capped)
        self._conductors: dict[int, Conductor] = {}
        self._sessions: dict[tuple[int, int], Session] = {}  # (channel, persona) -> its session
        self._typing: dict[int, asyncio.Task[None]] = {}
        self._falling_back: set[asyncio.Task[None]] = set()

    def channels(self) -> set[int]:
        return set(self._conductors) | set(self._typing)

    async def seat(self, session: Session, persona: Persona) -> None:
        """Start `session`'s persona listening in its channel: its thread opened, its socket read."""
        conductor = self._conductors.get(session.channel_id)
        if conductor is None:
            conductor = Conductor(
                guild_id=session.guild_id,
                channel_id=session.channel_id,
                max_speakers=self._settings.roleplay_natural_max_speakers,
                budget=self.budget,
                draft=self._draft,
                refused=self._refused,
                plain=self._plain,
            )
            self._conductors[session.channel_id] = conductor
        thread_id = await self._store.thread_id(
            guild_id=session.guild_id, channel_id=session.channel_id, persona_id=session.persona_id, now=wall_clock()
        )
        memory = self._settings.roleplay_natural_memory
        integrations = (
            Integrations(social_memory=SocialMemory(memory_bank_id=memory_bank(session.guild_id, session.persona_id)))
            if memory
            else None
        )
        key = (session.channel_id, session.persona_id)
        self._sessions[key] = session
        link = ThreadLink(
            self._turn_taking,
            self._store,
            thread_id=thread_id,
            integrations=integrations,
            deliver=lambda piece: self._deliver(key, piece),
            show_typing=lambda: self._show_typing(session.channel_id),
            on_final_error=lambda error: self._link_refused(key, error),
        )
        conductor.join(Voice(session.persona_id, session.persona_name, persona.system_prompt, link, session.channel_id))

    async def unseat(self, session: Session) -> None:
        """Stop listening: the socket closed, nothing more delivered, a reply being paced cut off."""
        self._sessions.pop((session.channel_id, session.persona_id), None)
        conductor = self._conductors.get(session.channel_id)
        if conductor is None:
            return
        await conductor.leave(session.persona_id)
        if not conductor.voices:
            self._conductors.pop(session.channel_id, None)
            await conductor.close()
            typing = self._typing.pop(session.channel_id, None)
            if typing is not None:
                typing.cancel()

    def update(self, session: Session, persona: Persona) -> None:
        """A rename or an edited system prompt counts from the next turn."""
        self._sessions[(session.channel_id, session.persona_id)] = session
        conductor = self._conductors.get(session.channel_id)
        for voice in conductor.voices if conductor else []:
            if voice.persona_id == persona.id:
                voice.name, voice.system_prompt = persona.name, persona.system_prompt

    async def forget_persona(self, persona_id: int) -> None:
        """A deleted persona's threads are not re-opened again (its billing history stays)."""
        await self._store.forget_threads(persona_id)

    def hear(self, channel_id: int, line: Heard) -> None:
        conductor = self._conductors.get(channel_id)
        if conductor is not None:
            conductor.hear(line)

    async def close(self) -> None:
        await asyncio.gather(*self._falling_back, return_exceptions=True)
        for conductor in list(self._conductors.values()):
            await conductor.close()
        self._conductors.clear()
        for task in self._typing.values():
            task.cancel()

    # --- What a voice needs -----------------------------------------------------------------------

    async def _draft(self, voice: Voice, recalled: str) -> str | None:
        """The persona's reply from the chat model: its prompt, what it remembers, the channel so far."""
        session = self._sessions.get((voice.channel_id, voice.persona_id))
        channel = self._client.get_channel(session.channel_id) if session else None
        if session is None or not isinstance(channel, discord.TextChannel | discord.Thread):
            return None
        others = [v.name for v in self._conductors[session.channel_id].voices if v.persona_id != voice.persona_id]
        meter = self._speaker.meter
        if meter is not None and not await meter.allows(channel):
            return None  # the server spent today's tokens (the channel was told)
        messages = self._speaker.messages(channel, session, recalled_note(voice.system_prompt, recalled), others)
        try:
            text = await whole_reply(
                self._chat,
                messages,
                max_tokens=self._settings.chat_model_max_tokens,
                meter=meter,
                guild_id=session.guild_id,
                persona_id=session.persona_id,
            )
        except ChatModelError as error:
            log.warning("The chat model failed for %s in %s: %s", voice.name, channel.id, error.kind)
            return None
        return text.strip() or None

    async def _deliver(self, key: tuple[int, int], piece: Piece) -> None:
        session = self._sessions.get(key)
        channel = self._client.get_channel(key[0])
        if session is None or not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        try:
            message_id = await self._speaker.post(channel, session, piece.content)
        except discord.HTTPException as error:
            log.warning("Discord refused %s's words in %s: %s", session.persona_name, channel.id, error)
            return
        now = wall_clock()
        await self._store.delivered(piece.key, message_id)
        line = ChannelLine(
            session.persona_name, piece.content, persona_id=session.persona_id, author_id=0, message_id=message_id
        )
        self._transcripts.add(channel.id, line, at=now)
        self.hear(channel.id, Heard(session.persona_name, piece.content, now, persona_id=session.persona_id))

    async def _show_typing(self, channel_id: int) -> None:
        """Typing shows alongside, never holding up the pieces (it may wait on Discord's limits)."""
        if channel_id in self._typing:
            return
        channel = self._client.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        task = asyncio.create_task(show_typing(channel), name=f"natural-typing-{channel_id}")
        self._typing[channel_id] = task
        task.add_done_callback(lambda _: self._typing.pop(channel_id, None))

    async def _plain(self, voice: Voice) -> None:
        session = self._sessions.get((voice.channel_id, voice.persona_id))
        if session is not None:
            self._answer_plainly(session)

    async def _refused(self, voice: Voice, error: FinalError) -> None:
        await self._link_refused((voice.channel_id, voice.persona_id), error)

    async def _link_refused(self, key: tuple[int, int], error: FinalError) -> None:
        session = self._sessions.get(key)
        if session is None:
            return
        if isinstance(error, ValidationFailed):  # ours to fix, not the channel's: the request id finds it
            log.error("Turn-taking refused a request for %s: %s", session.persona_name, error)
            return
        name = discord.utils.escape_markdown(session.persona_name)
        if isinstance(error, OutOfCredits):
            kind, text = (
                CREDITS_NOTICE,
                (
                    f"⚠️ Humalike's credits have run out, so **{name}** stops choosing its moments and answers "
                    "only when named or replied to. Whoever runs the bot can add credits on Humalike's dashboard; "
                    "then start natural mode again with `/roleplay as`."
                ),
            )
        else:
            kind, text = (
                TOKEN_NOTICE,
                (
                    f"⚠️ Humalike refused the bot's token ({error.status}), so **{name}** answers only when named or "
                    "replied to. Whoever runs the bot should check `HUMALIKE_TOKEN` (`python -m bot check` tests it)."
                ),
            )
        log.warning("Turn-taking refused %s in channel %s: %s", session.persona_name, session.channel_id, error)
        if await self._store.claim_notice(channel_id=session.channel_id, day=self.budget.today(), kind=kind):
            await self._tell(session.channel_id, text)
        # On a task of its own: falling back stops the very thread and conductor this refusal came from.
        falling_back = asyncio.create_task(self._fall_back(session), name=f"natural-fall-back-{session.id}")
        self._falling_back.add(falling_back)
        falling_back.add_done_callback(self._falling_back.discard)

    async def _tell_capped(self, channel_id: int) -> None:
        cap = self._settings.roleplay_natural_daily_calls
        await self._tell(
            channel_id,
            f"⏸️ This server has used its {cap} turn-taking calls for today, so the personas here answer only "
            "when named or replied to until tomorrow (UTC). `/roleplay status` shows what each one used.",
        )
