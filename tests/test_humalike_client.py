"""The Humalike client against the fake service: every documented answer and every observed oddity."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import SecretStr

from bot.humalike.client import HumalikeClient, parse_retry_after
from bot.humalike.errors import (
    Forbidden,
    HumalikeError,
    NetworkError,
    OutOfCredits,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from bot.humalike.models import Grounding, JobStatus
from tests.fakes.humalike import (
    Fail,
    FakeHumalike,
    Fault,
    ManualClock,
    Succeed,
    plain_text_persona,
    serve,
    validation_error_body,
)

TOKEN = "test-token"
SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeHumalike:
    return FakeHumalike(token=TOKEN, clock=clock)


@pytest.fixture
async def base_url(fake: FakeHumalike) -> AsyncIterator[str]:
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(session: aiohttp.ClientSession, base_url: str) -> HumalikeClient:
    return HumalikeClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=2.0)


def assert_token_hidden(error: BaseException, token: str = TOKEN) -> None:
    assert token not in str(error)
    assert token not in repr(error)


async def start(client: HumalikeClient) -> str:
    return (await client.start_enhancement(SKETCH, Grounding.OFF)).id


# --- Starting and polling ------------------------------------------------------------------------


async def test_start_returns_the_id_and_pending(client: HumalikeClient, fake: FakeHumalike) -> None:
    started = await client.start_enhancement(SKETCH, Grounding.WEB)

    assert started.status is JobStatus.PENDING
    assert [(s.job_id, s.body) for s in fake.starts] == [(started.id, {"persona": SKETCH, "grounding": "web"})]


async def test_poll_follows_the_job_from_pending_to_a_parsed_persona(
    client: HumalikeClient, fake: FakeHumalike, clock: ManualClock
) -> None:
    fake.script_enhancement(pending_for=1.0, running_for=5.0)
    job_id = await start(client)

    pending = await client.get_enhancement(job_id)
    clock.advance(1.0)
    running = await client.get_enhancement(job_id)
    clock.advance(5.0)
    done = await client.get_enhancement(job_id)

    assert pending is not None and pending.status is JobStatus.PENDING and pending.persona is None
    assert running is not None and running.status is JobStatus.RUNNING and running.persona is None
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.error is None
    assert done.id == job_id and done.grounding == "off"
    assert done.persona is not None
    assert done.persona.fields["name"] == "Sam Okafor"
    assert done.persona.fields["age"] == "30"
    assert done.persona.persona_id.startswith("enhanced-")
    assert done.persona.system_prompt and done.persona.markdown.startswith("# Sam Okafor")
    assert fake.polls[job_id] == 3


async def test_polling_an_unknown_id_returns_none(client: HumalikeClient) -> None:
    assert await client.get_enhancement(UNKNOWN_ID) is None


async def test_polling_a_malformed_id_is_a_validation_failure(client: HumalikeClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await client.get_enhancement("not-a-uuid")

    assert caught.value.status == 400
    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.message == "invalid id"


async def test_a_null_poll_body_returns_none_even_for_a_known_job(client: HumalikeClient, fake: FakeHumalike) -> None:
    job_id = await start(client)
    fake.fail_next_polls(Fault.null(), job_id=job_id)

    assert await client.get_enhancement(job_id) is None
    assert await client.get_enhancement(job_id) is not None


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        ("provider_error", "provider_error", None),
        (
            {"code": "grounding_timeout", "message": "research ran out of time"},
            "grounding_timeout",
            "research ran out of time",
        ),
    ],
    ids=["string", "object"],
)
async def test_a_failed_job_carries_its_failure_code(
    client: HumalikeClient, fake: FakeHumalike, clock: ManualClock, error: object, code: str, message: str | None
) -> None:
    fake.script_enhancement(pending_for=0.0, running_for=2.0, outcome=Fail(error))  # type: ignore[arg-type]
    job_id = await start(client)
    clock.advance(2.0)

    failed = await client.get_enhancement(job_id)

    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.persona is None
    assert failed.error is not None
    assert failed.error.code == code
    assert failed.error.message == message


async def test_an_empty_fields_map_and_an_8_kb_plain_sheet_parse(
    client: HumalikeClient, fake: FakeHumalike, clock: ManualClock
) -> None:
    odd = plain_text_persona()
    fake.script_enhancement(pending_for=0.0, running_for=0.0, outcome=Succeed(odd))
    job_id = await start(client)

    done = await client.get_enhancement(job_id)

    assert done is not None and done.persona is not None
    assert done.persona.fields == {}
    assert done.persona.system_prompt == done.persona.markdown == odd["markdown"]
    assert len(done.persona.markdown) > 7000
    assert not any(line.startswith("#") for line in done.persona.markdown.splitlines())
    assert done.persona.persona_id == odd["persona_id"]


async def test_unknown_extra_keys_are_ignored(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.extra_keys = {"queue_position": 3, "billing": {"credits": 12}}
    fake.extra_persona_keys = {"embedding": [0.1, 0.2], "locale": "en"}
    fake.script_enhancement(pending_for=0.0, running_for=0.0)

    started = await client.start_enhancement(SKETCH, Grounding.OFF)
    done = await client.get_enhancement(started.id)

    assert started.status is JobStatus.PENDING
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert done.persona is not None and done.persona.fields["main_champion"] == "Thresh"


async def test_whoami_returns_the_user_id(client: HumalikeClient, fake: FakeHumalike) -> None:
    assert await client.whoami() == "user_fake123"
    assert fake.starts == []


async def test_whoami_with_a_bad_token_is_unauthorized(session: aiohttp.ClientSession, base_url: str) -> None:
    client = HumalikeClient(session, base_url=base_url, token=SecretStr("revoked-token"), timeout=2.0)

    with pytest.raises(Unauthorized) as caught:
        await client.whoami()

    assert caught.value.code == "UNAUTHORIZED"
    assert caught.value.request_id
    assert_token_hidden(caught.value, "revoked-token")


async def test_whoami_with_a_token_not_allowed_here_is_forbidden(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_whoami(403)

    with pytest.raises(Forbidden) as caught:
        await client.whoami()

    assert caught.value.code == "forbidden"


# --- Refused starts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (401, Unauthorized, "UNAUTHORIZED"),
        (402, OutOfCredits, "PAYMENT_REQUIRED"),
        (403, Forbidden, "forbidden"),
    ],
)
async def test_a_refused_start_raises_a_final_error(
    client: HumalikeClient, fake: FakeHumalike, status: int, error_type: type[HumalikeError], code: str
) -> None:
    fake.fail_next_start(status)

    with pytest.raises(error_type) as caught:
        await start(client)

    assert caught.value.status == status
    assert caught.value.code == code
    assert caught.value.request_id
    assert fake.starts == []
    assert_token_hidden(caught.value)


async def test_422_with_loc_details_names_each_problem(client: HumalikeClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await client.start_enhancement("", Grounding.OFF)

    assert caught.value.status == 422
    assert caught.value.code == "validation_failed"
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("persona", "String should have at least 1 character")
    ]
    assert_token_hidden(caught.value)


async def test_422_with_field_details_names_each_problem(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_start(422, body=validation_error_body("persona", "must be at most 4000 characters"))

    with pytest.raises(ValidationFailed) as caught:
        await start(client)

    assert caught.value.code == "VALIDATION_ERROR"
    assert [(p.field, p.message) for p in caught.value.problems] == [("persona", "must be at most 4000 characters")]


async def test_502_is_service_unavailable_with_trace_and_request_ids(
    client: HumalikeClient, fake: FakeHumalike
) -> None:
    fake.fail_next_start(502)

    with pytest.raises(ServiceUnavailable) as caught:
        await start(client)

    assert caught.value.code == "UPSTREAM_ERROR"
    assert caught.value.trace_id is not None and caught.value.trace_id.startswith("trc_")
    assert caught.value.request_id == fake.requests[-1].request_id
    assert fake.starts == []
    assert_token_hidden(caught.value)


async def test_a_proxy_502_page_is_service_unavailable(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_start(502, body="<html><body>502 Bad Gateway</body></html>")

    with pytest.raises(ServiceUnavailable) as caught:
        await start(client)

    assert caught.value.status == 502
    assert caught.value.code is None and caught.value.request_id


# --- Failing polls -------------------------------------------------------------------------------


async def test_a_502_poll_is_service_unavailable_and_the_next_poll_works(
    client: HumalikeClient, fake: FakeHumalike
) -> None:
    job_id = await start(client)
    fake.fail_next_polls(502, job_id=job_id)

    with pytest.raises(ServiceUnavailable) as caught:
        await client.get_enhancement(job_id)

    assert caught.value.trace_id and caught.value.request_id
    assert await client.get_enhancement(job_id) is not None


async def test_429_honours_retry_after_seconds(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_polls(429, headers={"Retry-After": "7"})

    with pytest.raises(RateLimited) as caught:
        await client.get_enhancement(UNKNOWN_ID)

    assert caught.value.retry_after == 7
    assert_token_hidden(caught.value)


async def test_429_without_retry_after_has_no_wait(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_start(429)

    with pytest.raises(RateLimited) as caught:
        await start(client)

    assert caught.value.retry_after is None


async def test_429_with_an_http_date_retry_after(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_polls(429, headers={"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)})

    with pytest.raises(RateLimited) as caught:
        await client.get_enhancement(UNKNOWN_ID)

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone hours away from UTC, to catch dates read as local time."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:30 GMT", 30.0),  # obsolete RFC 850
        ("Wed Oct 21 07:28:30 2015", 30.0),  # obsolete asctime, which carries no zone: GMT by RFC 9110
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(far_from_utc: None, value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# --- No answer at all ----------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_refused_connection_is_a_network_error(session: aiohttp.ClientSession) -> None:
    client = HumalikeClient(session, base_url=f"http://127.0.0.1:{unused_port()}", token=SecretStr(TOKEN), timeout=2.0)

    with pytest.raises(NetworkError) as caught:
        await client.whoami()

    assert_token_hidden(caught.value)


async def test_a_hanging_poll_times_out_as_a_network_error(
    session: aiohttp.ClientSession, base_url: str, fake: FakeHumalike
) -> None:
    client = HumalikeClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=0.2)
    fake.fail_next_polls(Fault.hang())

    with pytest.raises(NetworkError) as caught:
        await client.get_enhancement(UNKNOWN_ID)

    assert "timed out" in str(caught.value)
    assert_token_hidden(caught.value)


async def test_starts_waiting_for_a_free_connection_are_not_timed_out(base_url: str, fake: FakeHumalike) -> None:
    # 300 starts at once over 10 connections, each answered 50 ms after it arrives: the last waits
    # about 1.5 s for a connection, longer than the timeout, yet is answered well within it once sent.
    fake.start_latency = 0.05
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=10)) as session:
        client = HumalikeClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=1.0)
        outcomes = await asyncio.gather(*(start(client) for _ in range(300)), return_exceptions=True)

    assert [outcome for outcome in outcomes if isinstance(outcome, BaseException)] == []
    assert sorted(outcomes) == sorted(started.job_id for started in fake.starts)  # type: ignore[type-var]
    assert fake.billed_starts == 300
    assert fake.most_starts_in_flight <= 10


async def test_a_released_hang_answers_normally(client: HumalikeClient, fake: FakeHumalike) -> None:
    fake.fail_next_polls(Fault.hang())
    poll = asyncio.ensure_future(client.get_enhancement(UNKNOWN_ID))
    await fake.wait_hanging()
    fake.release_hangs()

    assert await poll is None


async def test_a_dropped_connection_is_a_network_error(client: HumalikeClient, fake: FakeHumalike) -> None:
    job_id = await start(client)
    # aiohttp retries an idempotent GET once after a disconnect, so drop both tries.
    fake.fail_next_polls(Fault.drop(), times=2)

    with pytest.raises(NetworkError) as caught:
        await client.get_enhancement(job_id)

    assert fake.polls[job_id] == 2
    assert_token_hidden(caught.value)


async def test_a_single_dropped_poll_is_retried_by_aiohttp(client: HumalikeClient, fake: FakeHumalike) -> None:
    job_id = await start(client)
    fake.fail_next_polls(Fault.drop())

    polled = await client.get_enhancement(job_id)

    assert polled is not None and polled.id == job_id
    assert fake.polls[job_id] == 2


async def test_a_start_dropped_after_acceptance_is_a_network_error_yet_billed(
    client: HumalikeClient, fake: FakeHumalike
) -> None:
    fake.fail_next_start(Fault.drop(commit=True))

    with pytest.raises(NetworkError):
        await start(client)

    assert len(fake.starts) == 1  # POST is not retried by aiohttp: one job, one charge


# --- The fake's own contract where the client has no method (population, raw auth) ------------


async def test_the_fake_refuses_a_missing_token_with_the_documented_envelope(
    session: aiohttp.ClientSession, base_url: str
) -> None:
    async with session.get(f"{base_url}/v1/personas/repositories/Enhancement/by-id/{UNKNOWN_ID}") as response:
        assert response.status == 401
        assert response.headers["x-request-id"]
        assert await response.json() == {"error": {"code": "UNAUTHORIZED", "message": "Authentication failed."}}


async def test_the_fake_population_reports_progress_then_a_result(
    session: aiohttp.ClientSession, base_url: str, fake: FakeHumalike, clock: ManualClock
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    fake.script_population(pending_for=1.0, running_for=10.0)
    payload = {"prompt": "4 League players", "count": 4, "grounding": "web"}
    async with session.post(f"{base_url}/v1/personas/actions/generate", json=payload, headers=headers) as response:
        started = await response.json()
    poll_url = f"{base_url}/v1/personas/repositories/Population/by-id/{started['id']}"

    bodies = []
    for step in (0.0, 6.0, 5.0):
        clock.advance(step)
        async with session.get(poll_url, headers=headers) as response:
            bodies.append(await response.json())

    assert started["status"] == "pending"
    assert [b["status"] for b in bodies] == ["pending", "running", "succeeded"]
    assert bodies[1]["progress"] == {"produced": 2, "total": 4}
    assert len(bodies[2]["result"]["personas"]) == 4
    assert bodies[2]["result"]["blueprint"]["order"]
    assert [s.kind for s in fake.starts] == ["population"]


@pytest.mark.parametrize(
    ("payload", "status", "details"),
    [
        ({"prompt": "players", "count": 51}, 400, [{"field": "count", "message": "count must be at most 50"}]),
        (
            {"prompt": "", "count": 0},
            422,
            [
                {"loc": ["prompt"], "msg": "String should have at least 1 character", "type": "string_too_short"},
                {"loc": ["count"], "msg": "Input should be greater than or equal to 1", "type": "greater_than_equal"},
            ],
        ),
    ],
    ids=["over-cap", "empty-prompt-and-zero-count"],
)
async def test_the_fake_population_validates_its_request(
    session: aiohttp.ClientSession,
    base_url: str,
    fake: FakeHumalike,
    payload: dict[str, object],
    status: int,
    details: list[dict[str, object]],
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.post(f"{base_url}/v1/personas/actions/generate", json=payload, headers=headers) as response:
        assert response.status == status
        assert (await response.json())["error"]["details"] == details
    assert fake.starts == []
