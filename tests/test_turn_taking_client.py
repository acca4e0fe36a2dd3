"""The turn-taking client against the fake service over loopback: what a caller sees for each case."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from pydantic import SecretStr

from bot.humalike.errors import (
    ConnectionLost,
    Forbidden,
    NetworkError,
    OutOfCredits,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    ValidationFailed,
)
from bot.humalike.turn_taking import ThreadSocket, TurnTakingClient, batches
from bot.humalike.turn_taking_models import (
    ActivityType,
    Decision,
    Event,
    InboundMessage,
    Integrations,
    MessageEvent,
    OpenedThread,
    OtherEvent,
    Pacing,
    RespondResult,
    SignalEvent,
    SocialMemory,
    SocialSignals,
    SubmitResult,
    TypingEvent,
)
from tests.fakes.faults import Fault
from tests.fakes.humalike import DEFAULT_USER_ID, ManualClock, validation_failed_body
from tests.fakes.turn_taking import FakeTurnTaking, serve
from tests.fakes.turn_taking_threads import Decide

TOKEN = "test-token"
BEAT = 0.01
START = datetime(2026, 8, 20, 20, 0, tzinfo=UTC)
DAY = "2026-08-20"
SENTENCE_3 = "I'll be on around nine."
DRAFT = f"Ha, that lantern was clean. Want to duo later? {SENTENCE_3}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeTurnTaking:
    return FakeTurnTaking(token=TOKEN, clock=clock, beat=BEAT)


@pytest.fixture
async def base_url(fake: FakeTurnTaking) -> AsyncIterator[str]:
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(session: aiohttp.ClientSession, base_url: str) -> TurnTakingClient:
    return TurnTakingClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=2.0)


@pytest.fixture
async def opened(client: TurnTakingClient) -> OpenedThread:
    return await client.open_thread(uuid.uuid4())


def line(content: str, second: int = 0, sender: str = "alice", **extra: object) -> InboundMessage:
    return InboundMessage(sender=sender, content=content, client_ts=START + timedelta(seconds=second), **extra)


async def read_messages(socket: ThreadSocket, count: int) -> list[Event]:
    """Every event up to and including the `count`th `turn_taking.message`."""
    events: list[Event] = []
    async with asyncio.timeout(5):
        async for event in socket:
            events.append(event)
            if sum(isinstance(e, MessageEvent) for e in events) == count:
                return events
    raise AssertionError(f"the socket ended after {events}")


async def speak_turn(client: TurnTakingClient, fake: FakeTurnTaking, thread_id: str, content: str = "gg") -> int:
    fake.script_decisions("speak", thread_id=thread_id)
    return (await client.submit_messages(thread_id, [line(content)])).turn_epoch


# --- Threads ---------------------------------------------------------------------------------------


async def test_reopening_our_thread_id_creates_nothing_and_issues_a_fresh_connect_url(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    ours = uuid.uuid4()

    first = await client.open_thread(ours)
    again = await client.open_thread(str(ours))

    assert first.thread_id == again.thread_id == str(ours)
    assert first.thread.created_at == again.thread.created_at
    assert first.thread.user_id == DEFAULT_USER_ID
    assert first.channel == f"turn-taking-thread/{ours}"
    assert first.realtime.connect_url.get_secret_value() != again.realtime.connect_url.get_secret_value()
    assert first.realtime.expires_at is not None and first.realtime.expires_at > datetime.now(UTC)
    assert list(fake.threads) == [(DEFAULT_USER_ID, str(ours))]
    assert [call.body for call in fake.calls_of("open_thread")] == [{"thread_id": str(ours)}] * 2


async def test_opening_without_an_id_starts_a_new_thread_each_time(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    one = await client.open_thread()
    two = await client.open_thread()

    assert one.thread_id != two.thread_id
    assert len(fake.threads) == 2
    assert fake.calls_of("open_thread")[0].body == {}


async def test_integrations_set_on_create_survive_a_reopen_that_omits_them(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    ours = str(uuid.uuid4())
    memory = Integrations(social_memory=SocialMemory(memory_bank_id="guild-1:persona-7"))

    await client.open_thread(ours, integrations=memory)
    await client.open_thread(ours)

    create, reopen = (call.body for call in fake.calls_of("open_thread"))
    assert create == {"thread_id": ours, "integrations": {"social_memory": {"memory_bank_id": "guild-1:persona-7"}}}
    assert reopen == {"thread_id": ours}
    assert fake.thread(ours).integrations == create["integrations"]


async def test_a_thread_id_that_is_not_a_uuid_is_refused_before_sending(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    with pytest.raises(ValueError):
        await client.open_thread("channel-42")

    assert fake.calls == []


async def test_another_account_opening_our_thread_id_gets_its_own_thread(
    session: aiohttp.ClientSession, base_url: str, client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    fake.add_account("other-token", "user_other")
    other = TurnTakingClient(session, base_url=base_url, token=SecretStr("other-token"), timeout=2.0)
    ours = str(uuid.uuid4())
    await client.open_thread(ours)
    await client.submit_messages(ours, [line("first")])

    theirs = await other.open_thread(ours)
    their_turn = await other.submit_messages(ours, [line("hello?")])

    assert theirs.thread.user_id == "user_other"
    assert their_turn.turn_epoch == 1  # our turn 1 is not theirs to see
    assert fake.thread(ours).turn_epoch == 1
    assert [m["content"] for m in fake.thread(ours).transcript] == ["first"]


# --- Deciding ------------------------------------------------------------------------------------


async def test_submit_sends_the_documented_body_and_reads_a_stay_silent_decision(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.script_decisions("stay_silent")

    result = await client.submit_messages(
        opened.thread_id,
        [line("anyone up for aram?"), line("only if Sam plays", 2, sender="bob")],
        system_prompt="You are Sam, a Thresh main.",
    )

    assert result.decision is Decision.STAY_SILENT and not result.speak
    assert result.turn_epoch == 1
    assert result.tags == [] and result.recalled_context == ""
    assert fake.calls_of("submit_messages")[0].body == {
        "thread_id": opened.thread_id,
        "messages": [
            {
                "sender": "alice",
                "content": "anyone up for aram?",
                "has_media": False,
                "client_ts": "2026-08-20T20:00:00Z",
            },
            {"sender": "bob", "content": "only if Sam plays", "has_media": False, "client_ts": "2026-08-20T20:00:02Z"},
        ],
        "system_prompt": "You are Sam, a Thresh main.",
        "skip_decide": False,
    }
    assert [call.components for call in fake.billed] == [("turn-taking",)]


async def test_skip_decide_and_media_speak_without_being_billed_or_using_a_decision(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.script_decisions("stay_silent")

    addressed = await client.submit_messages(opened.thread_id, [line("@Sam you there?")], skip_decide=True)
    media = await client.submit_messages(opened.thread_id, [line("[image]", 1, has_media=True)])
    decided = await client.submit_messages(opened.thread_id, [line("nvm", 2)])

    assert (addressed.decision, addressed.turn_epoch) == (Decision.SPEAK, 1)
    assert (media.decision, media.turn_epoch) == (Decision.SPEAK, 2)
    assert (decided.decision, decided.turn_epoch) == (Decision.STAY_SILENT, 3)
    assert fake.calls_of("submit_messages")[0].body["skip_decide"] is True
    assert len(fake.billed) == 1


async def test_a_batch_over_twenty_or_empty_is_refused_before_sending(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    backlog = [line(f"message {n}", n) for n in range(45)]

    with pytest.raises(ValueError, match="messages"):
        await client.submit_messages(opened.thread_id, backlog[:21])
    with pytest.raises(ValueError, match="messages"):
        await client.submit_messages(opened.thread_id, [])
    results = [await client.submit_messages(opened.thread_id, batch) for batch in batches(backlog)]

    assert [len(batch) for batch in batches(backlog)] == [20, 20, 5]
    assert [result.turn_epoch for result in results] == [1, 2, 3]
    assert [len(call.body["messages"]) for call in fake.calls_of("submit_messages")] == [20, 20, 5]
    assert len(fake.thread(opened.thread_id).transcript) == 45


async def test_a_batch_resent_after_a_lost_answer_is_recorded_and_billed_once(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.script_decisions("speak", "stay_silent")
    fake.fail_next("submit_messages", Fault.drop(commit=True))
    batch = [line("who's jungling?"), line("not me", 1, sender="bob")]

    with pytest.raises(NetworkError):
        await client.submit_messages(opened.thread_id, batch, system_prompt="Sam")
    retried = await client.submit_messages(opened.thread_id, batch, system_prompt="Sam")
    later = await client.submit_messages(opened.thread_id, [line("ok I will", 5)])

    lost, resent, new = fake.calls_of("submit_messages")
    assert lost.status is None and resent.status == 200
    assert lost.body == resent.body  # the same batch, word for word: the service knows it
    assert (retried.decision, retried.turn_epoch) == (Decision.SPEAK, 1)
    assert (later.decision, later.turn_epoch) == (Decision.STAY_SILENT, 2)
    assert len(fake.thread(opened.thread_id).transcript) == 3
    assert [call.request_id for call in fake.billed] == [lost.request_id, new.request_id]


async def test_the_same_words_sent_again_later_are_a_new_batch(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    first = await client.submit_messages(opened.thread_id, [line("lol")])
    second = await client.submit_messages(opened.thread_id, [line("lol", 30)])

    assert (first.turn_epoch, second.turn_epoch) == (1, 2)
    assert len(fake.billed) == 2


# --- Replying ------------------------------------------------------------------------------------


async def test_speak_then_respond_delivers_the_reply_over_the_socket_in_position_order_typing_first(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id, "Sam, did you see that hook?")

    async with client.connect(opened) as socket:
        await fake.wait_open(opened.thread_id)
        answer = await client.respond(
            opened.thread_id,
            DRAFT,
            epoch,
            agent_name="Sam",
            system_prompt="You are Sam.",
            pacing=Pacing(typing_wpm=320, max_typing_ms=4000),
            metadata={"reply": "r-1"},
        )
        events = await read_messages(socket, 3)

    messages = [event.data for event in events if isinstance(event, MessageEvent)]
    assert not answer.superseded
    assert [m.position for m in messages] == [0, 1, 2]
    assert [m.content for m in messages] == [
        "Ha, that lantern was clean.",
        "Want to duo later?",
        "I'll be on around nine.",
    ]
    assert [m.message_id for m in messages] == [s.id for s in answer.scheduled]
    assert all(m.metadata == {"reply": "r-1"} and m.thread_id == opened.thread_id for m in messages)
    assert isinstance(events[0], TypingEvent) and events[0].data.typing is True
    for index, event in enumerate(events):
        if isinstance(event, MessageEvent):
            before = events[index - 1]
            assert isinstance(before, TypingEvent) and before.data.typing is True
    assert {event.channel for event in events} == {opened.channel}
    assert fake.calls_of("respond")[0].body == {
        "thread_id": opened.thread_id,
        "content": DRAFT,
        "turn_epoch": epoch,
        "system_prompt": "You are Sam.",
        "agent_name": "Sam",
        "pacing": {"typing_wpm": 320.0, "max_typing_ms": 4000.0},
        "metadata": {"reply": "r-1"},
    }
    assert [call.components for call in fake.billed] == [("turn-taking",), ("turn-taking", "theoryofmind")]


async def test_a_reply_to_a_turn_overtaken_by_a_newer_batch_is_superseded_and_not_billed(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.script_decisions("speak", "speak")
    stale = await client.submit_messages(opened.thread_id, [line("sam?")])
    current = await client.submit_messages(opened.thread_id, [line("actually nvm, bob?", 3)])

    dropped = await client.respond(opened.thread_id, DRAFT, stale.turn_epoch, agent_name="Sam")
    await fake.paced()

    assert (stale.turn_epoch, current.turn_epoch) == (1, 2)
    assert dropped.superseded and dropped.scheduled == []
    assert fake.thread(opened.thread_id).sent == fake.thread(opened.thread_id).missed == []
    assert [call.action for call in fake.billed] == ["submit_messages", "submit_messages"]


async def test_the_scheduled_list_tells_what_a_down_socket_missed(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id)

    answer = await client.respond(opened.thread_id, DRAFT, epoch)  # no socket open
    await fake.paced()

    thread = fake.thread(opened.thread_id)
    missed = [e["data"] for e in thread.missed if e["type"] == "turn_taking.message"]
    assert thread.delivered() == []
    assert [(s.id, s.position, s.content) for s in answer.scheduled] == [
        (m["message_id"], m["position"], m["content"]) for m in missed
    ]
    deliver_at = [s.deliver_at for s in answer.scheduled]
    assert deliver_at == sorted(deliver_at) and len(set(deliver_at)) == 3
    assert all(s.status == "scheduled" and s.thread_id == opened.thread_id for s in answer.scheduled)


async def test_a_reply_resent_after_a_lost_answer_is_paced_and_billed_once(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id)
    fake.fail_next("respond", Fault.drop(commit=True))

    async with client.connect(opened) as socket:
        await fake.wait_open(opened.thread_id)
        with pytest.raises(NetworkError):
            await client.respond(opened.thread_id, DRAFT, epoch)
        retried = await client.respond(opened.thread_id, DRAFT, epoch)
        events = await read_messages(socket, 3)
        await fake.paced()

    delivered = fake.thread(opened.thread_id).delivered()
    assert [m["message_id"] for m in delivered] == [s.id for s in retried.scheduled]
    assert [e.data.message_id for e in events if isinstance(e, MessageEvent)] == [s.id for s in retried.scheduled]
    assert [call.action for call in fake.billed] == ["submit_messages", "respond"]


# --- The socket ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("close_code", "seen_code"), [(None, 1006), (4000, 4000)], ids=["cut", "close-frame"])
async def test_a_dropped_socket_raises_connection_lost_and_a_reopen_reconnects(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread, close_code: int | None, seen_code: int
) -> None:
    async with client.connect(opened) as socket:
        await fake.wait_open(opened.thread_id)
        reading = asyncio.create_task(read_messages(socket, 1))
        await fake.drop_sockets(opened.thread_id, close_code=close_code)
        with pytest.raises(ConnectionLost) as caught:
            await reading

    reopened = await client.open_thread(opened.thread_id)
    epoch = await speak_turn(client, fake, opened.thread_id)
    async with client.connect(reopened) as socket:
        await fake.wait_open(opened.thread_id)
        await client.respond(opened.thread_id, "back again.", epoch)
        events = await read_messages(socket, 1)

    assert caught.value.status is None and caught.value.close_code == seen_code
    assert [e.data.content for e in events if isinstance(e, MessageEvent)] == ["back again."]
    assert len(fake.threads) == 1


async def test_an_expired_connect_url_is_refused_and_a_reopen_gets_one_that_works(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread, clock: ManualClock
) -> None:
    clock.advance(30)  # the grant's whole life

    with pytest.raises(ConnectionLost) as caught:
        async with client.connect(opened):
            pass
    reopened = await client.open_thread(opened.thread_id)
    async with client.connect(reopened) as socket:
        await fake.wait_open(opened.thread_id)
        epoch = await speak_turn(client, fake, opened.thread_id)
        await client.respond(opened.thread_id, "made it.", epoch)
        events = await read_messages(socket, 1)

    assert caught.value.status == 401 and not isinstance(caught.value, Unauthorized)  # the URL, not our token
    assert [(c.status, c.reason) for c in fake.connections] == [(401, "connect_url expired"), (101, "")]
    assert [e.data.content for e in events if isinstance(e, MessageEvent)] == ["made it."]
    assert len(fake.threads) == 1


async def test_closing_the_socket_ends_reading_quietly_even_mid_reply(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id)
    fake.beat = 0.2
    seen: list[Event] = []
    first_message = asyncio.Event()

    async with client.connect(opened) as socket:
        await fake.wait_open(opened.thread_id)

        async def read_all() -> None:
            async for event in socket:
                seen.append(event)
                if isinstance(event, MessageEvent):
                    first_message.set()

        reading = asyncio.create_task(read_all())
        await client.respond(opened.thread_id, DRAFT, epoch)
        await asyncio.wait_for(first_message.wait(), 2)
        await socket.close()
        await asyncio.wait_for(reading, 2)  # ends without ConnectionLost

    assert [e.data.position for e in seen if isinstance(e, MessageEvent)] == [0]
    assert socket.closed


async def test_the_socket_gets_no_bearer_token_and_logs_never_show_its_credential(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.expire_connect_urls(opened.thread_id)

    with pytest.raises(ConnectionLost) as caught:
        await client.connect(opened).open()

    credential = parse_qs(urlsplit(opened.realtime.connect_url.get_secret_value()).query)["c"][0]
    assert [c.authorization for c in fake.connections] == [False]
    assert credential not in caplog.text and credential not in str(caught.value) and credential not in repr(opened)
    assert TOKEN not in caplog.text


async def test_frames_off_the_contract_are_skipped_and_unknown_event_types_passed_on(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id)

    async with client.connect(opened) as socket:
        await fake.wait_open(opened.thread_id)
        await fake.send_frame(opened.thread_id, "<html>502</html>")
        await fake.send_frame(opened.thread_id, json.dumps({"type": "turn_taking.message", "data": {"content": "?"}}))
        await fake.send_frame(opened.thread_id, json.dumps({"type": "turn_taking.presence", "data": {"online": 3}}))
        await client.respond(opened.thread_id, "still fine.", epoch)
        events = await read_messages(socket, 1)

    assert isinstance(events[0], OtherEvent)
    assert (events[0].type, events[0].data) == ("turn_taking.presence", {"online": 3})
    assert [e.data.content for e in events if isinstance(e, MessageEvent)] == ["still fine."]


def test_answers_with_nulls_extra_keys_and_zoneless_times_still_parse() -> None:
    submit = SubmitResult.model_validate(
        {"decision": "speak", "turn_epoch": 3, "tags": None, "recalled_context": None, "cost": {"credits": 1}}
    )
    respond = RespondResult.model_validate(
        {
            "scheduled": [{"id": "m1", "content": "hi", "position": 0, "deliver_at": "2026-06-16T12:00:01", "x": 1}],
            "superseded": False,
            "created_at": "2026-06-16T12:00:00Z",
        }
    )
    superseded = RespondResult.model_validate({"scheduled": None, "superseded": True})

    assert submit.speak and (submit.tags, submit.recalled_context) == ([], "")
    assert respond.scheduled[0].deliver_at == datetime(2026, 6, 16, 12, 0, 1, tzinfo=UTC)
    assert superseded.superseded and superseded.scheduled == []


async def test_an_answer_off_the_contract_is_an_unexpected_response(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.fail_next("submit_messages", Fault.null())

    with pytest.raises(UnexpectedResponse):
        await client.submit_messages(opened.thread_id, [line("hi")])


async def test_signals_and_tags_come_only_on_a_thread_with_social_signals(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    plain = await client.open_thread(uuid.uuid4())
    watched = await client.open_thread(uuid.uuid4(), integrations=Integrations(social_signals=SocialSignals()))
    fake.script_decisions(Decide("speak", tags=("fast",)), Decide("speak", tags=("fast",)))

    untagged = await client.submit_messages(plain.thread_id, [line("hey")])
    tagged = await client.submit_messages(watched.thread_id, [line("hey")])
    async with client.connect(watched) as socket:
        await fake.wait_open(watched.thread_id)
        await fake.emit_signal(watched.thread_id, "alice", "typing_without_sending")
        async with asyncio.timeout(5):
            signal = await anext(socket)

    assert untagged.tags == [] and tagged.tags == ["fast"]
    assert isinstance(signal, SignalEvent)
    assert (signal.data.user_id, signal.data.kind) == ("alice", "typing_without_sending")
    with pytest.raises(ValueError):
        await fake.emit_signal(plain.thread_id, "alice", "long_silence")


async def test_one_memory_bank_per_guild_recalls_across_its_channels_and_nowhere_else(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    guild_1 = Integrations(social_memory=SocialMemory(memory_bank_id="guild-1:persona-7"))
    guild_2 = Integrations(social_memory=SocialMemory(memory_bank_id="guild-2:persona-7"))
    general = await client.open_thread(uuid.uuid4(), integrations=guild_1)
    memes = await client.open_thread(uuid.uuid4(), integrations=guild_1)
    elsewhere = await client.open_thread(uuid.uuid4(), integrations=guild_2)

    first = await client.submit_messages(general.thread_id, [line("I only play Thresh")])
    same_guild = await client.submit_messages(memes.thread_id, [line("what should I pick?", 60)])
    other_guild = await client.submit_messages(elsewhere.thread_id, [line("what should I pick?", 60)])

    assert first.recalled_context == ""
    assert "I only play Thresh" in same_guild.recalled_context
    assert other_guild.recalled_context == ""
    assert [call.components for call in fake.billed] == [("turn-taking", "social-memory")] * 3


async def test_record_event_reports_typing_for_free(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    tags = await client.record_event(opened.thread_id, ActivityType.TYPING_START, "alice", client_ts=START)

    assert tags == []
    assert fake.calls_of("record_event")[0].body == {
        "thread_id": opened.thread_id,
        "type": "typing_start",
        "sender": "alice",
        "client_ts": "2026-08-20T20:00:00Z",
    }
    assert fake.billed == []
    with pytest.raises(ValueError):
        await client.record_event(opened.thread_id, "typing", "alice")


async def test_whoami_names_the_account_for_free(client: TurnTakingClient, fake: FakeTurnTaking) -> None:
    assert await client.whoami() == DEFAULT_USER_ID
    assert [call.action for call in fake.calls] == ["whoami"] and fake.billed == []


# --- Refusals ------------------------------------------------------------------------------------


async def test_running_out_of_credits_is_out_of_credits_with_the_request_id_and_no_charge(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.credits = 2
    epoch = await speak_turn(client, fake, opened.thread_id)  # one unit; a reply needs two

    with pytest.raises(OutOfCredits) as caught:
        await client.respond(opened.thread_id, DRAFT, epoch)
    await fake.paced()

    assert (caught.value.status, caught.value.code) == (402, "PAYMENT_REQUIRED")
    assert caught.value.request_id == fake.calls[-1].request_id
    assert fake.credits == 1 and [call.action for call in fake.billed] == ["submit_messages"]
    assert fake.thread(opened.thread_id).missed == []
    assert TOKEN not in str(caught.value)


async def test_a_402_on_submit_records_nothing(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.fail_next("submit_messages", 402)

    with pytest.raises(OutOfCredits) as caught:
        await client.submit_messages(opened.thread_id, [line("hi")])

    assert caught.value.request_id == fake.calls[-1].request_id
    assert fake.thread(opened.thread_id).turn_epoch == 0 and fake.billed == []


async def test_a_502_is_service_unavailable_with_trace_and_request_ids(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    epoch = await speak_turn(client, fake, opened.thread_id)
    fake.fail_next("respond", 502)

    with pytest.raises(ServiceUnavailable) as caught:
        await client.respond(opened.thread_id, DRAFT, epoch)
    retried = await client.respond(opened.thread_id, DRAFT, epoch)

    assert (caught.value.status, caught.value.code) == (502, "UPSTREAM_ERROR")
    assert caught.value.trace_id is not None and caught.value.trace_id.startswith("trc_")
    assert caught.value.request_id == fake.calls_of("respond")[0].request_id
    assert len(retried.scheduled) == 3


async def test_a_422_with_field_details_names_the_problem_and_the_request(
    client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    never_opened = str(uuid.uuid4())

    with pytest.raises(ValidationFailed) as caught:
        await client.submit_messages(never_opened, [line("hello?")])

    assert (caught.value.status, caught.value.code) == (422, "VALIDATION_ERROR")
    assert [(p.field, p.message) for p in caught.value.problems] == [("thread_id", "thread not found")]
    assert caught.value.request_id == fake.calls[-1].request_id


async def test_a_422_with_loc_details_names_the_problem(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.fail_next(
        "submit_messages", 422, body=validation_failed_body("messages", "List should have at most 20 items", "too_long")
    )

    with pytest.raises(ValidationFailed) as caught:
        await client.submit_messages(opened.thread_id, [line("hi")])

    assert caught.value.code == "validation_failed"
    assert [(p.field, p.message) for p in caught.value.problems] == [("messages", "List should have at most 20 items")]
    assert caught.value.request_id


async def test_a_400_validation_error_as_the_errors_page_shows_it_is_a_validation_failure(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    fake.validation_status = 400

    with pytest.raises(ValidationFailed) as caught:
        await client.respond(opened.thread_id, DRAFT, 5)  # no turn 5 yet

    assert caught.value.status == 400
    assert [p.field for p in caught.value.problems] == ["turn_epoch"]


async def test_values_at_the_documented_edges_pass_the_client_and_the_service(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    batch = [line("c" * 4000, n, sender="s" * 255) for n in range(20)]
    metadata = {"note": "é" * 2042 + "a"}  # 4096 bytes as UTF-8 JSON, more with \u escapes

    decided = await client.submit_messages(opened.thread_id, batch, system_prompt="p" * 100_000, skip_decide=True)
    answer = await client.respond(
        opened.thread_id,
        "x" * 4000,
        decided.turn_epoch,
        agent_name="n" * 255,
        pacing=Pacing(reading_delay_ms=0, typing_wpm=2000, max_typing_ms=60_000),
        metadata=metadata,
    )

    assert not answer.superseded and answer.scheduled
    assert [call.status for call in fake.calls] == [200, 200, 200]


async def test_out_of_contract_values_are_refused_before_sending(
    client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread
) -> None:
    with pytest.raises(ValueError, match="content"):
        await client.respond(opened.thread_id, "x" * 4001, 1)
    with pytest.raises(ValueError, match="metadata"):
        await client.respond(opened.thread_id, "hi", 1, metadata={"blob": "x" * 4096})
    with pytest.raises(ValueError, match="typing_wpm"):
        await client.respond(opened.thread_id, "hi", 1, pacing=Pacing(typing_wpm=0))
    with pytest.raises(ValueError, match="sender"):
        InboundMessage(sender="", content="hi")

    assert fake.calls_of("respond") == []


async def test_a_bad_token_is_unauthorized_and_a_forbidden_one_forbidden(
    session: aiohttp.ClientSession, base_url: str, client: TurnTakingClient, fake: FakeTurnTaking
) -> None:
    revoked = TurnTakingClient(session, base_url=base_url, token=SecretStr("revoked-token"), timeout=2.0)
    fake.fail_next("open_thread", 403)

    with pytest.raises(Unauthorized) as unauthorized:
        await revoked.open_thread()
    with pytest.raises(Forbidden) as forbidden:
        await client.open_thread()

    assert unauthorized.value.code == "UNAUTHORIZED" and unauthorized.value.request_id
    assert "revoked-token" not in str(unauthorized.value)
    assert forbidden.value.code == "forbidden"
    assert fake.threads == {}


async def test_a_429_honours_retry_after(client: TurnTakingClient, fake: FakeTurnTaking, opened: OpenedThread) -> None:
    fake.fail_next("submit_messages", 429, headers={"Retry-After": "7"})

    with pytest.raises(RateLimited) as caught:
        await client.submit_messages(opened.thread_id, [line("hi")])

    assert caught.value.retry_after == 7


async def test_a_hanging_call_times_out_as_a_network_error(
    session: aiohttp.ClientSession, base_url: str, fake: FakeTurnTaking
) -> None:
    impatient = TurnTakingClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=0.2)
    fake.fail_next("open_thread", Fault.hang())

    with pytest.raises(NetworkError, match="timed out"):
        await impatient.open_thread()
