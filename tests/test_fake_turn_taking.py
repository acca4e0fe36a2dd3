"""The fake turn-taking service holds to the published pages, seen over raw HTTP and WebSocket.

Not through the bot's client: the client refuses out-of-range values itself, so only a raw
request shows that the service it is tested against refuses them too, in the documented shape.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.faults import Fault
from tests.fakes.humalike import DEFAULT_TOKEN, ManualClock
from tests.fakes.turn_taking import ACTIONS, FakeTurnTaking, serve

BEAT = 0.01
LONG = "x" * 256  # one over the 255 characters every id and name may have


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeTurnTaking:
    return FakeTurnTaking(clock=clock, beat=BEAT)


@pytest.fixture
async def base_url(fake: FakeTurnTaking) -> AsyncIterator[str]:
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[Post]:
    async with aiohttp.ClientSession() as session:
        yield Post(session, base_url)


class Post:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def __call__(self, action: str, body: Any, token: str = DEFAULT_TOKEN) -> tuple[int, Any, str | None]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.post(self.base_url + ACTIONS + action, json=body, headers=headers) as response:
            return response.status, json.loads(await response.text()), response.headers.get("x-request-id")

    async def thread(self, **body: Any) -> dict[str, Any]:
        status, answer, _ = await self("open_thread", {"thread_id": str(uuid.uuid4()), **body})
        assert status == 200, answer
        return answer


def message(n: int = 0, **fields: Any) -> dict[str, Any]:
    return {"sender": "alice", "content": f"line {n}", "client_ts": f"2026-08-20T20:00:{n % 60:02d}Z", **fields}


def problems(answer: Any) -> list[str]:
    assert answer["error"]["code"] == "VALIDATION_ERROR"
    return [detail["field"] for detail in answer["error"]["details"]]


# --- Limits the pages set ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"messages": [message(n) for n in range(21)]}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": None}, "messages"),
        ({"messages": [message(content="x" * 4001)]}, "messages.0.content"),
        ({"messages": [message(content="")]}, "messages.0.content"),
        ({"messages": [message(sender="s" * 256)]}, "messages.0.sender"),
        ({"messages": [message(client_ts="yesterday")]}, "messages.0.client_ts"),
        ({"messages": [message(has_media="yes")]}, "messages.0.has_media"),
        ({"system_prompt": "p" * 100_001}, "system_prompt"),
        ({"skip_decide": "true"}, "skip_decide"),
        ({"thread_id": None}, "thread_id"),
    ],
)
async def test_submit_refuses_what_the_page_rules_out_and_records_nothing(
    http: Post, fake: FakeTurnTaking, change: dict[str, Any], field: str
) -> None:
    thread = await http.thread()
    body = {"thread_id": thread["thread"]["id"], "messages": [message()], **change}

    status, answer, request_id = await http("submit_messages", body)

    assert (status, problems(answer)) == (422, [field])
    assert request_id
    assert fake.thread(thread["thread"]["id"]).turn_epoch == 0 and fake.billed == []


async def test_submit_takes_each_limit_at_its_edge(http: Post, fake: FakeTurnTaking) -> None:
    thread = await http.thread()
    edge = [message(n, sender="s" * 255, content="c" * 4000) for n in range(20)]

    status, answer, _ = await http(
        "submit_messages", {"thread_id": thread["thread"]["id"], "messages": edge, "system_prompt": "p" * 100_000}
    )

    assert status == 200, answer
    assert answer["turn_epoch"] == 1 and answer["decision"] in ("speak", "stay_silent")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "x" * 4001}, "content"),
        ({"turn_epoch": None}, "turn_epoch"),
        ({"turn_epoch": "1"}, "turn_epoch"),
        ({"turn_epoch": True}, "turn_epoch"),
        ({"agent_name": ""}, "agent_name"),
        ({"agent_name": "n" * 256}, "agent_name"),
        ({"system_prompt": "p" * 100_001}, "system_prompt"),
        ({"pacing": {"reading_delay_ms": -1}}, "pacing.reading_delay_ms"),
        ({"pacing": {"reading_delay_ms": 30_001}}, "pacing.reading_delay_ms"),
        ({"pacing": {"typing_wpm": 0}}, "pacing.typing_wpm"),
        ({"pacing": {"typing_wpm": 2001}}, "pacing.typing_wpm"),
        ({"pacing": {"max_typing_ms": 0}}, "pacing.max_typing_ms"),
        ({"pacing": {"max_typing_ms": 60_001}}, "pacing.max_typing_ms"),
        ({"metadata": {"blob": "x" * 4086}}, "metadata"),  # 4097 bytes serialized
        ({"metadata": ["not", "an", "object"]}, "metadata"),
    ],
)
async def test_respond_refuses_what_the_page_rules_out_and_schedules_nothing(
    http: Post, fake: FakeTurnTaking, change: dict[str, Any], field: str
) -> None:
    thread = await http.thread()
    thread_id = thread["thread"]["id"]
    await http("submit_messages", {"thread_id": thread_id, "messages": [message()], "skip_decide": True})

    status, answer, _ = await http("respond", {"thread_id": thread_id, "content": "hi", "turn_epoch": 1, **change})

    assert (status, problems(answer)) == (422, [field])
    assert fake.thread(thread_id).replies == {} and fake.billed == []


async def test_respond_takes_each_limit_at_its_edge(http: Post) -> None:
    thread = await http.thread()
    thread_id = thread["thread"]["id"]
    await http("submit_messages", {"thread_id": thread_id, "messages": [message()], "skip_decide": True})
    edge = {
        "content": "x" * 4000,
        "agent_name": "n" * 255,
        "pacing": {"reading_delay_ms": 0, "typing_wpm": 2000, "max_typing_ms": 60_000},
        "metadata": {"blob": "x" * 4085},  # 4096 bytes serialized
    }

    status, answer, _ = await http("respond", {"thread_id": thread_id, "turn_epoch": 1, **edge})

    assert status == 200, answer
    assert [piece["position"] for piece in answer["scheduled"]] == [0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"thread_id": "channel-42"}, "thread_id"),
        ({"integrations": "on"}, "integrations"),
        (
            {"integrations": {"social_memory": {"memory_bank_id": "b" * 256}}},
            "integrations.social_memory.memory_bank_id",
        ),
        ({"integrations": {"social_signals": {"channel_id": "c" * 256}}}, "integrations.social_signals.channel_id"),
    ],
)
async def test_open_thread_refuses_a_bad_id_or_integrations(
    http: Post, fake: FakeTurnTaking, body: dict[str, Any], field: str
) -> None:
    status, answer, _ = await http("open_thread", body)

    assert (status, problems(answer)) == (422, [field])
    assert fake.threads == {}


async def test_record_event_takes_only_the_three_documented_types(http: Post) -> None:
    thread_id = (await http.thread())["thread"]["id"]
    good = [
        await http("record_event", {"thread_id": thread_id, "type": kind, "sender": "alice"})
        for kind in ("typing_start", "typing_stop", "message_edited")
    ]

    status, answer, _ = await http("record_event", {"thread_id": thread_id, "type": "typing", "sender": "alice"})

    assert [(code, body) for code, body, _ in good] == [(200, {"tags": []})] * 3
    assert (status, problems(answer)) == (422, ["type"])


async def test_validation_can_answer_400_as_the_errors_page_shows(http: Post, fake: FakeTurnTaking) -> None:
    fake.validation_status = 400

    status, answer, _ = await http("submit_messages", {"thread_id": str(uuid.uuid4()), "messages": []})

    assert (status, problems(answer)) == (400, ["messages"])


# --- Accounts, billing and credits ---------------------------------------------------------------


async def test_every_answer_has_a_request_id_and_a_bad_token_gets_the_401_envelope(http: Post) -> None:
    refused = await http("whoami", {}, token="revoked")
    accepted = await http("whoami", {})

    assert refused[:2] == (401, {"error": {"code": "UNAUTHORIZED", "message": "Authentication failed."}})
    assert accepted[:2] == (200, {"user_id": "user_fake123"})
    assert refused[2] and accepted[2] and refused[2] != accepted[2]


async def test_a_thread_of_another_account_reads_as_absent(http: Post, fake: FakeTurnTaking) -> None:
    fake.add_account("other-token", "user_other")
    mine = (await http.thread())["thread"]["id"]

    status, answer, _ = await http("submit_messages", {"thread_id": mine, "messages": [message()]}, token="other-token")

    assert (status, problems(answer)) == (422, ["thread_id"])
    assert fake.thread(mine).transcript == []


async def test_billing_follows_the_pages_call_by_call(http: Post, fake: FakeTurnTaking) -> None:
    plain = (await http.thread())["thread"]["id"]
    remembering = (await http.thread(integrations={"social_memory": {}}))["thread"]["id"]
    fake.script_decisions("speak", "speak")

    await http("submit_messages", {"thread_id": plain, "messages": [message(1)]})
    await http("submit_messages", {"thread_id": plain, "messages": [message(1)]})  # the same batch again
    await http("submit_messages", {"thread_id": plain, "messages": [message(2)], "skip_decide": True})
    await http("submit_messages", {"thread_id": plain, "messages": [message(3, has_media=True)]})
    await http("submit_messages", {"thread_id": remembering, "messages": [message(1)]})
    await http("respond", {"thread_id": plain, "content": "hi", "turn_epoch": 1})  # superseded by turn 2
    await http("respond", {"thread_id": plain, "content": "hi", "turn_epoch": 3})
    await http("record_event", {"thread_id": plain, "type": "typing_start", "sender": "alice"})
    await http("whoami", {})

    assert [(call.action, call.components) for call in fake.billed] == [
        ("submit_messages", ("turn-taking",)),
        ("submit_messages", ("turn-taking", "social-memory")),
        ("respond", ("turn-taking", "theoryofmind")),
    ]
    assert fake.billed_units == 5 and len(fake.calls) == 11


async def test_a_call_the_credits_cannot_cover_is_402_and_free_calls_still_work(
    http: Post, fake: FakeTurnTaking
) -> None:
    thread_id = (await http.thread())["thread"]["id"]
    fake.credits = 0

    refused = await http("submit_messages", {"thread_id": thread_id, "messages": [message(1)]})
    addressed = await http("submit_messages", {"thread_id": thread_id, "messages": [message(2)], "skip_decide": True})

    assert refused[:2] == (402, {"error": {"code": "PAYMENT_REQUIRED", "message": "insufficient credits"}})
    assert addressed[0] == 200 and addressed[1]["turn_epoch"] == 1
    assert fake.credits == 0


async def test_a_502_carries_a_trace_id_and_a_committed_drop_keeps_the_batch(http: Post, fake: FakeTurnTaking) -> None:
    thread_id = (await http.thread())["thread"]["id"]
    fake.fail_next("submit_messages", 502)
    fake.fail_next("submit_messages", Fault.drop(commit=True))
    body = {"thread_id": thread_id, "messages": [message(1)]}

    upstream = await http("submit_messages", body)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http("submit_messages", body)
    again = await http("submit_messages", body)

    assert upstream[0] == 502 and upstream[1]["error"]["code"] == "UPSTREAM_ERROR"
    assert upstream[1]["error"]["trace_id"].startswith("trc_")
    assert again[0] == 200 and again[1]["turn_epoch"] == 1
    assert [call.status for call in fake.calls_of("submit_messages")] == [502, None, 200]
    assert len(fake.billed) == 1


# --- Pacing and sockets --------------------------------------------------------------------------


async def test_a_long_draft_is_paced_into_five_messages_at_most(http: Post, fake: FakeTurnTaking) -> None:
    thread_id = (await http.thread())["thread"]["id"]
    await http("submit_messages", {"thread_id": thread_id, "messages": [message()], "skip_decide": True})
    draft = "One. Two. Three. Four. Five. Six. Seven."

    _, answer, _ = await http("respond", {"thread_id": thread_id, "content": draft, "turn_epoch": 1})

    assert [piece["content"] for piece in answer["scheduled"]] == [
        "One.",
        "Two.",
        "Three.",
        "Four.",
        "Five. Six. Seven.",
    ]
    assert [piece["position"] for piece in answer["scheduled"]] == [0, 1, 2, 3, 4]


async def test_a_socket_gets_typing_then_each_message_a_beat_apart(http: Post, fake: FakeTurnTaking) -> None:
    opened = await http.thread()
    thread_id = opened["thread"]["id"]
    fake.script_reply("first", "second", thread_id=thread_id)
    fake.beat = 0.1  # long enough that a busy loop cannot make two messages look closer than half of it
    await http("submit_messages", {"thread_id": thread_id, "messages": [message()], "skip_decide": True})
    loop = asyncio.get_running_loop()

    async with http.session.ws_connect(opened["realtime"]["connect_url"]) as socket:
        await fake.wait_open(thread_id)
        await http("respond", {"thread_id": thread_id, "content": "whatever", "turn_epoch": 1})
        frames = []
        async with asyncio.timeout(5):
            while len(frames) < 6:
                frames.append((json.loads((await socket.receive()).data), loop.time()))

    kinds = [(f["type"], f["data"].get("typing", f["data"].get("content"))) for f, _ in frames]
    assert kinds == [
        ("turn_taking.typing", True),
        ("turn_taking.message", "first"),
        ("turn_taking.typing", False),
        ("turn_taking.typing", True),
        ("turn_taking.message", "second"),
        ("turn_taking.typing", False),
    ]
    assert frames[4][1] - frames[1][1] >= fake.beat / 2
    envelope = frames[1][0]
    assert set(envelope) == {"id", "type", "channel", "ts", "data"}
    assert envelope["channel"] == opened["channel"] == f"turn-taking-thread/{thread_id}"
    assert set(envelope["data"]) == {"message_id", "thread_id", "content", "position", "sent_at", "metadata"}


async def test_an_expired_or_unknown_connect_url_is_refused_but_an_open_socket_stays(
    http: Post, fake: FakeTurnTaking
) -> None:
    opened = await http.thread()
    thread_id = opened["thread"]["id"]
    url = opened["realtime"]["connect_url"]

    async with http.session.ws_connect(url) as socket:
        await fake.wait_open(thread_id)
        fake.expire_connect_urls(thread_id)
        with pytest.raises(aiohttp.WSServerHandshakeError) as expired:
            await http.session.ws_connect(url)
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            await http.session.ws_connect(url.split("?")[0] + "?c=0000")
        await http("submit_messages", {"thread_id": thread_id, "messages": [message()], "skip_decide": True})
        await http("respond", {"thread_id": thread_id, "content": "still here.", "turn_epoch": 1})
        await fake.paced()
        assert not socket.closed

    assert expired.value.status == unknown.value.status == 401
    assert [(c.status, c.reason) for c in fake.connections] == [
        (101, ""),
        (401, "connect_url expired"),
        (401, "unknown connect_url"),
    ]
    assert [m["content"] for m in fake.thread(thread_id).delivered()] == ["still here."]
