"""What a user is told when Humalike refuses a start or fails a job: what happened and what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.enhance import failures
from bot.enhance.failures import Failure, FailureText, describe, failure_for_start_error
from bot.humalike import errors
from bot.humalike.client import HumalikeClient
from bot.humalike.models import Grounding
from tests.fakes.humalike import FakeHumalike, Fault, serve, validation_error_body, validation_failed_body

TOKEN = "hl_live_7a1d2f9c4b8e0536"
SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
TRACE_ID = "trc_5f0c1d2e3a4b5c6d7e8f9a0b"


def text_of(error: errors.HumalikeError) -> FailureText:
    return describe(failure_for_start_error(error))


def everything_said(text: FailureText) -> str:
    return f"{text.title}\n{text.explanation}"


# --- Refused starts -----------------------------------------------------------------------------


def test_402_says_out_of_credits_and_that_nothing_was_charged() -> None:
    text = text_of(errors.OutOfCredits("insufficient credits", status=402, code="PAYMENT_REQUIRED"))

    assert "out of humalike credits" in text.title.lower()
    assert "nothing was started or charged" in text.explanation
    assert text.retryable


def test_401_says_an_admin_must_fix_the_token() -> None:
    text = text_of(errors.Unauthorized("Authentication failed.", status=401, code="UNAUTHORIZED"))

    assert "token" in text.title.lower()
    assert "admin" in text.explanation
    assert "HUMALIKE_TOKEN" in text.explanation
    assert "sketch" not in text.explanation.lower(), "the user's sketch is not the problem"


def test_403_says_whoever_runs_the_bot_must_fix_the_token() -> None:
    text = text_of(errors.Forbidden("not permitted", status=403, code="forbidden"))

    assert "token" in text.title.lower()
    assert "whoever runs the bot" in text.explanation.lower()
    assert "token" in text.explanation
    assert "sketch" not in text.explanation.lower(), "the user's sketch is not the problem"


def test_401_and_403_read_differently() -> None:
    unauthorized = text_of(errors.Unauthorized("x", status=401))
    forbidden = text_of(errors.Forbidden("x", status=403))
    assert unauthorized.title != forbidden.title


def test_422_shows_humalikes_field_message_and_cannot_be_retried() -> None:
    error = errors.ValidationFailed(
        "request validation failed",
        status=422,
        code="validation_failed",
        problems=[errors.FieldProblem("persona", "String should have at least 1 character")],
    )

    failure = failure_for_start_error(error)
    text = describe(failure)

    assert failure.code == failures.INVALID_SKETCH
    assert "String should have at least 1 character" in text.explanation
    assert not text.retryable


def test_a_validation_failure_without_field_messages_shows_the_summary() -> None:
    error = errors.ValidationFailed("The request body is invalid.", status=400, code="VALIDATION_ERROR")
    text = text_of(error)
    assert "The request body is invalid." in text.explanation
    assert not text.retryable


def test_several_field_messages_are_all_shown() -> None:
    error = errors.ValidationFailed(
        "request validation failed",
        status=422,
        problems=[errors.FieldProblem("persona", "too short"), errors.FieldProblem("grounding", "not allowed")],
    )
    text = text_of(error)
    assert "too short" in text.explanation
    assert "not allowed" in text.explanation


def test_502_shows_the_trace_id_and_says_nothing_was_started() -> None:
    error = errors.ServiceUnavailable("upstream down", status=502, code="UPSTREAM_ERROR", trace_id=TRACE_ID)

    text = text_of(error)

    assert TRACE_ID in text.explanation
    assert "nothing was started" in text.explanation
    assert text.retryable


@pytest.mark.parametrize(
    "error",
    [
        errors.ServiceUnavailable("internal", status=500, code="INTERNAL_ERROR"),
        errors.RateLimited("slow down", status=429, retry_after=30.0),
    ],
    ids=["500", "429"],
)
def test_an_answered_refusal_of_the_moment_can_be_retried(error: errors.HumalikeError) -> None:
    text = text_of(error)
    assert text.retryable
    assert "Retry" in text.explanation


@pytest.mark.parametrize(
    "error",
    [
        errors.NetworkError("POST /v1/personas/actions/enhance timed out"),
        errors.UnexpectedResponse("answered with a body that is not JSON", status=200),
    ],
    ids=["timeout", "unreadable-200"],
)
def test_an_unanswered_start_does_not_claim_nothing_was_started(error: errors.HumalikeError) -> None:
    text = text_of(error)
    assert "nothing was started" not in text.explanation
    assert "did not accept" not in text.explanation


# --- Jobs that failed on Humalike's side --------------------------------------------------------


@pytest.mark.parametrize("code", ["provider_error", "timeout", "content_policy_maybe", "unknown_error"])
def test_a_humalike_job_failure_category_can_be_retried(code: str) -> None:
    text = describe(Failure(code))

    assert text.retryable
    assert f"`{code}`" in text.explanation
    assert "Retry" in text.explanation
    assert "not charged" in text.explanation


def test_a_job_failure_message_from_humalike_is_shown() -> None:
    text = describe(Failure("provider_error", "the model provider timed out"))
    assert "the model provider timed out" in text.explanation


@pytest.mark.parametrize("code", [failures.INTERRUPTED, failures.LOST])
def test_jobs_the_bot_lost_track_of_can_be_retried(code: str) -> None:
    text = describe(Failure(code))
    assert text.retryable
    assert "Retry" in text.explanation


def test_every_failure_reads_differently() -> None:
    codes = [
        failures.UNAUTHORIZED,
        failures.OUT_OF_CREDITS,
        failures.FORBIDDEN,
        failures.INVALID_SKETCH,
        failures.UNAVAILABLE,
        failures.INTERRUPTED,
        failures.LOST,
        "provider_error",
    ]
    titles = {describe(Failure(code)).title for code in codes}
    assert len(titles) == len(codes)


# --- The token never shows ----------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeHumalike, HumalikeClient]]:
    fake = FakeHumalike(token=TOKEN)
    async with serve(fake) as base_url, aiohttp.ClientSession() as session:
        yield fake, HumalikeClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=2.0)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, None),
        (402, None),
        (403, None),
        (422, validation_failed_body()),
        (400, validation_error_body("persona", "must not be empty")),
        (429, None),
        (500, None),
        (502, None),
        (503, "<html><body>Bad gateway</body></html>"),
    ],
)
async def test_no_failure_text_contains_the_token(
    client: tuple[FakeHumalike, HumalikeClient], status: int, body: object
) -> None:
    fake, humalike = client
    fake.fail_next_start(Fault.error(status, body))

    with pytest.raises(errors.HumalikeError) as raised:
        await humalike.start_enhancement(SKETCH, Grounding.OFF)

    failure = failure_for_start_error(raised.value)
    text = describe(failure)
    assert TOKEN not in everything_said(text)
    assert TOKEN not in (failure.detail or "")
    assert TOKEN not in str(raised.value)
    assert fake.billed_starts == 0


async def test_the_trace_id_of_a_real_502_reaches_the_user(client: tuple[FakeHumalike, HumalikeClient]) -> None:
    fake, humalike = client
    fake.fail_next_start(502)

    with pytest.raises(errors.ServiceUnavailable) as raised:
        await humalike.start_enhancement(SKETCH, Grounding.OFF)

    trace = raised.value.trace_id
    assert trace is not None and trace.startswith("trc_")
    assert trace in text_of(raised.value).explanation


async def test_a_wrong_token_is_never_echoed(client: tuple[FakeHumalike, HumalikeClient]) -> None:
    fake, _ = client
    wrong = "hl_live_wrong_0000000000"
    async with aiohttp.ClientSession() as session:
        humalike = HumalikeClient(session, base_url=fake.base_url or "", token=SecretStr(wrong), timeout=2.0)
        with pytest.raises(errors.Unauthorized) as raised:
            await humalike.start_enhancement(SKETCH, Grounding.OFF)

    said = everything_said(text_of(raised.value))
    assert wrong not in said
    assert TOKEN not in said
