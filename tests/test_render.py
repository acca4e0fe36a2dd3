"""What Discord shows for a job or a persona: always inside Discord's limits, the whole sheet always reachable."""

from __future__ import annotations

import dataclasses
from typing import Any

import discord
import pytest

from bot.enhance import failures
from bot.enhance.failures import Failure
from bot.enhance.render import (
    Progress,
    Reply,
    Subject,
    describe_duration,
    embed_size,
    render_failure,
    render_persona_card,
    render_progress,
)
from storage.models import Job, JobState, Persona
from tests.fakes.humalike import plain_text_persona, sam_persona

SAM_SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
CREATED_AT = 1_767_225_600.75
ALICE_ID = 111_222_333_444_555_666
PERSONA = Subject("Enhancing a persona")
UNFINISHED = [JobState.QUEUED, JobState.SENDING, JobState.PENDING, JobState.RUNNING, JobState.STALLED]


def make_job(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "id": 7,
        "guild_id": 1,
        "channel_id": 2,
        "user_id": ALICE_ID,
        "sketch": SAM_SKETCH,
        "grounding": "web",
        "requested_name": None,
        "state": JobState.RUNNING,
        "enhancement_id": "b06f6aae-bcf6-4157-b241-7e19c9182a70",
        "error_code": None,
        "error_detail": None,
        "application_id": None,
        "interaction_token": None,
        "token_expires_at": None,
        "message_id": None,
        "created_at": CREATED_AT,
        "started_at": CREATED_AT + 0.3,
        "finished_at": None,
        "deadline_at": CREATED_AT + 1800,
        "timed_out": False,
        "persona_id": None,
        "retry_of": None,
    }
    values.update(overrides)
    return Job(**values)


def make_persona(name: str, humalike: dict[str, Any], **overrides: Any) -> Persona:
    values: dict[str, Any] = {
        "id": 3,
        "guild_id": 1,
        "name": name,
        "creator_id": ALICE_ID,
        "enhancement_id": "b06f6aae-bcf6-4157-b241-7e19c9182a70",
        "humalike_persona_id": humalike["persona_id"],
        "fields": humalike["fields"],
        "system_prompt": humalike["system_prompt"],
        "markdown": humalike["markdown"],
        "sketch": SAM_SKETCH,
        "grounding": "off",
        "created_at": CREATED_AT + 40,
        "updated_at": CREATED_AT + 40,
    }
    values.update(overrides)
    return Persona(**values)


def sam() -> Persona:
    return make_persona("Sam Okafor", sam_persona())


def oversized() -> Persona:
    fields = {f"{letter}{'k' * 299}": letter * 5000 for letter in "abcdefghijklmnopqrstuvwxyz"}
    humalike = {"persona_id": "enhanced-0123456789ab", "fields": fields, "system_prompt": "p" * 5000}
    return make_persona("N" * 300, {**humalike, "markdown": "m" * 5000})


def plain_sheet() -> Persona:
    return make_persona("Unnamed persona", plain_text_persona(8192))


def assert_within_discord_limits(reply: Reply) -> None:
    embed = reply.embed
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25
    for field in embed.fields:
        assert 1 <= len(field.name or "") <= 256
        assert 1 <= len(field.value or "") <= 1024
    assert len(embed.footer.text or "") <= 2048
    assert len(embed.author.name or "") <= 256
    counted = (
        len(embed.title or "")
        + len(embed.description or "")
        + len(embed.footer.text or "")
        + len(embed.author.name or "")
        + sum(len(field.name or "") + len(field.value or "") for field in embed.fields)
    )
    assert embed_size(embed) == counted
    assert counted <= 6000
    assert len(reply.content or "") <= 2000


def fields_of(embed: discord.Embed) -> dict[str, str]:
    return {field.name or "": field.value or "" for field in embed.fields}


# --- Persona cards ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", [sam(), oversized(), plain_sheet()], ids=["sam", "oversized", "plain-8kB"])
def test_every_persona_card_stays_within_discord_limits(persona: Persona) -> None:
    reply = render_persona_card(persona, requested_by=ALICE_ID, note="“Sam” was taken, so it is saved as “Sam (2)”.")
    assert_within_discord_limits(reply)
    assert_within_discord_limits(render_persona_card(persona))


def test_a_sheet_that_fits_is_shown_whole_and_not_attached() -> None:
    persona = sam()
    reply = render_persona_card(persona, requested_by=ALICE_ID)

    assert reply.files == ()
    assert reply.embed.description == persona.markdown.strip()
    assert reply.embed.title == "Sam Okafor"
    assert "Saved **Sam Okafor**" in (reply.content or "")


def test_an_8_kb_plain_text_sheet_with_no_fields_is_attached_whole() -> None:
    persona = plain_sheet()
    reply = render_persona_card(persona, requested_by=ALICE_ID)

    [attached] = reply.files
    assert attached.filename.endswith(".md")
    assert attached.content == persona.markdown.encode("utf-8")
    assert persona.markdown not in (reply.embed.description or "")
    assert (reply.embed.description or "")[:200] == persona.markdown[:200]
    # With no fields, the card shows only what the bot itself knows.
    assert set(fields_of(reply.embed)) == {"Grounding", "Created", "Requested by"}


@pytest.mark.parametrize("size", [100, 1000, 1499, 1500, 1501, 2000, 4000, 4096, 4097, 6000, 8192, 20_000])
def test_the_sheet_is_attached_exactly_when_it_does_not_fit(size: int) -> None:
    sheet = ("Sam plays Thresh and shot-calls for a club team. " * 500)[:size]
    assert sheet == sheet.strip()
    persona = make_persona("Sam Okafor", {**sam_persona(), "markdown": sheet})

    reply = render_persona_card(persona, requested_by=ALICE_ID)

    assert_within_discord_limits(reply)
    shown_whole = reply.embed.description == sheet
    if shown_whole:
        assert reply.files == ()
    else:
        [attached] = reply.files
        assert attached.filename.endswith(".md")
        assert attached.content == sheet.encode("utf-8")


def test_the_system_prompt_stands_in_for_an_empty_sheet() -> None:
    prompt = " ".join(["You are Sam Okafor, a warm-but-sharp Thresh support."] * 60)
    persona = make_persona("Sam Okafor", {**sam_persona(), "markdown": "", "system_prompt": prompt})

    reply = render_persona_card(persona)

    [attached] = reply.files
    assert attached.content == prompt.encode("utf-8")
    assert (reply.embed.description or "").startswith("You are Sam Okafor")


def test_the_attached_sheet_is_byte_for_byte_what_humalike_sent() -> None:
    markdown = "# Sam Okafor\n\n" + "Sam plays Thresh and shot-calls for a club team.\n" * 60
    persona = make_persona("Sam Okafor", {**sam_persona(), "markdown": markdown})

    [attached] = render_persona_card(persona).files

    assert attached.content == markdown.encode("utf-8")


def test_the_most_telling_fields_come_first_and_the_name_is_not_repeated() -> None:
    fields = {
        "hobby": "cooking on weekends",
        "favourite_food": "jollof rice",
        "name": "Sam Okafor",
        "full_name": "Samuel Okafor",
        "backstory": "Fell for support after carrying a friend group.",
        "main_champion": "Thresh",
        "Age": "30",
        "main_role": "support",
    }
    persona = make_persona("Sam Okafor", {**sam_persona(), "fields": fields})

    embed = render_persona_card(persona, requested_by=ALICE_ID).embed
    labels = [field.name for field in embed.fields]
    values = [field.value for field in embed.fields]

    assert labels[:4] == ["Age", "Main role", "Main champion", "Backstory"]
    assert labels[4:6] == ["Hobby", "Favourite food"]
    assert "Sam Okafor" not in values
    assert "Samuel Okafor" not in values
    assert not any(label.lower() in ("name", "full name") for label in labels)


def test_the_card_of_an_oversized_persona_still_shows_its_first_fields_and_its_name() -> None:
    persona = oversized()
    reply = render_persona_card(persona, requested_by=ALICE_ID)

    assert reply.embed.title is not None and reply.embed.title.startswith("N" * 200)
    assert reply.embed.fields[0].value.startswith("a" * 100)
    [attached] = reply.files
    assert attached.content == persona.markdown.encode("utf-8")


def stored_before_import_limits() -> Persona:
    """What an import could store before its fields were bounded: every part at its worst at once."""
    fields = {f"{letter}{'k' * 299}": letter * 5000 for letter in "abcdef"}
    humalike = {"persona_id": "i" * 5000, "fields": fields, "system_prompt": "p" * 5000, "markdown": "m" * 5000}
    return make_persona("N" * 300, humalike, grounding="g" * 5000, origin="o" * 5000)


def test_a_persona_card_stays_within_discords_limits_whatever_is_stored() -> None:
    reply = render_persona_card(stored_before_import_limits(), requested_by=ALICE_ID, note="n" * 5000)

    assert_within_discord_limits(reply)
    assert fields_of(reply.embed)["Grounding"].startswith("`ggg")


def test_a_persona_made_on_humalike_says_so_with_its_id() -> None:
    persona = sam()

    assert render_persona_card(persona).embed.footer.text == f"Humalike persona {persona.humalike_persona_id}"


def test_an_imported_persona_says_where_it_came_from_instead_of_humalike() -> None:
    origin = "Imported from a Character Card V2 (SillyTavern) by Rook"
    persona = make_persona("Mira", sam_persona(), enhancement_id=None, humalike_persona_id=None, origin=origin)

    assert render_persona_card(persona).embed.footer.text == origin


# --- Progress and failure replies ---------------------------------------------------------------


@pytest.mark.parametrize("state", UNFINISHED)
def test_progress_shows_grounding_start_time_and_who_asked(state: JobState) -> None:
    job = make_job(state=state)
    reply = render_progress(job, PERSONA, Progress(state=state))

    fields = fields_of(reply.embed)
    assert "web" in fields["Grounding"]
    assert fields["Started"] == "<t:1767225600:R>"
    assert fields["Requested by"] == f"<@{ALICE_ID}>"
    assert SAM_SKETCH in (reply.embed.description or "")
    assert reply.retry_job_id is None
    assert_within_discord_limits(reply)


def test_each_progress_state_reads_differently() -> None:
    expected = {
        JobState.QUEUED: "Queued",
        JobState.SENDING: "Sending",
        JobState.PENDING: "Pending",
        JobState.RUNNING: "Running",
        JobState.STALLED: "Paused",
    }
    for state, word in expected.items():
        description = render_progress(make_job(state=state), PERSONA, Progress(state=state)).embed.description or ""
        assert word in description.splitlines()[0]
    replies = [render_progress(make_job(), PERSONA, Progress(state=state)) for state in UNFINISHED]
    descriptions = {reply.embed.description for reply in replies}
    assert len(descriptions) == len(UNFINISHED)


def test_a_timed_out_job_says_so() -> None:
    job = make_job(timed_out=True)
    late = render_progress(job, PERSONA, Progress(state=JobState.RUNNING, timed_out=True, deadline_seconds=45 * 60))
    on_time = render_progress(job, PERSONA, Progress(state=JobState.RUNNING))

    assert "longer than 45 minutes" in (late.embed.description or "")
    assert "longer than" not in (on_time.embed.description or "")
    assert late.embed.colour != on_time.embed.colour


@pytest.mark.parametrize("state", UNFINISHED)
def test_progress_for_a_6000_character_sketch_stays_within_limits(state: JobState) -> None:
    job = make_job(sketch="**Sam** " * 750, state=state)
    progress = Progress(state=state, trouble=True, timed_out=True, extra=["One more thing."])
    assert_within_discord_limits(render_progress(job, PERSONA, progress))


@pytest.mark.parametrize(
    "failure",
    [
        Failure("provider_error"),
        Failure("some_new_category", "the model provider timed out"),
        Failure(failures.UNAVAILABLE, "trc_0123456789abcdef01234567"),
        Failure(failures.UNAUTHORIZED),
        Failure(failures.OUT_OF_CREDITS),
        Failure(failures.FORBIDDEN),
        Failure(failures.INTERRUPTED),
        Failure(failures.LOST),
    ],
    ids=lambda failure: failure.code,
)
def test_a_retryable_failure_offers_retry(failure: Failure) -> None:
    job = make_job(state=JobState.FAILED)
    reply = render_failure(job, PERSONA, failure)

    assert reply.retry_job_id == job.id
    fields = fields_of(reply.embed)
    assert fields["Requested by"] == f"<@{ALICE_ID}>"
    assert fields["Started"] == "<t:1767225600:R>"
    assert_within_discord_limits(reply)


def test_a_failure_that_retrying_cannot_fix_offers_no_retry() -> None:
    job = make_job(state=JobState.FAILED)
    reply = render_failure(job, PERSONA, Failure(failures.INVALID_SKETCH, "String should have at least 1 character"))

    assert reply.retry_job_id is None
    assert "String should have at least 1 character" in (reply.embed.description or "")
    assert_within_discord_limits(reply)


@pytest.mark.parametrize("code", ["provider_error", failures.INVALID_SKETCH])
def test_a_failure_with_a_long_humalike_message_stays_within_limits(code: str) -> None:
    job = make_job(sketch="Sam " * 1500, state=JobState.FAILED)
    assert_within_discord_limits(render_failure(job, PERSONA, Failure(code, "The provider said: " + "x" * 5000)))


def test_replies_that_differ_have_different_signatures() -> None:
    job = make_job()
    running = render_progress(job, PERSONA, Progress(state=JobState.RUNNING))
    same = render_progress(dataclasses.replace(job), PERSONA, Progress(state=JobState.RUNNING))
    trouble = render_progress(job, PERSONA, Progress(state=JobState.RUNNING, trouble=True))

    assert running.signature() == same.signature()
    assert running.signature() != trouble.signature()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(90, "90 seconds"), (120, "2 minutes"), (1800, "30 minutes"), (7200, "2 hours"), (9000, "2 hours 30 minutes")],
)
def test_durations_read_as_words(seconds: float, words: str) -> None:
    assert describe_duration(seconds) == words
