"""One persona's turn: build its history, stream the model's words through the webhook, remember them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import discord

from bot.avatar_host import AvatarHost
from bot.chat.client import ChatModel, ChatModelError
from bot.clock import wall_clock
from bot.roleplay.history import NO_STAGE, ChannelLine, SettingNote, Stage, build_messages
from bot.roleplay.names import webhook_username
from bot.roleplay.splitting import split_message
from bot.roleplay.stop_button import no_buttons, stop_view
from bot.roleplay.stopping import RunningReplies, RunningReply, StoppableStream
from bot.roleplay.streaming import StreamPublisher
from bot.roleplay.token_meter import TokenMeter
from bot.roleplay.transcript import Transcripts
from bot.roleplay.webhooks import Speakable, WebhookPool
from storage.roleplay import RoleplayStore, Session

log = logging.getLogger(__name__)

GREETING_CUE = "(You have just joined this channel. Greet everyone in one short line, in character.)"
EDIT_INTERVAL_SECONDS = 1.0  # Discord's webhook rate limits; at most one edit a second per message


async def show_typing(channel: Speakable) -> None:
    with contextlib.suppress(discord.HTTPException):  # a nicety: never a reason not to answer
        await channel.typing()


def add_greeting_cue(messages: list[dict[str, str]]) -> None:
    """Ask for a greeting; roles must alternate for strict chat templates: join a trailing user turn."""
    if messages[-1]["role"] == "user":
        messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n" + GREETING_CUE}
    else:
        messages.append({"role": "user", "content": GREETING_CUE})


@dataclass(frozen=True)
class HistoryBounds:
    messages: int
    chars: int
    system_prompt_chars: int | None = None  # the most of the persona's prompt sent (None: all of it)


class Speaker:
    def __init__(
        self,
        *,
        chat: ChatModel,
        webhooks: WebhookPool,
        store: RoleplayStore,
        transcripts: Transcripts,
        bounds: HistoryBounds,
        max_tokens: int,
        on_spoken: Callable[[int, Session, str], None] | None = None,
        avatars: AvatarHost | None = None,
        meter: TokenMeter | None = None,
    ) -> None:
        self._chat = chat
        self._webhooks = webhooks
        self._store = store
        self._transcripts = transcripts
        self._bounds = bounds
        self._max_tokens = max_tokens
        self.last_speaker: dict[int, int] = {}  # channel id -> persona id
        self.running = RunningReplies()  # replies streaming now, for their Stop buttons
        self._on_spoken = on_spoken  # told (channel id, session, text) of every line a persona finished
        self._avatars = avatars  # each message carries its persona's picture, at a URL that never expires
        self.meter = meter  # the server's tokens today and their cap; natural turns use it too

    async def speak(
        self,
        channel: Speakable,
        session: Session,
        system_prompt: str,
        others: list[str],
        *,
        greeting: bool = False,
        stage: Stage = NO_STAGE,
    ) -> None:
        """Run one turn of `session`'s persona in `channel`."""
        if self.meter is not None and not await self.meter.allows(channel):
            return  # the server spent today's tokens: quiet until the next day (the channel was told)
        messages = self.messages(channel, session, system_prompt, others, stage=stage)
        if greeting:
            add_greeting_cue(messages)
        source = self._chat.stream_reply(messages, max_tokens=self._max_tokens)
        try:
            async with StoppableStream(source) as stream:
                reply = self.running.begin(session, channel.id, stream)
                try:
                    await self._stream(channel, session, stream, reply)
                finally:
                    self.running.end(reply)
        finally:
            if self.meter is not None:  # a reply cut short (or stopped) was paid for too
                await self.meter.record(session.guild_id, session.persona_id, source.usage)

    async def _stream(self, channel: Speakable, session: Session, stream: StoppableStream, reply: RunningReply) -> None:
        finishing = False

        async def send(text: str) -> int:
            message_id = await self.post(channel, session, text, view=stop_view(session.id))
            self.running.posted(reply, message_id)
            return message_id

        async def edit(message_id: int, text: str) -> None:
            # The Stop button stays while the words come, and goes with the last edit.
            await self._webhooks.edit(channel, message_id, text, view=no_buttons() if finishing else None)

        publisher = StreamPublisher(send=send, edit=edit, clock=time.monotonic, min_edit_interval=EDIT_INTERVAL_SECONDS)
        # Typing shows until the first words arrive; sent alongside the model's request, it adds no wait.
        typing = asyncio.create_task(show_typing(channel))
        try:
            async for delta in stream:
                await publisher.feed(delta)
        except ChatModelError as error:
            log.warning("The chat model failed for %s in %s: %s", session.persona_name, channel.id, error.kind)
            finishing = True
            await self._finish_quietly(publisher)
            await self._tell(channel, f"⚠️ {session.persona_name} could not answer: {error.user_line()}")
            self._remember(channel, session, publisher.text, publisher.messages)
            return
        except discord.HTTPException as error:
            log.warning("Discord refused %s's words in %s: %s", session.persona_name, channel.id, error)
            await self._tell(channel, f"⚠️ {session.persona_name} could not speak here (Discord said {error.status}).")
            return
        finally:
            await typing  # never outlives the turn
        finishing = True
        parts = await publisher.finish(edit_every_message=True)
        if not parts:
            if not stream.stopped:
                await self._tell(channel, f"⚠️ {session.persona_name} had nothing to say (the chat model sent no text).")
            return
        self._remember(channel, session, publisher.text, publisher.messages)

    async def recite(self, channel: Speakable, session: Session, text: str) -> None:
        """Say `text` as the persona's line, as written (a card's greeting): the chat model is not asked."""
        try:
            for part in split_message(text):
                await self.post(channel, session, part)
        except discord.HTTPException as error:
            log.warning("Discord refused %s's words in %s: %s", session.persona_name, channel.id, error)
            await self._tell(channel, f"⚠️ {session.persona_name} could not speak here (Discord said {error.status}).")
            return
        self._remember(channel, session, text)

    def messages(
        self,
        channel: Speakable,
        session: Session,
        system_prompt: str,
        others: list[str],
        *,
        stage: Stage = NO_STAGE,
        lines: Sequence[ChannelLine] | None = None,
    ) -> list[dict[str, str]]:
        """What the model is sent for a turn: the prompt, a note on the setting, the conversation so far
        (or `lines`, the conversation as it was when a regenerated reply was first written)."""
        return build_messages(
            persona_id=session.persona_id,
            persona_name=session.persona_name,
            system_prompt=system_prompt,
            setting=SettingNote(
                guild_name=channel.guild.name, channel_name=getattr(channel, "name", "chat"), other_personas=others
            ),
            lines=self._transcripts.since(channel.id, session.started_at) if lines is None else lines,
            max_messages=self._bounds.messages,
            max_chars=self._bounds.chars,
            max_prompt_chars=self._bounds.system_prompt_chars,
            stage=stage,
        )

    async def post(
        self, channel: Speakable, session: Session, text: str, *, view: discord.ui.View | None = None
    ) -> int:
        """Post `text` as the persona through the channel's webhook, and remember it was theirs; its id."""
        username = webhook_username(session.persona_name)
        avatar_url = await self._avatars.for_message(session, channel) if self._avatars else None
        message = await self._webhooks.send(channel, content=text, username=username, avatar_url=avatar_url, view=view)
        await self._store.record_message(
            message_id=message.id,
            channel_id=channel.id,
            persona_id=session.persona_id,
            session_id=session.id,
            now=wall_clock(),
        )
        return message.id

    def forget(self, channel_id: int) -> None:
        self.last_speaker.pop(channel_id, None)

    def channels(self) -> set[int]:
        return set(self.last_speaker) | self.running.channels()

    async def _finish_quietly(self, publisher: StreamPublisher[int]) -> None:
        """Show what arrived before a failure; a Discord refusal then is already being reported."""
        try:
            await publisher.finish(edit_every_message=True)  # the Stop button goes too
        except discord.HTTPException:
            log.warning("Could not show the end of a reply cut short")

    def _remember(self, channel: Speakable, session: Session, text: str, message_ids: Sequence[int] = ()) -> None:
        if not text.strip():
            return
        line = ChannelLine(
            author_name=session.persona_name,
            content=text.strip(),
            persona_id=session.persona_id,
            author_id=0,
            message_id=message_ids[0] if message_ids else None,
            continued_in=tuple(message_ids[1:]),
        )
        self._transcripts.add(channel.id, line, at=wall_clock())
        self.last_speaker[channel.id] = session.persona_id
        if self._on_spoken is not None:
            self._on_spoken(channel.id, session, line.content)

    async def _tell(self, channel: Speakable, text: str) -> None:
        try:
            await channel.send(text)
        except discord.HTTPException:
            log.warning("Could not tell channel %s that a persona failed", channel.id)
