"""/enhance from the command to the saved persona, as a member sees it."""

from __future__ import annotations

import os

import pytest

from tests.conftest import SAM_SKETCH, World


def status_of(message) -> str:  # type: ignore[no-untyped-def]
    return message.embeds[0].description.splitlines()[0]


async def test_enhance_answers_at_once_then_follows_the_job_to_a_saved_persona(world: World) -> None:
    result = await world.enhance()

    assert not result.ephemeral
    reply_id = result.response.id
    assert "Pending" in status_of(world.message(reply_id))
    assert world.fake.billed_starts == 1
    assert world.fake.starts[0].body == {"persona": SAM_SKETCH, "grounding": "off"}

    await world.env.advance_time(3)
    assert "Running" in status_of(world.message(reply_id))

    await world.env.advance_time(10)
    card = world.message(reply_id)
    assert card.embeds[0].title == "Sam Okafor"
    assert "Saved **Sam Okafor**" in card.content

    [persona] = await world.personas()
    assert persona["name"] == "Sam Okafor"
    assert persona["sketch"] == SAM_SKETCH
    assert persona["grounding"] == "off"
    assert persona["guild_id"] == world.guild.id
    assert persona["creator_id"] == world.alice.id
    assert persona["fields"]["main_champion"] == "Thresh"
    assert persona["system_prompt"].startswith("You are Sam Okafor")
    assert persona["markdown"].startswith("# Sam Okafor")
    assert persona["enhancement_id"] == world.fake.starts[0].job_id
    assert world.fake.billed_starts == 1


def reply_edits(world: World, message_id: int) -> list[dict]:
    """Every edit the bot made to one message, by any route."""
    edits = []
    for request in world.env.http_requests:
        if request.method == "PATCH" and str(message_id) in request.path:
            edits.append(request.json or {})
    return edits


async def test_reply_shows_grounding_start_time_and_who_asked(world: World) -> None:
    result = await world.enhance(grounding="web")

    embed = world.message(result.response.id).embeds[0]
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Grounding"] == "`web`"
    assert fields["Started"].startswith("<t:") and fields["Started"].endswith(":R>")
    assert fields["Requested by"] == world.alice.mention
    assert world.fake.starts[0].body["grounding"] == "web"


async def test_reply_is_edited_only_when_the_status_changes(world: World) -> None:
    world.fake.script_enhancement(pending_for=1, running_for=60)
    result = await world.enhance()
    reply_id = result.response.id

    await world.env.advance_time(50)  # many polls, all "running"

    assert world.fake.polls[world.fake.starts[0].job_id] > 3
    assert len(reply_edits(world, reply_id)) == 2  # pending, then running: nothing else changed


async def test_modal_takes_a_long_sketch_when_the_option_is_left_out(world: World) -> None:
    long_sketch = "Sam is a support main who writes long notes. " * 80  # ~3,700 characters
    shown = await world.alice.slash(world.channel, "enhance", grounding="research")
    assert shown.modal is not None

    submitted = await world.alice.submit_modal(shown, {"sketch": long_sketch, "name": "Sam the Scribe"})

    assert world.fake.starts[0].body == {"persona": long_sketch.strip(), "grounding": "research"}
    await world.env.advance_time(120)
    card = world.message(submitted.response.id)
    assert card.embeds[0].title == "Sam the Scribe"
    [persona] = await world.personas()
    assert persona["name"] == "Sam the Scribe"


async def test_a_sheet_too_long_for_the_card_is_attached_whole(world: World) -> None:
    from tests.fakes.humalike import Succeed, plain_text_persona

    odd = plain_text_persona()
    world.fake.script_enhancement(outcome=Succeed(persona=odd))
    result = await world.enhance()
    await world.env.advance_time(15)

    card = world.message(result.response.id)
    assert card.embeds[0].title == "Sam"  # no fields.name, no heading: from the sketch
    [attachment] = card.attachments
    assert attachment.filename == "sam.md"
    assert (await attachment.read()).decode() == odd["markdown"].strip()
    [persona] = await world.personas()
    assert persona["fields"] == {}
    assert persona["markdown"] == odd["markdown"]


async def test_the_name_option_wins_and_a_taken_name_is_refused_before_any_start(world: World) -> None:
    await world.enhance(name="Thresh Enjoyer")
    await world.env.advance_time(15)

    again = await world.enhance(member=world.bob, name="thresh enjoyer")

    assert again.ephemeral
    assert "already exists" in again.response.content
    assert len(world.refusals()) == 1
    assert world.fake.billed_starts == 1
    [persona] = await world.personas()
    assert persona["name"] == "Thresh Enjoyer"


async def test_inferred_names_that_clash_get_a_number(world: World) -> None:
    await world.enhance()
    await world.enhance(member=world.bob)
    await world.env.advance_time(15)

    personas = {persona["id"]: persona["name"] for persona in await world.personas()}
    assert sorted(personas.values()) == ["Sam Okafor", "Sam Okafor (2)"]
    # Which of the two saves lands first is the database's to decide (on PostgreSQL, either).
    for job in await world.jobs():
        card = world.message(job["message_id"])
        numbered = personas[job["persona_id"]].endswith("(2)")
        assert ("already taken" in card.content) == numbered


async def test_unknown_keys_in_humalike_answers_are_ignored(world: World) -> None:
    world.fake.extra_keys = {"created_by": "someone", "usage": {"credits": 3}, "progress": None}
    world.fake.extra_persona_keys = {"avatar": None, "version": 2}
    result = await world.enhance()

    await world.env.advance_time(15)

    assert world.message(result.response.id).embeds[0].title == "Sam Okafor"
    assert len(await world.personas()) == 1


@pytest.mark.skipif(os.environ.get("TEST_DATABASE") == "postgresql", reason="reads SQLite's data_version")
async def test_polls_that_change_nothing_write_nothing_to_the_database(world: World) -> None:
    from storage.sqlite import SqliteDatabase

    world.fake.script_enhancement(pending_for=1, running_for=120)
    await world.enhance()
    await world.env.advance_time(3)  # now running: that change is written
    observer = await SqliteDatabase.open(world.settings.database_path)
    try:
        # data_version moves whenever another connection commits a change to the file.
        before = (await observer.fetch_one("PRAGMA data_version"))[0]
        polls_before = world.fake.polls[world.fake.starts[0].job_id]
        await world.env.advance_time(60)
        after = (await observer.fetch_one("PRAGMA data_version"))[0]
    finally:
        await observer.close()

    assert world.fake.polls[world.fake.starts[0].job_id] - polls_before >= 10
    assert after == before
