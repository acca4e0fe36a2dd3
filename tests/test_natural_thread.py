"""A natural persona's turn-taking thread against the fake service: connected, replies delivered once.

Real loopback sockets to `tests/fakes/turn_taking.py`, and the real delivery ledger
(storage/natural.py) on a fresh SQLite file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.humalike.errors import FinalError, OutOfCredits
from bot.humalike.turn_taking import TurnTakingClient
from bot.humalike.turn_taking_models import InboundMessage
from bot.roleplay.natural.thread import Piece, ThreadLink
from storage.natural import NaturalStore
from tests.databases import fresh_database
from tests.fakes.turn_taking import FakeTurnTaking, serve

TOKEN = "natural-token"
BEAT = 0.02
SYSTEM_PROMPT = "You are Sam Okafor, a support main."
PIECES = ("Ha, clean lantern.", "Duo later?", "I'm on at nine.")


class Channel:
    """What the link shows in Discord: the pieces posted and the typing shown, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.errors: list[FinalError] = []
        self.posted = asyncio.Condition()

    async def deliver(self, piece: Piece) -> None:
        self.events.append(piece.content)
        async with self.posted:
            self.posted.notify_all()

    async def typing(self) -> None:
        self.events.append("<typing>")

    async def final_error(self, error: FinalError) -> None:
        self.errors.append(error)

    @property
    def lines(self) -> list[str]:
        return [event for event in self.events if event != "<typing>"]

    async def wait_lines(self, count: int) -> None:
        async with asyncio.timeout(5), self.posted:
            await self.posted.wait_for(lambda: len(self.lines) >= count)


@pytest.fixture
def fake() -> FakeTurnTaking:
    return FakeTurnTaking(token=TOKEN, beat=BEAT)


@pytest.fixture
async def client(fake: FakeTurnTaking) -> AsyncIterator[TurnTakingClient]:
    async with serve(fake) as url, aiohttp.ClientSession() as session:
        yield TurnTakingClient(session, base_url=url, token=SecretStr(TOKEN), timeout=2.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[NaturalStore]:
    async with fresh_database("sqlite", tmp_path) as database:
        yield NaturalStore(database)


async def quick_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.05))  # backoff in tests: the same order of events, sooner


def link_for(client: TurnTakingClient, store: NaturalStore, channel: Channel, thread_id: str) -> ThreadLink:
    return ThreadLink(
        client,
        store,
        thread_id=thread_id,
        integrations=None,
        deliver=channel.deliver,
        show_typing=channel.typing,
        on_final_error=channel.final_error,
        sleep=quick_sleep,
    )


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - a plain attribute of the link, no event to wait on
            await asyncio.sleep(0.01)


def said(content: str) -> InboundMessage:
    return InboundMessage(sender="alice", content=content, client_ts=datetime.now(UTC))


async def speak(link: ThreadLink, fake: FakeTurnTaking, draft: str = "Clean lantern! Duo later? On at nine."):
    fake.script_decisions("speak", thread_id=link.thread_id)
    fake.script_reply(*PIECES, thread_id=link.thread_id)
    decided = await link.submit([said("that hook was insane")], system_prompt=SYSTEM_PROMPT, skip_decide=False)
    assert decided.speak
    return await link.respond(draft, decided.turn_epoch, agent_name="Sam Okafor", system_prompt=SYSTEM_PROMPT)


@pytest.fixture
async def running(client: TurnTakingClient, store: NaturalStore) -> AsyncIterator[tuple[ThreadLink, Channel]]:
    channel = Channel()
    link = link_for(client, store, channel, str(uuid.uuid4()))
    link.start()
    async with asyncio.timeout(5):
        await link.wait_connected()
    yield link, channel
    await link.stop()


async def test_a_reply_arrives_as_its_paced_pieces_in_order_with_typing_first(
    running: tuple[ThreadLink, Channel], fake: FakeTurnTaking
) -> None:
    link, channel = running

    result = await speak(link, fake)

    await channel.wait_lines(3)
    assert not result.superseded and [m.position for m in result.scheduled] == [0, 1, 2]
    assert channel.lines == list(PIECES)
    assert channel.events[0] == "<typing>"  # the persona is seen typing before its first words
    assert len(fake.threads) == 1


async def test_a_dropped_socket_is_reopened_on_the_same_thread_and_nothing_is_posted_twice(
    running: tuple[ThreadLink, Channel], fake: FakeTurnTaking
) -> None:
    link, channel = running
    await speak(link, fake)
    await channel.wait_lines(3)

    await fake.drop_sockets(link.thread_id)
    await fake.wait_open(link.thread_id, count=1)
    fake.script_reply("Still here.", thread_id=link.thread_id)
    fake.script_decisions("speak", thread_id=link.thread_id)
    decided = await link.submit([said("you there?")], system_prompt=SYSTEM_PROMPT, skip_decide=False)
    await link.respond("Still here.", decided.turn_epoch, agent_name="Sam Okafor", system_prompt=SYSTEM_PROMPT)

    await channel.wait_lines(4)
    assert channel.lines == [*PIECES, "Still here."]
    assert len(fake.threads) == 1  # re-opened, not a new thread
    assert len(fake.calls_of("open_thread")) == 2


async def test_an_expired_connect_url_is_replaced_by_reopening_the_thread(
    running: tuple[ThreadLink, Channel], fake: FakeTurnTaking
) -> None:
    link, channel = running
    fake.expire_connect_urls(link.thread_id)
    await fake.drop_sockets(link.thread_id)  # its next connect must use a fresh URL

    await fake.wait_open(link.thread_id, count=1)
    await speak(link, fake)

    await channel.wait_lines(3)
    assert channel.lines == list(PIECES)
    assert len(fake.threads) == 1


async def test_with_the_socket_down_the_scheduled_list_delivers_the_reply_once(
    running: tuple[ThreadLink, Channel], fake: FakeTurnTaking
) -> None:
    link, channel = running
    fake.fail_next("open_thread", 502, times=40)  # the socket cannot be had again for a while
    await fake.drop_sockets(link.thread_id)
    await wait_until(lambda: not link.connected)

    await speak(link, fake)

    await channel.wait_lines(3)
    assert channel.lines == list(PIECES)  # at the scheduled times, in order
    assert len(fake.thread(link.thread_id).missed) >= 3  # what the service pushed, nobody heard
    await fake.paced()
    assert channel.lines == list(PIECES)


async def test_the_same_piece_from_the_socket_and_the_scheduled_list_is_posted_once(
    client: TurnTakingClient, store: NaturalStore, fake: FakeTurnTaking
) -> None:
    first, second = Channel(), Channel()
    thread_id = str(uuid.uuid4())
    # Two links on one thread, as two processes after a takeover: one ledger decides.
    links = [link_for(client, store, channel, thread_id) for channel in (first, second)]
    for link in links:
        link.start()
    try:
        for link in links:
            await link.wait_connected()
        await speak(links[0], fake)
        await asyncio.sleep(len(PIECES) * 4 * BEAT + 0.3)
        assert sorted(first.lines + second.lines) == sorted(PIECES)
    finally:
        for link in links:
            await link.stop()


async def test_stopping_cuts_a_reply_being_paced_out(running: tuple[ThreadLink, Channel], fake: FakeTurnTaking) -> None:
    link, channel = running
    await speak(link, fake)
    await channel.wait_lines(1)

    await link.stop()
    await fake.paced()

    assert channel.lines == [PIECES[0]]
    assert fake.open_sockets(link.thread_id) == 0


async def test_a_502_on_submit_is_retried_and_billed_once(
    running: tuple[ThreadLink, Channel], fake: FakeTurnTaking
) -> None:
    link, _ = running
    fake.fail_next("submit_messages", 502)
    fake.script_decisions("speak", thread_id=link.thread_id)

    decided = await link.submit([said("gg")], system_prompt=SYSTEM_PROMPT, skip_decide=False)

    assert decided.speak
    assert [call.status for call in fake.calls_of("submit_messages")] == [502, 200]
    assert len([call for call in fake.billed if call.action == "submit_messages"]) == 1


async def test_out_of_credits_when_reopening_is_reported_and_not_retried(
    client: TurnTakingClient, store: NaturalStore, fake: FakeTurnTaking
) -> None:
    channel = Channel()
    link = link_for(client, store, channel, str(uuid.uuid4()))
    fake.fail_next("open_thread", 402)
    link.start()
    try:
        await wait_until(lambda: bool(channel.errors))
        await asyncio.sleep(0.2)  # time enough for a retry, if there were one
        assert [type(error) for error in channel.errors] == [OutOfCredits]
        assert len(fake.calls_of("open_thread")) == 1
    finally:
        await link.stop()


async def mid_reply(client: TurnTakingClient, store: NaturalStore, fake: FakeTurnTaking, before: Channel) -> ThreadLink:
    """A link on a new thread whose reply has shown its first piece, with time left before the next."""
    fake.beat = 0.3
    link = link_for(client, store, before, str(uuid.uuid4()))
    link.start()
    await link.wait_connected()
    await speak(link, fake)
    await before.wait_lines(1)
    return link


async def test_a_reply_cut_off_by_a_restart_is_finished_once_by_the_next_process(
    client: TurnTakingClient, store: NaturalStore, fake: FakeTurnTaking
) -> None:
    before, after = Channel(), Channel()
    first = await mid_reply(client, store, fake, before)

    await first.stop()  # the process stops mid-reply; its pieces still to come are kept
    second = link_for(client, store, after, first.thread_id)
    second.start()
    try:
        await fake.paced()
        async with asyncio.timeout(10):
            while len(before.lines) + len(after.lines) < len(PIECES):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert before.lines == [PIECES[0]]
        assert after.lines == list(PIECES[1:])  # the rest, in order, once
    finally:
        await second.stop()


async def test_a_stopped_persona_says_nothing_more_even_after_a_restart(
    client: TurnTakingClient, store: NaturalStore, fake: FakeTurnTaking
) -> None:
    before, after = Channel(), Channel()
    first = await mid_reply(client, store, fake, before)

    await first.stop(ended=True)  # /roleplay stop: the rest of the reply is dropped
    second = link_for(client, store, after, first.thread_id)
    second.start()
    try:
        await fake.paced()
        await asyncio.sleep(2.5)  # past the pieces' times and the grace after them
        assert before.lines == [PIECES[0]] and after.lines == []
    finally:
        await second.stop()
