"""Roleplay: saved personas speaking in channels, from `/roleplay as` to the last word.

`begin` starts personas in a channel; `hear` takes every message of a channel
where one is active and asks the right personas for a turn; the `Speaker`
writes each turn. Sessions live in the database and, while active, in memory.
"""

from __future__ import annotations

import logging
import random

import discord

from bot.answering import answer, in_time
from bot.avatar_host import AvatarHost
from bot.chat.client import ChatModel
from bot.clock import wall_clock
from bot.errors import UserFacingError
from bot.humalike.turn_taking import TurnTakingClient
from bot.roleplay.access import check_may_start_here, may_direct, member_and_channel
from bot.roleplay.addressing import ActivePersona, addressed
from bot.roleplay.backfill import read_back
from bot.roleplay.bot_turns import BotTurns
from bot.roleplay.characters import Characters
from bot.roleplay.choosing import RECENT_LINES
from bot.roleplay.content import channel_no_longer_allows, check_may_speak_here, may_speak_here, nsfw_ended_notice
from bot.roleplay.history import ChannelLine, Stage
from bot.roleplay.narrator import NEXT_CUE, NO_NARRATOR, OPENING_CUE, channel_narrator
from bot.roleplay.natural.conductor import Heard
from bot.roleplay.natural.service import NaturalRoleplay
from bot.roleplay.next_speaker import check_may_call, find_speaking
from bot.roleplay.notices import change_notice, deleted_notice
from bot.roleplay.persona_chain import PersonaChain, called_by_persona
from bot.roleplay.scenes import SceneBoard, preview
from bot.roleplay.sessions import ActiveSessions
from bot.roleplay.speaker import HistoryBounds, Speaker
from bot.roleplay.steering import Steering
from bot.roleplay.token_meter import TokenMeter
from bot.roleplay.transcript import Transcripts
from bot.roleplay.turns import TurnQueue
from bot.roleplay.webhooks import Speakable, WebhookPool, check_can_speak
from bot.settings import Settings
from bot.sharding import runs_guild
from storage.models import DEFAULT_TALKATIVENESS, Persona
from storage.natural import NaturalStore, utc_day
from storage.personas import PersonaStore
from storage.roleplay import AlreadyActive, RoleplayMode, RoleplayStore, Session, TooManyActive
from storage.scenes import SceneStore

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400
DELIVERIES_KEPT_SECONDS = SECONDS_PER_DAY

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
        turn_taking: TurnTakingClient | None = None,
        natural_store: NaturalStore | None = None,
        scenes: SceneStore | None = None,
        rng: random.Random | None = None,
        avatars: AvatarHost | None = None,
        meter: TokenMeter | None = None,
    ) -> None:
        self._client = client
        self.chat = chat  # also writes /scene recap
        self.scenes = SceneBoard(scenes)  # every turn's scene and recap, cached per channel
        self._store = store
        self._personas = personas
        self._settings = settings
        self.meter = meter  # the chat model's tokens per server per day, and their cap
        self._avatars = avatars
        self._natural_store = natural_store  # pruned with the rest, set up or not
        self._active = ActiveSessions()
        self._webhooks = WebhookPool(client, store)
        self._transcripts = Transcripts()
        self._turns = TurnQueue(settings.roleplay_channel_cooldown_seconds)
        self._bot_turns = BotTurns(settings.roleplay_max_bot_turns)
        self._characters = Characters(lore_chars=settings.roleplay_lore_chars)
        self._persona_chain = PersonaChain(settings.roleplay_max_persona_chain)
        # Draws who answers a message addressed to nobody among several `always` personas; tests seed it.
        self.rng = rng or random.Random()
        bounds = HistoryBounds(
            settings.roleplay_history_messages, settings.roleplay_history_chars, settings.roleplay_system_prompt_chars
        )
        self._speaker = (
            Speaker(
                chat=chat,
                webhooks=self._webhooks,
                store=store,
                transcripts=self._transcripts,
                bounds=bounds,
                max_tokens=settings.chat_model_max_tokens,
                on_spoken=self._spoken,
                avatars=avatars,
                meter=meter,
            )
            if chat is not None
            else None
        )
        self.steering = Steering(
            store=store,
            active=self._active,
            transcripts=self._transcripts,
            webhooks=self._webhooks,
            speaker=self._speaker,
            chat=chat,
            max_tokens=settings.chat_model_max_tokens,
            stage=self._stage,
            catch_up=self._catch_up,
        )
        # Channels whose sessions outlived a restart: their transcript is read back from Discord once.
        self._to_read_back: set[int] = set()
        self.natural = (
            NaturalRoleplay(
                client,
                turn_taking=turn_taking,
                store=natural_store,
                speaker=self._speaker,
                transcripts=self._transcripts,
                chat=chat,
                settings=settings,
                answer_plainly=self._answer_plainly,
                fall_back=self._fall_back_to_mention,
                tell=self._tell,
            )
            if self._speaker is not None and chat is not None and turn_taking is not None and natural_store is not None
            else None
        )

    async def load(self) -> None:
        """Take up every session the last run left active in the servers this process's shards carry.

        Another process runs the other servers' sessions (README, "Running at scale"): their messages
        never reach this one, and their idle ends are that process's to tell.
        """
        shards = self._settings.shard_count, self._settings.shard_id_list
        for session in await self._store.active():
            if not runs_guild(session.guild_id, *shards):
                continue
            await self._remember(session)
            self._to_read_back.add(session.channel_id)

    async def close(self) -> None:
        if self.natural is not None:
            await self.natural.close()
        await self._turns.stop()

    def in_channel(self, channel_id: int) -> list[Session]:
        return self._active.in_channel(channel_id)

    def held_channels(self) -> set[int]:
        """Every channel any in-memory map holds something for: those with an active session, no other."""
        held = self._active.channels() | self._transcripts.channels() | self._turns.channels()
        held |= self._bot_turns.channels() | self._to_read_back | self._webhooks.channels()
        held |= self.scenes.channels()
        held |= self._persona_chain.channels()
        if self.natural is not None:
            held |= self.natural.channels()
        if self._speaker is not None:
            held |= self._speaker.channels()
        return held

    def held_personas(self) -> set[int]:
        """Every persona kept in memory: those speaking somewhere, no other."""
        held = self._active.cached_personas() | self._characters.personas()
        return held | (self._avatars.personas() if self._avatars is not None else set())

    async def prune(self) -> int:
        """Forget what is older than ROLEPLAY_MESSAGE_RETENTION_DAYS: which persona sent which message, the
        daily counts of tokens and of turn-taking calls, and the channel notices of those days; how many rows.

        Natural mode's claimed deliveries go after a day: Humalike replays a message on a reconnect,
        within seconds, never a day later.
        """
        days = self._settings.roleplay_message_retention_days
        now = wall_clock()
        cutoff = now - days * SECONDS_PER_DAY
        messages = await self._store.prune_messages(older_than=cutoff)
        counts = 0
        if self.meter is not None:
            counts += await self.meter.prune(before_day=utc_day(cutoff))
        if self._natural_store is not None:
            counts += await self._natural_store.prune(
                before_day=utc_day(cutoff), delivered_before=now - DELIVERIES_KEPT_SECONDS
            )
        if messages or counts:
            log.info("Forgot %s persona messages and %s counts and notices older than %s days", messages, counts, days)
        return messages + counts

    # --- Starting and ending --------------------------------------------------------------------

    async def begin(
        self,
        interaction: discord.Interaction,
        personas: list[Persona],
        mode: RoleplayMode,
        *,
        greeting: int | None = None,
    ) -> None:
        """Start every one of `personas` speaking where `interaction` happened (a cast at once), or none.

        A persona from a card enters with its card's greeting (`greeting`: which one), others with their own words.
        """
        if self._speaker is None:
            raise UserFacingError(NO_MODEL)
        if mode == "natural" and self.natural is None:
            raise UserFacingError("Natural mode needs Humalike's turn-taking, which this bot has not set up.")
        member, channel = member_and_channel(interaction)
        if any(persona.guild_id != member.guild.id for persona in personas):
            raise UserFacingError("That persona belongs to another server.")
        check_may_start_here(member, channel, await self._store.guild_settings(member.guild.id))
        for persona in personas:  # a cast comes in whole or not at all
            check_may_speak_here(persona, channel)
        check_can_speak(channel, member.guild.me)
        # Which greeting each persona enters with: refused now if the card has no such greeting.
        openings = {p.id: self._characters.opening(p, greeting, user=member.display_name) for p in personas}
        # Made now, so a refusal is told now and not at the first word; may wait on Discord's limits.
        await in_time(interaction, self._webhooks.get(channel))
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
        self._bot_turns.member_spoke(channel.id)  # a member just started someone: bots may be answered again
        self._persona_chain.member_spoke(channel.id)
        talk = {
            "mention": "Say a name or reply to one of them to talk",
            "always": "They answer every message here",
            "natural": "They join in when it is their moment, and always when named or replied to",
            "narrator": "The narrator speaks when named, replied to or called with `/scene narrate`",
        }[mode]
        verb = "joins" if len(sessions) == 1 else "join"
        await answer(
            interaction, f"🎭 {bold_names(sessions)} {verb} {channel.mention}. {talk}; `/roleplay stop` ends it."
        )
        for session in sessions:
            opening = openings.get(session.persona_id, "")
            if session.mode == "narrator" and not opening:
                await self._open_as_narrator(channel, session)
            else:
                self._request_turn(channel, session, greeting=True, opening=opening)

    async def _open_as_narrator(self, channel: Speakable, session: Session) -> None:
        """A narrator's first turn sets the channel's scene, when it has one; else it waits to be called."""
        if (await self.scenes.table(channel.guild.id, channel.id)).scene:
            self._request_turn(channel, session, cue=OPENING_CUE)

    async def narrate(self, interaction: discord.Interaction, cue: str) -> None:
        """/scene narrate: the channel's narrator takes a turn now, `cue` saying what should happen in it."""
        if self._speaker is None:
            raise UserFacingError(NO_MODEL)
        member, channel = member_and_channel(interaction)
        narrator = channel_narrator(self._active.in_channel(channel.id))
        if narrator is None:
            raise UserFacingError(NO_NARRATOR)
        if not may_direct(member, narrator.started_by, await self._store.guild_settings(member.guild.id)):
            raise UserFacingError(
                "Only whoever brought the narrator in, or a member who may start roleplay, can call on it."
            )
        cue = cue.strip()
        asked = f": “{discord.utils.escape_markdown(preview(cue))}”" if cue else "."
        name = discord.utils.escape_markdown(narrator.persona_name)
        await answer(interaction, f"🎲 {member.mention} calls on **{name}**{asked}")
        self._request_turn(channel, narrator, cue=cue or NEXT_CUE)

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
        settings = await self._store.guild_settings(member.guild.id)
        allowed = [s for s in active if may_direct(member, s.started_by, settings)]
        if not allowed:
            raise UserFacingError(
                "Only whoever started a persona here, or a member who may start roleplay, can stop it."
            )
        for session in allowed:
            await self._end(session, reason=f"stopped by {member.id}")
        return allowed

    async def speak_next(self, interaction: discord.Interaction, typed: str, nudge: str) -> None:
        """/roleplay next: one persona speaking here takes a turn now, `nudge` (if any) as its cue.

        Answered at once; the persona's line follows. A member's call: personas may answer it again.
        """
        if self._speaker is None:
            raise UserFacingError(NO_MODEL)
        member, channel = member_and_channel(interaction)
        session = find_speaking(self._active.in_channel(channel.id), typed)
        check_may_call(member, session, await self._store.guild_settings(member.guild.id))
        name = discord.utils.escape_markdown(session.persona_name)
        await answer(interaction, f"🎲 **{name}** will speak next.", ephemeral=True)
        self._persona_chain.member_spoke(channel.id)
        self._request_turn(channel, session, cue=nudge.strip())

    async def end_persona(self, persona_id: int, *, by: discord.abc.User) -> None:
        """A deleted persona stops speaking everywhere at once, and each channel is told why."""
        for session in self._active.everywhere():
            if session.persona_id == persona_id:
                await self._end(session, reason=f"persona deleted by {by.id}")
                await self._tell(session.channel_id, deleted_notice(session.persona_name, by_mention=by.mention))
        if self.natural is not None:
            await self.natural.forget_persona(persona_id)

    async def persona_changed(self, before: Persona, after: Persona, *, by: discord.abc.User) -> None:
        """A rename or an edit takes effect at once wherever the persona speaks, and each channel is told.

        Its next line uses the new name and system prompt; the notice pings nobody.
        """
        notice = change_notice(
            before.name, after.name, prompt_edited=before.system_prompt != after.system_prompt, by_mention=by.mention
        )
        for session in self._active.update_persona(after):
            channel = self._client.get_channel(session.channel_id)
            if isinstance(channel, discord.TextChannel | discord.Thread) and not may_speak_here(after, channel):
                await self._end(session, reason=f"marked NSFW by {by.id}")
                await self._tell(session.channel_id, nsfw_ended_notice(after.name, by_mention=by.mention))
                continue
            if self.natural is not None and session.mode == "natural":
                self.natural.update(session, after)
            if notice is not None:
                await self._tell(session.channel_id, notice)

    async def expire_idle(self) -> None:
        """End the sessions of channels nobody has talked in for ROLEPLAY_IDLE_MINUTES, saying so."""
        idle_after = self._settings.roleplay_idle_minutes * 60
        for session in self._active.idle(now=wall_clock(), idle_after=idle_after):
            await self._end(session, reason="idle")
            name = discord.utils.escape_markdown(session.persona_name)
            await self._tell(
                session.channel_id, f"💤 **{name}** left: nobody talked with them for {round(idle_after / 60)} minutes."
            )

    async def _tell(self, channel_id: int, text: str) -> None:
        """A notice from the bot itself in a channel, pinging nobody; a refusal is only logged."""
        channel = self._client.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        try:
            await channel.send(text)  # the bot's allowed_mentions (none) hold for it
        except discord.HTTPException:
            log.info("Could not post a roleplay notice in channel %s", channel_id)

    async def _remember(self, session: Session) -> None:
        persona = self._active.persona(session.persona_id) or await self._personas.get(session.persona_id)
        self._active.add(session, persona)
        if session.mode == "natural" and persona is not None:
            if self.natural is None:  # turn-taking is not set up in this run: the persona goes on as in mention mode
                await self._fall_back_to_mention(session)
            else:
                await self.natural.seat(session, persona)

    async def _end(self, session: Session, *, reason: str) -> None:
        await self._store.end(session.id, now=wall_clock(), reason=reason)
        if self.natural is not None and session.mode == "natural":
            await self.natural.unseat(session)
        if self._active.remove(session):
            self._forget_channel(session.channel_id)
        self._let_go_of_silent_personas()

    async def _fall_back_to_mention(self, session: Session) -> None:
        """A natural persona goes on in mention mode (turn-taking refused it, or is not set up)."""
        await self._store.set_mode(session.id, "mention")
        current = self._active.set_mode(session, "mention")
        if self.natural is not None and current is not None:
            await self.natural.unseat(session)

    def _spoken(self, channel_id: int, session: Session, text: str) -> None:
        """A greeting or a plain answer reaches the channel's natural personas, as their own lines do,
        and the personas it names answer it, within ROLEPLAY_MAX_PERSONA_CHAIN."""
        if self.natural is not None:
            self.natural.hear(
                channel_id, Heard(session.persona_name, text, wall_clock(), persona_id=session.persona_id)
            )
        self._answer_persona_line(channel_id, session, text)

    def _answer_persona_line(self, channel_id: int, session: Session, text: str) -> None:
        """Each persona named in a persona's line gets a turn while the chain's count allows (persona_chain.py)."""
        channel = self._client.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        sessions = self._active.in_channel(channel_id)
        by_persona = {s.persona_id: s for s in sessions}
        for persona_id in called_by_persona(text, session.persona_id, [self._active_persona(s) for s in sessions]):
            if not self._persona_chain.may_answer(channel_id):  # checked before the turn is asked for
                log.info("Personas in channel %s answered each other the most times in a row", channel_id)
                return
            self._persona_chain.answered(channel_id)
            self._request_turn(channel, by_persona[persona_id])

    def _active_persona(self, session: Session) -> ActivePersona:
        persona = self._active.persona(session.persona_id)
        talkativeness = persona.talkativeness if persona is not None else DEFAULT_TALKATIVENESS
        return ActivePersona(session.persona_id, session.persona_name, session.mode, session.started_at, talkativeness)

    def _answer_plainly(self, session: Session) -> None:
        channel = self._client.get_channel(session.channel_id)
        current = self._active.current(session)
        if current is not None and isinstance(channel, discord.TextChannel | discord.Thread):
            self._request_turn(channel, current)

    def _let_go_of_silent_personas(self) -> None:
        """Drop the cards and checked avatars of personas that speak nowhere any more."""
        speaking = self._active.cached_personas()
        self._characters.keep_only(speaking)
        if self._avatars is not None:
            self._avatars.keep_only(speaking)

    def _forget_channel(self, channel_id: int) -> None:
        """Drop everything kept in memory for a channel where no persona speaks any more."""
        self._transcripts.forget(channel_id)
        self._turns.forget(channel_id)
        self._bot_turns.forget(channel_id)
        self._persona_chain.forget(channel_id)
        self._to_read_back.discard(channel_id)
        self.scenes.forget(channel_id)
        if self._speaker is not None:
            self._speaker.forget(channel_id)
        # A thread speaks through its parent's webhook: drop that too, unless the parent itself is in use
        # (a sibling thread still speaking reads it back from the database once).
        channel = self._client.get_channel(channel_id)
        home = getattr(channel, "parent_id", None) or channel_id
        if not self._active.in_channel(home):
            self._webhooks.evict(home)

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
        # Another bot, another integration's webhook, or a second copy of this bot's personas.
        from_bot = message.author.bot or message.webhook_id is not None
        if from_bot and not self._settings.roleplay_answer_other_bots:
            return
        earlier = await self._read_back_once(channel, sessions, before=message)
        reply_to_persona = await self._replied_persona(message)
        sessions = self._active.in_channel(channel.id)  # again: a stop may have come while we waited
        if not sessions:
            return
        if not from_bot:
            # Only members keep a persona from leaving, and only they release the brake on bots.
            self._active.heard(channel.id, message.created_at.timestamp())
            self._bot_turns.member_spoke(channel.id)
            self._persona_chain.member_spoke(channel.id)
        self._transcripts.extend(channel.id, earlier)
        text = message.clean_content
        line = ChannelLine(
            author_name=message.author.display_name, content=text, persona_id=None, author_id=message.author.id
        )
        self._transcripts.add(channel.id, line, at=message.created_at.timestamp())
        if self._speaker is None:
            return  # sessions outlived the chat model's settings: nobody can answer until it is back
        mentions_bot = me is not None and me in message.mentions
        natural = [s for s in sessions if s.mode == "natural"]
        ordinary = [s for s in sessions if s.mode != "natural"]
        if natural and (not from_bot or self._settings.roleplay_answer_other_bots):
            self._hear_naturally(message, natural, text, reply_to_persona, mentions_bot)
        targets = addressed(
            text=text,
            active=[self._active_persona(s) for s in ordinary],
            reply_to_persona=reply_to_persona,
            mentions_bot=mentions_bot,
            last_speaker=self._speaker.last_speaker.get(channel.id),
            recent_speakers=self._transcripts.recent_speakers(channel.id, RECENT_LINES),
            rng=self.rng,
        )
        if not targets:
            return
        if from_bot:
            if not self._bot_turns.may_answer(channel.id):
                return
            self._bot_turns.answered(channel.id)
            if not self._bot_turns.may_answer(channel.id):
                log.info(
                    "Personas in channel %s answered bots %s times in a row; now they wait for a member",
                    channel.id,
                    self._settings.roleplay_max_bot_turns,
                )
        by_persona = {s.persona_id: s for s in sessions}
        for persona_id in targets:
            self._request_turn(channel, by_persona[persona_id])

    def _hear_naturally(
        self,
        message: discord.Message,
        natural: list[Session],
        text: str,
        reply_to_persona: int | None,
        mentions_bot: bool,
    ) -> None:
        """A member's line for the channel's natural personas, with those it names, replies to or mentions."""
        if self.natural is None or self._speaker is None:
            return
        named = addressed(
            text=text,
            active=[ActivePersona(s.persona_id, s.persona_name, "mention", s.started_at) for s in natural],
            reply_to_persona=reply_to_persona,
            mentions_bot=mentions_bot,
            last_speaker=self._speaker.last_speaker.get(message.channel.id),
        )
        line = Heard(
            message.author.display_name,
            text,
            message.created_at.timestamp(),
            has_media=bool(message.attachments or message.stickers),
            addressed=frozenset(named),
            from_member=not (message.author.bot or message.webhook_id is not None),
        )
        self.natural.hear(message.channel.id, line)

    async def _catch_up(self, channel: Speakable) -> None:
        """Read a channel's past back now, if a restart left it unread: a reply in it is being steered."""
        sessions = self._active.in_channel(channel.id)
        if not sessions:
            return
        now = discord.Object(discord.utils.time_snowflake(discord.utils.utcnow(), high=True))
        self._transcripts.extend(channel.id, await self._read_back_once(channel, sessions, before=now))

    async def _read_back_once(
        self, channel: Speakable, sessions: list[Session], *, before: discord.abc.Snowflake
    ) -> list[tuple[float, ChannelLine]]:
        """The channel's lines since its sessions began and before `before`, read from Discord the first
        time only after a restart left it unread; [] every other time."""
        if channel.id not in self._to_read_back:
            return []
        self._to_read_back.discard(channel.id)
        me = self._client.user
        since = min(s.started_at for s in sessions)
        return await read_back(channel, since=since, before=before, store=self._store, bot_user_id=me.id if me else 0)

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

    async def _stage(self, channel: Speakable, session: Session, persona: Persona, *, cue: str = "") -> Stage:
        """What the table shares and the persona brings to this turn, beyond its own prompt."""
        table = await self.scenes.table(channel.guild.id, channel.id)
        starter = channel.guild.get_member(session.started_by)
        card = self._characters.stage(
            persona,
            self._transcripts.since(channel.id, session.started_at),
            starter=starter.display_name if starter is not None else "",
        )
        return Stage(
            scene=table.scene,
            recap=table.recap,
            lore=card.lore,
            examples=card.examples,
            after_history=card.after_history,
            narrator=session.mode == "narrator",
            cue=cue,
        )

    def _request_turn(
        self, channel: Speakable, session: Session, *, greeting: bool = False, cue: str = "", opening: str = ""
    ) -> None:
        """Ask for a turn of `session`'s persona; `cue` says what should happen in it (/roleplay next, a narrator).

        `opening`: a card's greeting, said as written instead of a greeting from the chat model.
        """
        speaker = self._speaker
        if speaker is None:
            return

        async def turn() -> None:
            try:
                # Read when the turn runs, not when it was asked for: a rename or an edit meanwhile counts.
                current = self._active.current(session)
                persona = self._active.persona(session.persona_id)
                if current is None or persona is None:
                    return  # stopped while waiting
                if not may_speak_here(persona, channel):  # the channel stopped being age-restricted
                    await self._end(current, reason="channel not age-restricted")
                    await self._tell(channel.id, channel_no_longer_allows(persona.name))
                    return
                here = self._active.in_channel(channel.id)
                others = [s.persona_name for s in here if s.persona_id != current.persona_id]
                if opening:
                    await speaker.recite(channel, current, opening)
                else:
                    stage = await self._stage(channel, current, persona, cue=cue)
                    await speaker.speak(channel, current, persona.system_prompt, others, greeting=greeting, stage=stage)
                heard = self._active.last_heard(channel.id)
                if heard is not None:  # stored for a restart: when a member last spoke, not when the persona did
                    await self._store.touch(current.id, now=heard)
            finally:
                if not self._active.in_channel(channel.id):
                    self._forget_channel(channel.id)  # a turn that outlived its channel's sessions leaves nothing
                self._let_go_of_silent_personas()

        self._turns.request(channel.id, session.persona_id, turn, special=greeting or bool(cue))
