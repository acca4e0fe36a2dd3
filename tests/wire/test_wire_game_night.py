"""One game night over the wire: a cast, a scene, a narrator, two personas, regenerate, stop and a recap.

The real bot process against the Discord stand-in and the Humalike and chat-model fakes on
loopback. Members drive it as they would in Discord: slash commands, plain messages, a right-click
→ Apps → Regenerate on a persona's line, the Stop button on a streaming reply. Every body the bot
sends is checked against Discord's schema, and nothing a persona says pings anyone.
"""

from __future__ import annotations

import io
from typing import Any

from tests.wire.harness import WireHarness

NARRATOR, JIWOO, LUCAS = "Amara Nwosu", "Jiwoo Park", "Lucas Ferreira"
SCENE = "The Rusty Anchor, a harbour tavern at midnight. Rain on the shutters; a stranger asks for a map."
OPENING = "Rain drums on the shutters of the Rusty Anchor. By the fire, a hooded stranger unrolls a torn map."
JIWOO_HELLO, LUCAS_HELLO = "Jiwoo here, nursing a cider.", "Lucas, at the dice table. Deal me in."
FIRST_TRY = "The map? Looks fake to me."
SECOND_TRY = "That map shows the old mine road. @everyone should see this."
# About 6 s of streaming (40 chunks, 150 ms apart): long enough to press Stop in the middle.
LONG_STORY = " ".join(f"Word{index}" for index in range(160))
RECAP = "Previously: at the Rusty Anchor a stranger showed a torn map; Jiwoo read the mine road on it."


def persona_messages(wire: WireHarness) -> list[Any]:
    return [m for m in wire.standin.channel_messages(wire.channel) if m.webhook_id is not None and not m.interaction_id]


def lines_of(wire: WireHarness, name: str) -> list[Any]:
    return [m for m in persona_messages(wire) if m.author["username"] == name]


def has_stop_button(message: Any) -> bool:
    return any(
        component.get("label") == "Stop" for row in message.components for component in row.get("components", [])
    )


async def cast_saved(wire: WireHarness) -> bool:
    names = {name for (name,) in await wire.rows("SELECT name FROM personas")}
    return names == {NARRATOR, JIWOO, LUCAS}


async def start(wire: WireHarness, persona: str, mode: str) -> None:
    started = await wire.standin.send_command(
        "roleplay as", {"persona": persona, "mode": mode}, user=wire.moderator, channel=wire.channel
    )
    await wire.eventually(lambda: bool((reply := wire.reply(started)) and "joins" in reply.content), f"{persona} in")


async def test_a_game_night_from_cast_to_recap(wire: WireHarness) -> None:
    # The cast: three characters from Humalike's population endpoint.
    wire.humalike.script_population(pending_for=0.1, running_for=0.2)
    await wire.standin.send_command(
        "cast generate",
        {"prompt": "regulars of a harbour tavern", "count": 3, "name": "Harbour"},
        user=wire.moderator,
        channel=wire.channel,
    )
    await wire.eventually(lambda: cast_saved(wire), "the cast saved")

    # The scene, told to the table.
    scene = await wire.standin.send_command("scene set", {"text": SCENE}, user=wire.moderator, channel=wire.channel)
    await wire.eventually(lambda: bool((reply := wire.reply(scene)) and "🎬" in reply.content), "the scene line")

    # The narrator opens the scene; two players' characters greet.
    wire.chat.script_reply(OPENING)
    await start(wire, NARRATOR, "narrator")
    await wire.eventually(lambda: [m.content for m in lines_of(wire, NARRATOR)] == [OPENING], "the narrator's opening")
    assert SCENE in wire.chat.requests[-1].messages[0]["content"]
    wire.chat.script_reply(JIWOO_HELLO)
    await start(wire, JIWOO, "mention")
    await wire.eventually(lambda: len(lines_of(wire, JIWOO)) == 1, "Jiwoo's greeting")
    wire.chat.script_reply(LUCAS_HELLO)
    await start(wire, LUCAS, "mention")
    await wire.eventually(lambda: len(lines_of(wire, LUCAS)) == 1, "Lucas's greeting")

    # A member talks to Jiwoo; the narrator stays silent, not being called.
    wire.chat.script_reply(FIRST_TRY)
    await wire.standin.send_member_message("Jiwoo, what's on that map?", user=wire.alice, channel=wire.channel)
    await wire.eventually(lambda: len(lines_of(wire, JIWOO)) == 2, "Jiwoo's answer")
    answer = lines_of(wire, JIWOO)[-1]
    await wire.eventually(lambda: answer.content == FIRST_TRY, "the answer's last words")
    assert len(lines_of(wire, NARRATOR)) == 1

    # Regenerate: the same message, new words; the model was asked again without the old ones.
    wire.chat.script_reply(SECOND_TRY)
    regenerate = await wire.standin.send_message_command(
        "Regenerate", answer, user=wire.moderator, channel=wire.channel
    )
    await wire.eventually(lambda: answer.content == SECOND_TRY, "the regenerated reply")
    await wire.eventually(lambda: regenerate.answered, "the regenerate answer")
    assert FIRST_TRY not in str(wire.chat.requests[-1].messages)
    assert len(lines_of(wire, JIWOO)) == 2  # replaced in place, nothing new posted
    assert not answer.mention_everyone and answer.mentions == []

    # Stop: Lucas starts a long story; the moderator presses Stop while it streams.
    wire.chat.script_reply(LONG_STORY, chunk_size=4, first_token_delay=0.1, chunk_delay=0.15)
    await wire.standin.send_member_message("Lucas, tell us about the mine.", user=wire.alice, channel=wire.channel)
    await wire.eventually(
        lambda: len(lines_of(wire, LUCAS)) == 2 and has_stop_button(lines_of(wire, LUCAS)[-1]), "the Stop button"
    )
    story = lines_of(wire, LUCAS)[-1]
    index = len(wire.chat.requests) - 1
    streaming = wire.chat.requests[index]
    await wire.standin.click_button(story, story.components[0]["components"][0]["custom_id"], user=wire.moderator)
    await wire.eventually(lambda: not has_stop_button(story), "the button gone")
    # The fake records the request again when its answer ends: status None, cut by the bot, not sent whole.
    await wire.eventually(lambda: wire.chat.requests[index] is not streaming, "the model's request to end")
    assert wire.chat.requests[index].status is None
    assert story.content and LONG_STORY.startswith(story.content) and story.content != LONG_STORY

    # The recap: written by the model from the session, posted and kept for next week.
    wire.chat.script_reply(RECAP)
    recap = await wire.standin.send_command("scene recap", {}, user=wire.moderator, channel=wire.channel)
    await wire.eventually(lambda: bool((reply := wire.reply(recap)) and RECAP in reply.content), "the recap posted")
    assert await wire.scalar("SELECT text FROM channel_recaps WHERE channel_id = ?", wire.channel.id) == RECAP
    asked = str(wire.chat.requests[-1].messages)
    # The session as it stands after Regenerate (an @everyone read back from Discord comes defused).
    assert "That map shows the old mine road." in asked and FIRST_TRY not in asked

    for message in persona_messages(wire):
        assert not message.mention_everyone and message.mentions == [] and message.mention_roles == []
    assert wire.standin.late_callbacks_refused == 0
    assert wire.wire_problems() == []


def png(colour: str = "teal") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_an_avatar_set_over_the_wire_shows_on_every_line_after_a_restart_too(wire: WireHarness) -> None:
    wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
    command = await wire.enhance("Sam is a 30-year-old support main. Friendly. Plays Thresh.")
    await wire.eventually(
        lambda: bool((reply := wire.reply(command)) and reply.content.startswith("✅ Saved")), "the persona saved"
    )
    face = await wire.standin.send_command(
        "persona avatar",
        {"name": "Sam Okafor", "image": ("sam.png", png(), "image/png")},
        user=wire.alice,
        channel=wire.channel,
    )
    await wire.eventually(
        lambda: bool((reply := wire.reply(face)) and "has a new avatar" in reply.content), "the avatar set"
    )
    [holder] = [webhook for webhook in wire.standin.webhooks.values() if webhook.name.startswith("Avatar")]
    assert holder.avatar is not None
    hosted = f"https://cdn.discordapp.com/avatars/{holder.id}/{holder.avatar}.png"

    wire.chat.script_reply("Hey all, Sam here.")
    await start(wire, "Sam Okafor", "mention")
    await wire.eventually(lambda: len(persona_messages(wire)) == 1, "the greeting")
    await wire.restart()
    wire.chat.script_reply("Still me.")
    await wire.standin.send_member_message("Sam, still there?", user=wire.alice, channel=wire.channel)
    await wire.eventually(lambda: len(persona_messages(wire)) == 2, "the answer after the restart")

    # Every line carries the holder's picture, at a CDN address that does not expire; never the upload's link.
    shown = [message.avatar_url or "" for message in persona_messages(wire)]
    assert len(shown) == 2 and all(url.split("?")[0] == hosted for url in shown), shown
    assert [webhook.id for webhook in wire.standin.webhooks.values() if webhook.name.startswith("Avatar")] == [
        holder.id
    ]
    assert wire.wire_problems() == []
