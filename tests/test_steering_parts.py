"""The parts steering is built on: transcript lines found by message, a stoppable stream, the last edit, who may."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.roleplay.access import may_direct
from bot.roleplay.history import ChannelLine
from bot.roleplay.stopping import StoppableStream
from bot.roleplay.streaming import StreamPublisher
from bot.roleplay.transcript import Transcripts
from storage.database import Backend, Database
from storage.roleplay import GuildRoleplaySettings, RoleplayStore
from tests.databases import BACKENDS, fresh_database

CHANNEL = 7


def said(content: str, *, persona_id: int | None = None, message_id: int | None = None, **more: object) -> ChannelLine:
    return ChannelLine("Sam" if persona_id else "alice", content, persona_id, 0, message_id, **more)  # type: ignore[arg-type]


def test_a_line_is_found_by_any_message_it_was_shown_in() -> None:
    transcripts = Transcripts()
    split = said("a long reply", persona_id=1, message_id=10, continued_in=(11, 12))
    transcripts.add(CHANNEL, said("hi sam"), at=1.0)
    transcripts.add(CHANNEL, split, at=2.0)

    assert transcripts.find(CHANNEL, 12) == (2.0, split)
    assert transcripts.find(CHANNEL, 10) == (2.0, split)
    assert transcripts.find(CHANNEL, 99) is None
    assert transcripts.find(CHANNEL + 1, 10) is None  # another channel's lines are not searched


def test_the_history_before_a_line_is_what_came_earlier_in_the_session() -> None:
    transcripts = Transcripts()
    transcripts.add(CHANNEL, said("from an earlier session"), at=1.0)
    transcripts.add(CHANNEL, said("hi sam"), at=5.0)
    transcripts.add(CHANNEL, said("hello", persona_id=1, message_id=10), at=6.0)
    transcripts.add(CHANNEL, said("later"), at=7.0)

    assert [line.content for line in transcripts.before(CHANNEL, 10, started_at=5.0)] == ["hi sam"]


def test_replacing_a_line_keeps_its_place_and_time() -> None:
    transcripts = Transcripts()
    transcripts.add(CHANNEL, said("hello", persona_id=1, message_id=10), at=6.0)
    transcripts.add(CHANNEL, said("later"), at=7.0)

    replaced = transcripts.replace(CHANNEL, 10, said("hi again", persona_id=1, message_id=10))
    missing = transcripts.replace(CHANNEL, 99, said("nobody"))

    assert replaced and not missing
    assert [line.content for line in transcripts.since(CHANNEL, 0)] == ["hi again", "later"]
    assert transcripts.find(CHANNEL, 10) == (6.0, said("hi again", persona_id=1, message_id=10))


async def test_a_stopped_stream_ends_and_closes_the_models_stream() -> None:
    closed = asyncio.Event()
    waiting = asyncio.Event()

    async def model() -> AsyncIterator[str]:
        try:
            yield "One "
            waiting.set()
            await asyncio.Event().wait()  # the next word never comes on its own
            yield "two"
        finally:
            closed.set()

    received = []
    async with StoppableStream(model()) as stream:

        async def read() -> None:
            async for delta in stream:
                received.append(delta)

        reading = asyncio.create_task(read())
        await waiting.wait()
        stream.stop()
        await asyncio.wait_for(reading, 1)

    assert received == ["One "]
    assert closed.is_set()


async def test_a_models_error_comes_out_of_the_stoppable_stream_as_it_was() -> None:
    async def model() -> AsyncIterator[str]:
        yield "One "
        raise ValueError("cut")

    received = []
    with pytest.raises(ValueError, match="cut"):
        async with StoppableStream(model()) as stream:
            async for delta in stream:
                received.append(delta)

    assert received == ["One "]


async def test_cancelling_the_reader_of_a_stream_is_not_taken_for_a_stop() -> None:
    async def model() -> AsyncIterator[str]:
        await asyncio.Event().wait()
        yield "never"

    async def read() -> None:
        async with StoppableStream(model()) as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_last_edit_reaches_every_message_when_asked_even_with_its_text_unchanged() -> None:
    now = 0.0
    edits: list[tuple[int, str]] = []

    async def send(text: str) -> int:
        return 1

    async def edit(handle: int, text: str) -> None:
        edits.append((handle, text))

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    publisher = StreamPublisher(send=send, edit=edit, clock=lambda: now, sleep=sleep)
    await publisher.feed("Hello there!")

    assert await publisher.finish(edit_every_message=True) == ["Hello there!"]
    assert edits == [(1, "Hello there!")]  # once, after the interval: it takes the Stop button away
    assert now == 1.0


class _Member:
    def __init__(self, member_id: int, *, manage_guild: bool = False, roles: tuple[int, ...] = ()) -> None:
        self.id = member_id
        self.guild_permissions = discord.Permissions(manage_guild=manage_guild)
        self.roles = [discord.Object(role) for role in roles]


@pytest.mark.parametrize(
    ("member", "allowed"),
    [
        (_Member(1), True),  # started the session
        (_Member(2, manage_guild=True), True),
        (_Member(3, roles=(50,)), True),  # the server's roleplay role
        (_Member(4, roles=(60,)), False),
        (_Member(5), False),
    ],
)
def test_who_may_steer_a_reply(member: _Member, allowed: bool) -> None:
    settings = GuildRoleplaySettings(starter_role_id=50)

    assert may_direct(member, 1, settings) is allowed  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend: Backend = request.param
    async with fresh_database(backend, tmp_path) as db:
        yield db


async def test_a_persona_message_tells_its_channel_persona_and_session(database: Database) -> None:
    store = RoleplayStore(database)
    await store.record_message(message_id=900, channel_id=CHANNEL, persona_id=3, session_id=4, now=1.0)

    origin = await store.message_origin(900)

    assert origin is not None
    assert (origin.channel_id, origin.persona_id, origin.session_id) == (CHANNEL, 3, 4)
    assert await store.message_origin(901) is None  # a member's message, or one long forgotten
