"""One channel's natural personas: what they hear goes to turn-taking, and at most N answer.

A member's line goes to each persona's thread at once, its own lines left out. Lines that arrive
while the personas are still being asked about earlier ones wait, and go together as the next
batch as soon as that is done: close messages make one batch, with no delay added to a lone one.

Each persona's thread decides whether it speaks; a persona the
batch named, replied to or mentioned always speaks (`skip_decide`, which is not billed). Of those
that speak, at most `max_speakers` answer: the addressed first, then the others in the order their
decisions came back.

Only a member's message starts a batch. A persona's line (or another bot's, when the bot is told
to hear them) is carried to the others with the next one, so personas can never keep each other
talking, and nothing a member does makes the bot call turn-taking more than once per persona per
batch, plus one `respond` per speaker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.humalike.errors import FinalError, HumalikeError
from bot.humalike.turn_taking import batches
from bot.humalike.turn_taking_models import MAX_CONTENT, MAX_NAME, InboundMessage, SubmitResult
from bot.roleplay.natural.budget import Budget
from bot.roleplay.natural.thread import ThreadLink

log = logging.getLogger(__name__)

MEDIA_PLACEHOLDER = "[attachment]"


@dataclass(frozen=True)
class Heard:
    """A line of the channel as natural personas hear it."""

    sender: str  # the member's display name, or the persona's name
    content: str
    at: float  # when it was sent (wall clock)
    has_media: bool = False
    persona_id: int | None = None  # set for a persona's own line
    addressed: frozenset[int] = frozenset()  # personas it names, replies to or mentions
    from_member: bool = True  # False for personas and other bots: their lines never start a batch

    def inbound(self) -> InboundMessage:
        content = (self.content.strip() or MEDIA_PLACEHOLDER)[:MAX_CONTENT]
        if self.has_media and MEDIA_PLACEHOLDER not in content:
            content = f"{content} {MEDIA_PLACEHOLDER}"[:MAX_CONTENT]
        return InboundMessage(
            sender=self.sender[:MAX_NAME] or "someone",
            content=content,
            has_media=self.has_media,
            client_ts=datetime.fromtimestamp(self.at, UTC),  # also tells two identical lines apart
        )


@dataclass
class Voice:
    """One natural persona in the channel."""

    persona_id: int
    name: str
    system_prompt: str
    link: ThreadLink
    channel_id: int = 0
    pending: list[Heard] = field(default_factory=list)


# What the service hands over: a speaker's draft from the chat model (None: nothing to say); a
# turn-taking refusal to tell the channel about; and a plain answer, as in mention mode, for an
# addressed persona once the server's calls for the day are spent.
Draft = Callable[[Voice, str], Awaitable[str | None]]
Refused = Callable[[Voice, FinalError], Awaitable[None]]
Plain = Callable[[Voice], Awaitable[None]]


class Conductor:
    def __init__(
        self,
        *,
        guild_id: int,
        channel_id: int,
        max_speakers: int,
        budget: Budget,
        draft: Draft,
        refused: Refused,
        plain: Plain,
    ) -> None:
        self.guild_id = guild_id
        self.channel_id = channel_id
        self._max_speakers = max_speakers
        self._budget = budget
        self._draft = draft
        self._refused = refused
        self._plain = plain
        self._voices: dict[int, Voice] = {}
        self._asker: asyncio.Task[None] | None = None
        self._member_waiting = False  # a member spoke since the personas were last asked
        self._turns: set[asyncio.Task[None]] = set()

    @property
    def voices(self) -> list[Voice]:
        return list(self._voices.values())

    def join(self, voice: Voice) -> None:
        self._voices[voice.persona_id] = voice
        voice.link.start()

    async def leave(self, persona_id: int, *, ended: bool = True) -> None:
        """The persona stops listening; `ended` (not a shutdown): what it was still to say is dropped."""
        voice = self._voices.pop(persona_id, None)
        if voice is not None:
            await voice.link.stop(ended=ended)

    async def close(self) -> None:
        # A refusal met while asking or speaking can close the conductor from one of its own tasks:
        # that one ends by itself, and must not wait for itself.
        current = asyncio.current_task()
        tasks = [task for task in (*self._turns, self._asker) if task is not None and task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for persona_id in list(self._voices):
            await self.leave(persona_id, ended=False)

    def hear(self, line: Heard) -> None:
        """Queue a line for every persona but its author; a member's line has them asked (now, or next)."""
        for voice in self._voices.values():
            if voice.persona_id != line.persona_id:
                voice.pending.append(line)
        if line.persona_id is not None or not line.from_member:
            return
        self._member_waiting = True
        if self._asker is None:
            self._asker = asyncio.create_task(self._ask_while_heard(), name=f"natural-ask-{self.channel_id}")

    async def _ask_while_heard(self) -> None:
        try:
            while self._member_waiting:
                self._member_waiting = False
                await self.take_turn()
        finally:
            self._asker = None

    async def take_turn(self) -> None:
        """Send each persona what it has not heard yet, and let the chosen ones speak."""
        asked = [(voice, voice.pending) for voice in self._voices.values() if voice.pending]
        for voice, _ in asked:
            voice.pending = []
        addressed_asked = [(voice, lines) for voice, lines in asked if _addressed(voice, lines)]
        if addressed_asked and await self._budget.exhausted(self.guild_id, self.channel_id):
            # The day's calls are spent: until tomorrow, the personas answer only when addressed, plainly;
            # the others are asked nothing (each would be refused its call at the cap).
            for voice, _ in addressed_asked:
                self._start(self._plain(voice), voice)
            asked = [(voice, lines) for voice, lines in asked if not _addressed(voice, lines)]
        decided = await asyncio.gather(*(self._ask(voice, lines) for voice, lines in asked))
        speaking = [(voice, result, lines) for (voice, lines), result in zip(asked, decided, strict=True) if result]
        addressed = [entry for entry in speaking if _addressed(entry[0], entry[2])]
        others = [entry for entry in speaking if not _addressed(entry[0], entry[2])]
        chosen = addressed + others[: max(0, self._max_speakers - len(addressed))]
        for voice, result, _ in chosen:
            self._start(self._speak(voice, result), voice)

    def _start(self, turn: Awaitable[None], voice: Voice) -> None:
        task = asyncio.ensure_future(turn)
        task.set_name(f"natural-turn-{voice.persona_id}")
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _ask(self, voice: Voice, lines: list[Heard]) -> SubmitResult | None:
        """The persona's decision on `lines` (None: silent, refused, or the day's calls are spent)."""
        skip_decide = _addressed(voice, lines)
        billed = not skip_decide and not any(line.has_media for line in lines)
        result: SubmitResult | None = None
        for chunk in batches([line.inbound() for line in lines]):
            if billed and not await self._budget.reserve(self.guild_id, voice.persona_id, self.channel_id):
                return None  # spent by another persona meanwhile
            try:
                result = await voice.link.submit(chunk, system_prompt=voice.system_prompt, skip_decide=skip_decide)
            except HumalikeError as error:
                if billed:
                    await self._budget.refund(self.guild_id, voice.persona_id)
                await self._refusal(voice, error)
                return None
        return result if result is not None and result.speak else None

    async def _speak(self, voice: Voice, decided: SubmitResult) -> None:
        draft = await self._draft(voice, decided.recalled_context)
        if not draft or voice.persona_id not in self._voices:
            return
        if not await self._budget.reserve(self.guild_id, voice.persona_id, self.channel_id):
            return
        try:
            answer = await voice.link.respond(
                draft[:MAX_CONTENT],
                decided.turn_epoch,
                agent_name=voice.name[:MAX_NAME],
                system_prompt=voice.system_prompt,
            )
        except HumalikeError as error:
            await self._budget.refund(self.guild_id, voice.persona_id)
            await self._refusal(voice, error)
            return
        if answer.superseded:  # a newer batch came first: not billed, and its decision is on its way
            await self._budget.refund(self.guild_id, voice.persona_id)

    async def _refusal(self, voice: Voice, error: HumalikeError) -> None:
        if isinstance(error, FinalError):
            await self._refused(voice, error)
        else:  # 502s, timeouts: retried already; this turn is dropped, the next one may work
            log.warning("Turn-taking for %s in channel %s failed: %s", voice.name, self.channel_id, error)


def _addressed(voice: Voice, lines: list[Heard]) -> bool:
    return any(voice.persona_id in line.addressed for line in lines)
