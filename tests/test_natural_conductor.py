"""A channel's natural personas against the fake turn-taking service: who is asked, who speaks, what it costs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.humalike.errors import FinalError, OutOfCredits
from bot.humalike.turn_taking import TurnTakingClient
from bot.roleplay.natural.budget import Budget
from bot.roleplay.natural.conductor import Conductor, Heard, Voice
from bot.roleplay.natural.thread import Piece, ThreadLink
from storage.natural import NaturalStore
from tests.databases import fresh_database
from tests.fakes.turn_taking import FakeTurnTaking, serve

TOKEN = "natural-token"
GUILD, CHANNEL = 10, 20
SAM, JINX, MIRA = 1, 2, 3
NAMES = {SAM: "Sam", JINX: "Jinx", MIRA: "Mira"}


class Table:
    """A channel with natural personas: what they posted, what the service was told, and refusals."""

    def __init__(self, fake: FakeTurnTaking, client: TurnTakingClient, store: NaturalStore, *, cap: int | None) -> None:
        self.fake = fake
        self.store = store
        self.client = client
        self.posted: list[tuple[str, str]] = []  # (persona, piece)
        self.drafts: list[tuple[str, str]] = []  # (persona, recalled context it was drafted with)
        self.refusals: list[tuple[str, FinalError]] = []
        self.capped: list[int] = []
        self.plain: list[str] = []  # personas that answered as in mention mode
        self.budget = Budget(store, daily_calls=cap, capped=self._capped)
        self.conductor = Conductor(
            guild_id=GUILD,
            channel_id=CHANNEL,
            max_speakers=2,
            budget=self.budget,
            draft=self._draft,
            refused=self._refused,
            plain=self._plain,
        )
        self.threads: dict[int, str] = {}

    async def seat(self, *persona_ids: int) -> None:
        for persona_id in persona_ids:
            thread_id = str(uuid.uuid4())
            self.threads[persona_id] = thread_id
            name = NAMES[persona_id]

            async def deliver(piece: Piece, name: str = name) -> None:
                self.posted.append((name, piece.content))

            async def typing() -> None:
                return None

            async def final(error: FinalError, name: str = name) -> None:
                self.refusals.append((name, error))

            link = ThreadLink(
                self.client,
                self.store,
                thread_id=thread_id,
                integrations=None,
                deliver=deliver,
                show_typing=typing,
                on_final_error=final,
            )
            self.conductor.join(Voice(persona_id, name, f"You are {name}.", link))
            await link.wait_connected()

    async def _draft(self, voice: Voice, recalled: str) -> str:
        self.drafts.append((voice.name, recalled))
        return f"{voice.name} here."

    async def _refused(self, voice: Voice, error: FinalError) -> None:
        self.refusals.append((voice.name, error))

    async def _plain(self, voice: Voice) -> None:
        self.plain.append(voice.name)

    async def _capped(self, channel_id: int) -> None:
        self.capped.append(channel_id)

    def says(self, content: str, *, addressed: tuple[int, ...] = ()) -> None:
        self.conductor.hear(Heard("alice", content, time.time(), addressed=frozenset(addressed)))

    async def settle(self) -> None:
        """Let the personas be asked, the turns run and their replies be paced out."""
        await asyncio.sleep(0.15)
        await asyncio.gather(*list(self.conductor._turns))
        await self.fake.paced()
        await asyncio.sleep(0.05)

    def submits(self, persona_id: int) -> list[dict]:
        return [
            c.body for c in self.fake.calls_of("submit_messages") if c.body["thread_id"] == self.threads[persona_id]
        ]

    def responds(self) -> list[str]:
        by_thread = {thread: NAMES[persona] for persona, thread in self.threads.items()}
        return [by_thread[c.body["thread_id"]] for c in self.fake.calls_of("respond") if c.status == 200]


@pytest.fixture
async def table(tmp_path: Path) -> AsyncIterator[Table]:
    fake = FakeTurnTaking(token=TOKEN, beat=0.01)
    async with (
        serve(fake) as url,
        aiohttp.ClientSession() as session,
        fresh_database("sqlite", tmp_path) as database,
    ):
        client = TurnTakingClient(session, base_url=url, token=SecretStr(TOKEN), timeout=2.0)
        table = Table(fake, client, NaturalStore(database), cap=None)
        yield table
        await table.conductor.close()


async def test_messages_close_together_reach_each_persona_as_one_batch(table: Table) -> None:
    await table.seat(SAM, JINX)

    table.says("anyone up for ranked?")
    table.says("I need a support")
    await table.settle()

    for persona in (SAM, JINX):
        [batch] = table.submits(persona)
        assert [m["content"] for m in batch["messages"]] == ["anyone up for ranked?", "I need a support"]
        assert batch["system_prompt"] == f"You are {NAMES[persona]}."
        assert batch["skip_decide"] is False
    assert table.posted == []  # the fake decides stay_silent unless told otherwise


async def test_a_named_persona_always_answers_unbilled_and_its_reply_is_posted(table: Table) -> None:
    await table.seat(SAM, JINX)
    table.fake.script_reply("Always.", "Queue up.", thread_id=table.threads[SAM])

    table.says("sam, you in?", addressed=(SAM,))
    await table.settle()

    assert table.submits(SAM)[0]["skip_decide"] is True
    assert table.submits(JINX)[0]["skip_decide"] is False
    assert table.posted == [("Sam", "Always."), ("Sam", "Queue up.")]
    billed = [c.action for c in table.fake.billed]
    assert billed.count("submit_messages") == 1  # Jinx's decision; Sam's batch skipped it
    usage, _ = await table.budget.spent_today(GUILD)
    assert usage == {JINX: 1, SAM: 1}  # Jinx asked once; Sam's reply (respond) once


async def test_at_most_two_answer_the_same_message_however_many_would(table: Table) -> None:
    await table.seat(SAM, JINX, MIRA)
    for persona in (SAM, JINX, MIRA):
        table.fake.script_decisions("speak", thread_id=table.threads[persona])

    table.says("what's everyone playing tonight?")
    await table.settle()

    assert len(table.responds()) == 2
    assert len({name for name, _ in table.posted}) == 2


async def test_an_addressed_persona_answers_even_when_two_others_would(table: Table) -> None:
    await table.seat(SAM, JINX, MIRA)
    for persona in (JINX, MIRA):
        table.fake.script_decisions("speak", thread_id=table.threads[persona])

    table.says("mira, what about you?", addressed=(MIRA,))
    await table.settle()

    assert "Mira" in table.responds() and len(table.responds()) == 2


async def test_a_persona_line_alone_asks_nobody_and_reaches_the_others_with_the_next_member_line(
    table: Table,
) -> None:
    await table.seat(SAM, JINX)

    table.conductor.hear(Heard("Sam", "Who's up for a game?", time.time(), persona_id=SAM))
    await table.settle()
    assert table.fake.calls_of("submit_messages") == []

    table.says("me!")
    await table.settle()
    assert [m["content"] for m in table.submits(JINX)[0]["messages"]] == ["Who's up for a game?", "me!"]
    assert [m["content"] for m in table.submits(SAM)[0]["messages"]] == ["me!"]  # never its own line


async def test_at_the_daily_cap_the_channel_is_told_once_and_only_addressed_personas_answer(
    table: Table,
) -> None:
    table.budget = table.conductor._budget = Budget(table.store, daily_calls=1, capped=table._capped)
    await table.seat(SAM, JINX)

    table.says("first")  # two billable submits wanted, one allowed
    await table.settle()
    table.says("second")  # nobody is asked any more
    await table.settle()
    table.says("sam?", addressed=(SAM,))  # answered as in mention mode, without turn-taking
    await table.settle()

    assert table.capped == [CHANNEL]  # told once, not at every refusal
    # One persona was asked about "first"; the other's call would have passed the cap, so was not made.
    assert len(table.fake.calls_of("submit_messages")) == len(table.fake.billed) == 1
    assert table.plain == ["Sam"]
    assert table.posted == []


async def test_a_superseded_reply_is_dropped_quietly_and_given_back(table: Table) -> None:
    await table.seat(SAM)
    thread = table.threads[SAM]
    table.fake.script_decisions("speak", thread_id=thread)
    # A newer batch arrives between the decision and the draft: the draft is stale.
    original = table._draft

    async def slow_draft(voice: Voice, recalled: str) -> str:
        await table.client.submit_messages(thread, [Heard("bob", "wait", time.time()).inbound()])
        return await original(voice, recalled)

    table.conductor._draft = slow_draft
    table.says("gg")
    await table.settle()

    assert [c.body.get("content") for c in table.fake.calls_of("respond")] == ["Sam here."]
    assert table.posted == []
    usage, _ = await table.budget.spent_today(GUILD)
    assert usage == {SAM: 1}  # the decision; the superseded reply was not billed, so not counted


async def test_out_of_credits_is_handed_over_for_the_channel_to_be_told(table: Table) -> None:
    await table.seat(SAM)
    table.fake.fail_next("submit_messages", 402)

    table.says("hello?")
    await table.settle()

    assert [(name, type(error)) for name, error in table.refusals] == [("Sam", OutOfCredits)]
    usage, _ = await table.budget.spent_today(GUILD)
    assert usage.get(SAM, 0) == 0  # refused, so not billed


async def test_another_bots_line_asks_nobody_and_goes_with_the_next_member_line(table: Table) -> None:
    await table.seat(SAM)

    table.conductor.hear(Heard("OtherBot", "Daily reset in 5 minutes!", time.time(), from_member=False))
    await table.settle()
    assert table.fake.calls_of("submit_messages") == []

    table.says("ugh, already?")
    await table.settle()
    contents = [m["content"] for m in table.submits(SAM)[0]["messages"]]
    assert contents == ["Daily reset in 5 minutes!", "ugh, already?"]
