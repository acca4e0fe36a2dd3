"""/roleplay over the wire: a persona saved through /enhance speaks through a channel webhook.

The real bot process, the Discord stand-in and the fake chat model on loopback: `/roleplay as`
starts the persona, a member's message naming it arrives as MESSAGE_CREATE, and the reply is
streamed through the channel's webhook under the persona's name, pinging nobody, edited at most
once a second while it streams, and ending with exactly the model's text.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.wire.harness import WireHarness

PERSONA = "Sam Okafor"
SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
WEBHOOK_POST = "/webhooks/{webhook_id}/{webhook_token}"
WEBHOOK_EDIT = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
GREETING = "Hey all, Sam here."
# About 2.2 s of streaming (28 chunks, 80 ms apart): long enough for edits while it streams.
REPLY = (
    "Hold the hook until they blink, then lantern your carry out of trouble. Wait for the flash, "
    "wait for the dash, and only then commit. Ward the river brush first; @everyone forgets that."
)


def persona_messages(wire: WireHarness) -> list:
    return [m for m in wire.standin.channel_messages(wire.channel) if m.webhook_id is not None and not m.interaction_id]


async def test_a_persona_saved_by_enhance_streams_its_reply_through_a_webhook(wire: WireHarness) -> None:
    wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
    command = await wire.enhance(SKETCH)
    await wire.eventually(
        lambda: bool((reply := wire.reply(command)) and reply.embed and reply.embed.get("title") == PERSONA),
        "the persona card",
    )
    wire.chat.script_reply(GREETING)
    started = await wire.standin.send_command(
        "roleplay as", {"persona": PERSONA, "mode": "mention"}, user=wire.moderator, channel=wire.channel
    )
    await wire.eventually(lambda: started.answered, "the /roleplay as callback")
    await wire.eventually(lambda: [m.content for m in persona_messages(wire)] == [GREETING], "the greeting")

    wire.chat.script_reply(REPLY, chunk_size=8, first_token_delay=0.1, chunk_delay=0.08)
    await wire.standin.send_member_message("Sam, how do I play Thresh?", user=wire.alice, channel=wire.channel)

    await wire.eventually(
        lambda: len(persona_messages(wire)) == 2 and persona_messages(wire)[-1].content == REPLY, "the streamed reply"
    )
    await wire.eventually(lambda: wire.chat.requests[-1].status == 200, "the stream to end")
    reply = persona_messages(wire)[-1]
    # The model was asked with the persona's own system prompt and the member's words.
    asked = wire.chat.requests[-1]
    assert asked.stream is True
    assert asked.messages[0]["role"] == "system"
    assert "how do I play Thresh?" in str(asked.messages)
    # Under the persona's name, through the channel's one webhook, pinging nobody on any call.
    assert reply.author["username"] == PERSONA
    assert reply.webhook_id in wire.standin.webhooks
    assert wire.standin.webhooks[reply.webhook_id].channel_id == wire.channel.id
    posts = wire.standin.calls_to("POST", WEBHOOK_POST)
    edits = wire.standin.calls_to("PATCH", WEBHOOK_EDIT)
    assert len(posts) == 2 and edits, "the greeting and the reply posted, and the reply edited while streaming"
    for call in posts + edits:
        assert call.status == 200
        assert call.json["allowed_mentions"]["parse"] == []
    assert all(call.json["username"] == PERSONA for call in posts)
    assert reply.mentions == [] and not reply.mention_everyone
    # Streamed: first words shown before the whole reply, the text only ever growing.
    shown = [version.content for version in reply.versions]
    assert len(shown) >= 2 and shown[0] != REPLY
    assert all(REPLY.startswith(text) for text in shown)
    # At most one edit a second, the final one included (it waits out the second if it must).
    times = [version.at for version in reply.versions]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.99 for gap in gaps), gaps
    assert len(gaps) <= 3  # about 2.2 s of streaming: two interval edits at most, then the final one
    assert wire.wire_problems() == []


async def test_a_roleplay_start_held_up_by_discord_is_deferred_then_answered_not_left_unanswered(
    wire: WireHarness,
) -> None:
    wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
    command = await wire.enhance(SKETCH)
    await wire.eventually(
        lambda: bool((reply := wire.reply(command)) and reply.content.startswith("✅ Saved")), "the persona saved"
    )
    # Making the channel's webhook takes longer than Discord's 3 s answer window.
    wire.standin.slow(4.0, method="POST", template="/channels/{channel_id}/webhooks")
    wire.chat.script_reply(GREETING)

    started = await wire.standin.send_command(
        "roleplay as", {"persona": PERSONA, "mode": "mention"}, user=wire.moderator, channel=wire.channel
    )

    await wire.eventually(lambda: started.answered, "the /roleplay as callback")
    assert started.callback_type == 5  # "thinking…" in time, not "The application did not respond"
    await wire.eventually(
        lambda: bool((reply := wire.reply(started)) and f"{PERSONA}** joins" in reply.content), "the answer"
    )
    await wire.eventually(lambda: [m.content for m in persona_messages(wire)] == [GREETING], "the greeting")
    assert wire.standin.late_callbacks_refused == 0
    assert wire.wire_problems() == []


async def test_a_natural_persona_joins_in_through_turn_taking_in_paced_pieces(wire: WireHarness) -> None:
    wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
    command = await wire.enhance(SKETCH)
    await wire.eventually(
        lambda: bool((reply := wire.reply(command)) and reply.content.startswith("✅ Saved")), "the persona saved"
    )
    wire.chat.script_reply(GREETING)
    started = await wire.standin.send_command(
        "roleplay as", {"persona": PERSONA, "mode": "natural"}, user=wire.moderator, channel=wire.channel
    )
    await wire.eventually(lambda: [m.content for m in persona_messages(wire)] == [GREETING], "the greeting")
    assert started.answered
    await wire.turn_taking.wait_open()
    [(_, thread_id)] = list(wire.turn_taking.threads)
    wire.turn_taking.script_decisions("speak", thread_id=thread_id)
    wire.turn_taking.script_reply("Ha, clean hook.", "@everyone duo later?", thread_id=thread_id)
    wire.chat.script_reply("Ha, clean hook. Duo later?")

    await wire.standin.send_member_message("that thresh hook was insane", user=wire.alice, channel=wire.channel)

    await wire.eventually(lambda: len(persona_messages(wire)) == 3, "the paced reply")
    lines = persona_messages(wire)
    assert [m.content for m in lines] == [GREETING, "Ha, clean hook.", "@everyone duo later?"]
    assert all(m.author["username"] == PERSONA for m in lines)
    assert not lines[-1].mention_everyone and lines[-1].mentions == []
    assert lines[1].versions[0].at < lines[2].versions[0].at  # one after the other, a beat apart
    [submit] = wire.turn_taking.calls_of("submit_messages")
    assert submit.body["messages"][0]["content"] == "that thresh hook was insane"
    assert wire.standin.typing, "the persona was seen typing"
    assert wire.wire_problems() == []


async def test_a_refusal_after_the_start_was_deferred_replaces_the_thinking_message(tmp_path: Path) -> None:
    async with WireHarness(tmp_path, settings={"ROLEPLAY_MAX_ACTIVE_PER_GUILD": "1"}) as wire:
        wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
        command = await wire.enhance(SKETCH)
        await wire.eventually(
            lambda: bool((reply := wire.reply(command)) and reply.content.startswith("✅ Saved")), "the persona saved"
        )
        first = await wire.standin.send_command(
            "roleplay as", {"persona": PERSONA}, user=wire.moderator, channel=wire.channel
        )
        await wire.eventually(lambda: first.answered, "the first start")
        other = wire.standin.add_channel(wire.guild, "lounge")
        # The second channel's webhook takes past Discord's answer window; then the server's limit refuses.
        wire.standin.slow(4.0, method="POST", template="/channels/{channel_id}/webhooks")

        refused = await wire.standin.send_command(
            "roleplay as", {"persona": PERSONA}, user=wire.moderator, channel=other
        )

        await wire.eventually(lambda: refused.answered, "the deferred answer")
        assert refused.callback_type == 5
        await wire.eventually(
            lambda: bool((reply := wire.reply(refused)) and "limit of 1" in reply.content), "the refusal in its place"
        )
        assert wire.standin.late_callbacks_refused == 0
        assert wire.wire_problems() == []
