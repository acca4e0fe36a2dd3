"""/enhance over the wire: `python -m bot` as its own process, real sockets, local fakes.

The bot logs in to the Discord stand-in, syncs its commands and connects to the gateway; a
member's `/enhance` arrives as INTERACTION_CREATE, is answered through the callback route and
edited through the interaction token until the persona card shows. A `kill -9` mid-job and a
restart, a dropped gateway connection, 429s and slow answers must change nothing a member sees
and never start or save a job twice. Every body the bot sends must follow Discord's schema.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable

from tests.fakes.humalike import Succeed, plain_text_persona
from tests.wire.harness import WireHarness
from tests.wire.standin import InteractionRecord

SAM_SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
MIRA_SKETCH = "Mira is a jungle main who shot-calls every dragon. Blunt, funny."
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
TOKEN_EDIT = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
GLOBAL_SYNC = "/applications/{application_id}/commands"


def shows_card(wire: WireHarness, command: InteractionRecord, name: str = "Sam Okafor") -> bool:
    """The reply a member sees is the finished persona card."""
    reply = wire.reply(command)
    return (
        reply is not None
        and reply.embed is not None
        and reply.embed.get("title") == name
        and reply.content.startswith("✅ Saved")
    )


async def job_started(wire: WireHarness) -> bool:
    """The bot has recorded Humalike's acceptance of its one job."""
    return bool(await wire.scalar("SELECT COUNT(*) FROM jobs WHERE enhancement_id IS NOT NULL"))


async def test_enhance_is_answered_at_once_then_edited_to_the_persona_card(wire: WireHarness) -> None:
    standin = wire.standin
    logged_in = [(call.method, call.template) for call in standin.calls if call.status == 200]
    assert ("GET", "/users/@me") in logged_in
    assert ("GET", "/oauth2/applications/@me") in logged_in
    assert ("GET", "/gateway/bot") in logged_in
    assert ("PUT", GLOBAL_SYNC) in logged_in
    enhance = standin.command("enhance")
    assert enhance is not None
    assert [option["name"] for option in enhance["options"]] == ["sketch", "grounding", "name"]

    command = await wire.enhance(SAM_SKETCH)

    await wire.eventually(lambda: command.answered, "the interaction callback")
    assert command.callback_type == 4  # a message at once, not a defer
    reply = wire.reply(command)
    assert reply is not None and not reply.ephemeral
    assert "Queued" in reply.versions[0].text() and SAM_SKETCH in reply.versions[0].text()

    await wire.eventually(lambda: shows_card(wire, command), "the persona card")
    assert "Thresh" in reply.text()
    assert f"<@{wire.alice.id}>" in reply.text()  # who asked
    # One reply, edited in place through the interaction token; each edit showed something new.
    assert standin.channel_messages(wire.channel) == [reply]
    assert [call.status for call in standin.calls_to("PATCH", TOKEN_EDIT)] == [200] * reply.edits
    shown = [(version.content, version.embeds) for version in reply.versions]
    assert all(before != after for before, after in itertools.pairwise(shown))
    assert wire.standin.heartbeats >= 1  # acked, so the bot never saw a zombie connection
    assert wire.humalike.billed_starts == 1
    personas = await wire.rows("SELECT name, creator_id, sketch, grounding FROM personas")
    assert personas == [("Sam Okafor", wire.alice.id, SAM_SKETCH, "off")]
    assert wire.wire_problems() == []


async def test_enhance_without_a_sketch_opens_a_form_whose_sketch_is_enhanced(wire: WireHarness) -> None:
    command = await wire.standin.send_command("enhance", {}, user=wire.alice, channel=wire.channel)

    await wire.eventually(lambda: command.answered, "the interaction callback")
    assert command.callback_type == 9 and command.modal is not None  # a form, not a message
    inputs = {field["label"]: field for row in command.modal["components"] for field in row["components"]}
    assert inputs["Sketch"]["max_length"] == 4000
    submitted = await wire.standin.submit_modal(command, {inputs["Sketch"]["custom_id"]: SAM_SKETCH})

    await wire.eventually(lambda: shows_card(wire, submitted), "the persona card")
    assert await wire.rows("SELECT sketch FROM personas") == [(SAM_SKETCH,)]
    assert wire.wire_problems() == []


async def test_kill_9_mid_job_and_a_restart_finish_it_with_one_start_and_one_save(wire: WireHarness) -> None:
    wire.humalike.script_enhancement(pending_for=0.5, running_for=2.5)
    command = await wire.enhance(SAM_SKETCH)
    await wire.eventually(lambda: command.answered, "the interaction callback")
    await wire.eventually(lambda: job_started(wire), "the job to be recorded as started on Humalike")
    humalike_job = wire.humalike.starts[0].job_id
    assert wire.humalike.status(humalike_job) != "succeeded", "the job must still be running when the bot dies"

    await wire.kill()
    await wire.restart()

    await wire.eventually(lambda: shows_card(wire, command), "the persona card after the restart")
    assert wire.humalike.billed_starts == 1
    assert await wire.scalar("SELECT COUNT(*) FROM personas") == 1
    assert await wire.rows("SELECT state, persona_id IS NOT NULL FROM jobs") == [("succeeded", 1)]
    # The restarted bot edited the same reply, through the same interaction token.
    assert wire.standin.channel_messages(wire.channel) == [wire.reply(command)]
    assert wire.standin.gateway_count("identify") == 2
    assert wire.wire_problems() == []


async def test_kill_9_in_the_middle_of_a_burst_loses_no_job_and_starts_none_twice(wire: WireHarness) -> None:
    members = [wire.standin.add_member(wire.guild, f"player-{index}") for index in range(20)]
    sketches = [f"Player{index} is a support main. Friendly." for index in range(20)]
    for _ in sketches:
        wire.humalike.script_enhancement(pending_for=0.5, running_for=3.0)
    commands = await asyncio.gather(
        *(wire.enhance(sketch, user=member) for sketch, member in zip(sketches, members, strict=True))
    )
    await wire.eventually(lambda: len(wire.humalike.starts) >= 5, "the burst's first starts on Humalike")

    await wire.kill()  # writes in flight, some jobs recorded but not started, some started but not marked
    await wire.restart()

    await wire.eventually(all_jobs_ended(wire, len(commands)), "every recorded job to end")
    started = Counter(start.body["persona"] for start in wire.humalike.starts)
    assert started and max(started.values()) == 1, "no sketch was started twice"
    states = Counter(state for (state,) in await wire.rows("SELECT state FROM jobs"))
    failed_codes = {code for (code,) in await wire.rows("SELECT error_code FROM jobs WHERE state = 'failed'")}
    assert set(states) <= {"succeeded", "failed"} and failed_codes <= {"interrupted"}
    # Every job the bot recorded as started was followed to its end and saved, once.
    assert states["succeeded"] == await wire.scalar("SELECT COUNT(*) FROM jobs WHERE enhancement_id IS NOT NULL")
    assert await wire.scalar("SELECT COUNT(*) FROM personas") == states["succeeded"]
    assert await wire.scalar("SELECT COUNT(DISTINCT enhancement_id) FROM personas") == states["succeeded"]
    # Every member who was answered sees how their job ended: a card, or why it stopped.
    for command in commands:
        reply = wire.reply(command)
        if command.answered and reply is not None and reply.embed is not None:
            await wire.eventually(
                lambda command=command: shows_an_end(wire, command),
                f"the end of {command.id}'s job shown",
            )
    assert wire.wire_problems() == []


def shows_an_end(wire: WireHarness, command: InteractionRecord) -> bool:
    """The reply shows the persona card or why the job stopped."""
    reply = wire.reply(command)
    title = (reply.embed or {}).get("title", "") if reply is not None else ""
    return title.startswith(("❌", "Sam Okafor"))


def all_jobs_ended(wire: WireHarness, at_most: int) -> Callable[[], Awaitable[bool]]:
    async def ended() -> bool:
        unfinished = await wire.scalar("SELECT COUNT(*) FROM jobs WHERE state NOT IN ('succeeded', 'failed')")
        return unfinished == 0 and await wire.scalar("SELECT COUNT(*) FROM jobs") <= at_most

    return ended


async def test_a_gateway_drop_mid_job_is_resumed_and_the_job_still_finishes(wire: WireHarness) -> None:
    standin = wire.standin
    command = await wire.enhance(SAM_SKETCH)
    await wire.eventually(lambda: command.answered, "the interaction callback")
    await wire.eventually(lambda: job_started(wire), "the job to be recorded as started on Humalike")
    session = standin.session_id

    await standin.drop_gateway()
    # Discord keeps the session's events while it is away and replays them on RESUME.
    second = await wire.enhance(MIRA_SKETCH, user=wire.bob)
    assert second.dispatched_at is None

    await wire.eventually(lambda: standin.gateway_count("resumed") == 1 and standin.connected, "RESUME")
    assert standin.session_id == session
    assert standin.gateway_count("identify") == 1  # resumed, not a new session
    await wire.eventually(lambda: second.answered, "the callback of the command sent while disconnected")
    await wire.eventually(lambda: shows_card(wire, command), "the persona card after the drop")
    await wire.eventually(lambda: shows_card(wire, second, "Sam Okafor (2)"), "the second persona card")
    assert wire.humalike.billed_starts == 2
    assert await wire.scalar("SELECT COUNT(*) FROM personas") == 2
    assert wire.wire_problems() == []


async def test_discord_429s_and_slow_answers_are_waited_out(wire: WireHarness) -> None:
    standin = wire.standin
    standin.rate_limit("PATCH", TOKEN_EDIT, times=2, retry_after=0.3)
    standin.slow(0.5, method="POST", template=CALLBACK)

    command = await wire.enhance(SAM_SKETCH)

    await wire.eventually(lambda: shows_card(wire, command), "the persona card")
    statuses = [call.status for call in standin.calls_to("PATCH", TOKEN_EDIT)]
    assert statuses[:3] == [429, 429, 200]
    reply = wire.reply(command)
    assert reply is not None and statuses.count(200) == reply.edits
    assert wire.humalike.billed_starts == 1
    assert wire.wire_problems() == []


async def test_a_sheet_too_long_for_the_card_arrives_as_a_markdown_file(wire: WireHarness) -> None:
    persona = plain_text_persona(8192)
    wire.humalike.script_enhancement(pending_for=0.5, running_for=1.5, outcome=Succeed(persona=persona))

    command = await wire.enhance(SAM_SKETCH)

    await wire.eventually(lambda: shows_card(wire, command, "Sam"), "the persona card")
    reply = wire.reply(command)
    assert reply is not None and len(reply.attachments) == 1
    sheet = reply.attachments[0]
    assert sheet.filename.endswith(".md")
    assert sheet.data.decode() == persona["markdown"]
    uploads = [call for call in wire.standin.calls_to("PATCH", TOKEN_EDIT) if call.files]
    assert len(uploads) == 1  # sent once, as multipart with payload_json, and checked like any body
    assert wire.wire_problems() == []
