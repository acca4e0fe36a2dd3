"""Steering a persona's reply: Regenerate and Edit (right-click → Apps), and the Stop button while it streams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import discord
import pytest

from bot.roleplay.stopping import StoppableStream
from tests.conftest import World
from tests.fakes.chat_model import RecordedChat

COUNTING = "One two three four five six seven eight nine ten eleven twelve."


def persona_messages(world: World, channel: Any = None) -> list[Any]:
    return [m for m in (channel or world.channel).history() if m.webhook_id is not None]


def history_of_last_request(world: World) -> list[dict[str, str]]:
    return list(world.chat.requests[-1].messages)


async def start(world: World, persona: str = "Sam", member: Any = None, **options: Any) -> Any:
    return await (member or world.admin).slash(world.channel, "roleplay as", persona=persona, **options)


class HeldReply:
    """The fake model's next reply, streamed until the test lets it go on: it holds after three pieces."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._go_on = asyncio.Event()
        self._pieces = 0
        world.chat.sleep = self._between_pieces

    def script(self, text: str) -> None:
        self._pieces = 0
        self._world.chat.script_reply(text, chunk_size=4, chunk_delay=1.0)

    def go_on(self) -> None:
        self._go_on.set()

    async def ended(self, request: RecordedChat) -> RecordedChat:
        """`request` as the fake records it once its answer ended, sent whole or cut by the bot (status None)."""
        index = self._world.chat.requests.index(request)
        for _ in range(500):  # the fake records the request again, with its status, when the answer ends
            if self._world.chat.requests[index] is not request:
                return self._world.chat.requests[index]
            await asyncio.sleep(0.01)
        raise AssertionError("the model is still answering: the bot never closed the request")

    async def _between_pieces(self, seconds: float) -> None:
        if not seconds:
            return
        self._pieces += 1
        if self._pieces == 3:
            await self._go_on.wait()


@pytest.fixture
def held_reply(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldReply]:
    """A reply members can act on while it streams.

    Waiting for the model's next words is declared to simcord as waiting on outside input (as
    tests/simcord_env.py declares a turn-taking socket's), so a member's action settles while it streams.
    """
    read = StoppableStream._next_delta

    async def declared(stream: StoppableStream) -> str:
        return await world.env.external_wait(read(stream), reason="the chat model's next words")

    monkeypatch.setattr(StoppableStream, "_next_delta", declared)
    held = HeldReply(world)
    yield held
    held.go_on()


# --- Regenerate ---------------------------------------------------------------------------------


async def test_regenerate_replaces_the_reply_and_the_next_turn_remembers_only_the_new_one(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    world.chat.script_reply("Braum is boring, pick Thresh.")
    await world.alice.send(world.channel, "Sam, Braum or Thresh?")
    [_, reply] = persona_messages(world)
    world.chat.script_reply("Thresh, every time: lantern saves win games.")

    result = await world.alice.context_menu(world.channel, "Regenerate", reply)  # alice did not start Sam
    refused = result.response.content
    done = await world.admin.context_menu(world.channel, "Regenerate", reply)

    assert "not yours" in refused
    assert done.ephemeral and "written again" in done.response.content
    assert world.message(reply.id).content == "Thresh, every time: lantern saves win games."
    assert len(persona_messages(world)) == 2  # replaced in place, nothing new posted
    rewrite = history_of_last_request(world)
    assert rewrite[-1] == {"role": "user", "content": "alice: Sam, Braum or Thresh?"}  # the history before it
    world.chat.script_reply("Told you.")
    await world.alice.send(world.channel, "Sam, sure?")
    history = history_of_last_request(world)
    assert {"role": "assistant", "content": "Thresh, every time: lantern saves win games."} in history
    assert all("Braum is boring" not in message["content"] for message in history)
    assert world.refusals() == [refused]


async def test_a_regenerated_reply_that_was_split_goes_back_into_one_message(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Warding the river brush wins games more often than people think. " * 50, chunk_size=400)
    await start(world)
    first, second = persona_messages(world)
    world.chat.script_reply("Short and sweet now.")

    await world.admin.context_menu(world.channel, "Regenerate", second)

    assert [m.content for m in persona_messages(world)] == ["Short and sweet now."]
    assert persona_messages(world)[0].id == first.id


async def test_a_failing_model_leaves_the_reply_as_it_was(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.")
    await start(world)
    [greeting] = persona_messages(world)
    world.chat.fail_next(500)

    result = await world.admin.context_menu(world.channel, "Regenerate", greeting)

    assert result.ephemeral and "unchanged" in result.response.content
    assert world.message(greeting.id).content == "Hi, I'm Sam."
    assert len(world.refusals()) == 1


# --- Edit ---------------------------------------------------------------------------------------


async def test_an_edit_changes_the_message_and_what_the_persona_remembers_saying(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam. I main Braum.")
    await start(world)
    [greeting] = persona_messages(world)

    shown = await world.admin.context_menu(world.channel, "Edit", greeting)
    edited = await world.admin.submit_modal(shown, {"text": "Hi, I'm Sam. I main Thresh, @everyone."})

    [field] = shown.modal["components"][0]["components"]
    assert field["value"] == "Hi, I'm Sam. I main Braum."  # the form starts from the line as it is
    assert edited.ephemeral and "reads as you wrote it" in edited.response.content
    message = world.message(greeting.id)
    assert message.content == "Hi, I'm Sam. I main Thresh, @everyone."
    assert not message.mention_everyone
    world.chat.script_reply("Yes, Thresh.")
    await world.alice.send(world.channel, "Sam, which champion?")
    history = history_of_last_request(world)
    assert {"role": "assistant", "content": "Hi, I'm Sam. I main Thresh, @everyone."} in history
    assert all("Braum" not in message["content"] for message in history)


async def test_after_a_restart_an_edit_still_changes_what_the_persona_remembers(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("I main Braum.")
    await start(world)
    await world.alice.send(world.channel, "nice")
    [greeting] = persona_messages(world)
    await world.restart()

    shown = await world.admin.context_menu(world.channel, "Edit", greeting)
    await world.admin.submit_modal(shown, {"text": "I main Thresh."})

    world.chat.script_reply("Thresh it is.")
    await world.alice.send(world.channel, "Sam, main?")
    history = history_of_last_request(world)
    assert {"role": "assistant", "content": "I main Thresh."} in history
    assert "alice: nice" in history[-1]["content"]  # the rest of the conversation was read back once, whole
    assert all("Braum" not in message["content"] for message in history)


async def test_the_edit_form_refuses_another_member_before_it_opens(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    [greeting] = persona_messages(world)

    result = await world.bob.context_menu(world.channel, "Edit", greeting)

    assert result.modal is None
    assert result.ephemeral and "not yours" in result.response.content
    assert len(world.refusals()) == 1


# --- Stop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"chat_model_timeout_seconds": 3600}])
async def test_stop_cuts_a_streaming_reply_where_it_is(world: World, held_reply: HeldReply) -> None:
    await world.make_persona("Sam")
    await start(world)
    held_reply.script(COUNTING)
    await world.alice.send(world.channel, "Sam, count for me")
    [_, streaming] = persona_messages(world)
    assert [c.label for row in streaming.components for c in row.children] == ["Stop"]

    streaming_request = world.chat.requests[-1]

    result = await world.admin.click(streaming, label="Stop")
    answer = await held_reply.ended(streaming_request)  # still held by the fake unless the bot hung up

    assert result.ephemeral and "stops there" in result.response.content
    cut = world.message(streaming.id)
    assert cut.components == []
    assert cut.content and COUNTING.startswith(cut.content) and cut.content != COUNTING
    assert answer.status is None  # the bot closed the request: no more words were made or paid for
    world.chat.script_reply("Sorry, lost count.")
    await world.alice.send(world.channel, "Sam?")
    assert {"role": "assistant", "content": cut.content} in history_of_last_request(world)


@pytest.mark.parametrize("settings_overrides", [{"chat_model_timeout_seconds": 3600}])
async def test_only_the_starter_or_roleplay_managers_may_stop_a_reply(world: World, held_reply: HeldReply) -> None:
    players = world.guild.create_role("Players")
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[players])
    await world.admin.slash(world.channel, "roleplay role", role=players)
    await world.make_persona("Sam")
    await start(world, member=carol)
    held_reply.script(COUNTING)
    await world.alice.send(world.channel, "Sam, count for me")
    [_, streaming] = persona_messages(world)

    refused = await world.bob.click(streaming, label="Stop")
    stopped = await carol.click(streaming, label="Stop")

    assert refused.ephemeral and "not yours" in refused.response.content
    assert "stops there" in stopped.response.content
    assert world.message(streaming.id).components == []


@pytest.mark.parametrize("settings_overrides", [{"chat_model_timeout_seconds": 3600}])
async def test_a_stop_button_left_by_a_restart_says_the_reply_already_finished(
    world: World, held_reply: HeldReply
) -> None:
    await world.make_persona("Sam")
    await start(world)
    held_reply.script(COUNTING)
    await world.alice.send(world.channel, "Sam, count for me")
    [_, streaming] = persona_messages(world)

    await world.restart()  # a crash mid-reply: the button stays on the message
    result = await world.admin.click(streaming, label="Stop")

    [told] = result.followups
    assert told.ephemeral and "already finished" in told.content
    assert world.message(streaming.id).components == []
    assert world.env.errors == []


async def test_a_finished_reply_carries_no_stop_button(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply(COUNTING, chunk_size=4)

    await start(world)

    [greeting] = persona_messages(world)
    assert greeting.content == COUNTING
    assert greeting.components == []
    posted = next(r for r in world.env.http_requests if r.method == "POST" and "simcord_webhook" in r.path)
    assert posted.json["components"][0]["components"][0]["label"] == "Stop"  # it had one while streaming


# --- Who may, and on what -----------------------------------------------------------------------


async def test_whoever_started_the_persona_and_manage_server_may_steer_others_may_not(world: World) -> None:
    players = world.guild.create_role("Players")
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[players])
    dave = world.guild.add_member(world.env.create_user("dave"), roles=[players])
    await world.admin.slash(world.channel, "roleplay role", role=players)
    await world.make_persona("Sam")
    await start(world, member=carol)
    [greeting] = persona_messages(world)
    world.chat.script_reply("Take two.")
    world.chat.script_reply("Take three.")
    world.chat.script_reply("Take four.")
    await world.admin.slash(world.channel, "roleplay role")  # the role no longer lets members start roleplay

    by_bob = await world.bob.context_menu(world.channel, "Regenerate", greeting)
    by_dave = await dave.context_menu(world.channel, "Regenerate", greeting)  # his role no longer counts
    by_carol = await carol.context_menu(world.channel, "Regenerate", greeting)  # she started Sam
    by_admin = await world.admin.context_menu(world.channel, "Regenerate", greeting)  # Manage Server

    assert "not yours" in by_bob.response.content and "not yours" in by_dave.response.content
    assert "written again" in by_carol.response.content and "written again" in by_admin.response.content
    assert world.message(greeting.id).content == "Take three."
    assert len(world.refusals()) == 2


async def test_a_message_that_is_not_a_persona_line_here_is_refused_privately(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    [greeting] = persona_messages(world)
    said = await world.alice.send(world.channel, "just a member talking")
    notice = next(m for m in world.channel.history() if m.author.id == world.bot.user.id)

    on_member = await world.admin.context_menu(world.channel, "Regenerate", said)
    on_notice = await world.admin.context_menu(world.channel, "Edit", notice)
    await world.admin.slash(world.channel, "roleplay stop")
    after_stop = await world.admin.context_menu(world.channel, "Regenerate", greeting)

    for result in (on_member, on_notice, after_stop):
        assert result.ephemeral and "not a message of a persona speaking in this channel" in result.response.content
    assert on_notice.modal is None
    assert world.message(greeting.id).content == "Hello there!"
    assert len(world.refusals()) == 3


# --- Across servers -----------------------------------------------------------------------------


async def test_manage_server_in_one_server_gives_no_say_over_another_servers_replies(world: World) -> None:
    other = world.env.create_guild(name="Other Server")
    lounge = other.create_text_channel("lounge")
    owner_role = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    owner = other.add_member(world.env.create_user("olga"), roles=[owner_role])
    ada_there = other.add_member(world.admin.user)  # ada: admin here, a plain member there
    await owner.slash(lounge, "enhance", sketch="Mira keeps the Rusty Anchor.", name="Mira")
    await world.env.advance_time(15)
    world.chat.script_reply("Welcome to the Anchor.")
    await owner.slash(lounge, "roleplay as", persona="Mira")
    [greeting] = [m for m in lounge.history() if m.webhook_id is not None]

    regenerate = await ada_there.context_menu(lounge, "Regenerate", greeting)
    edit = await ada_there.context_menu(lounge, "Edit", greeting)

    assert "not yours" in regenerate.response.content and "not yours" in edit.response.content
    assert edit.modal is None
    assert [m.content for m in lounge.history() if m.webhook_id is not None] == ["Welcome to the Anchor."]
    assert len(world.refusals()) == 2


async def test_steering_a_persona_in_one_server_leaves_a_namesake_in_another_untouched(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Sam of Game Night here.")
    await start(world)
    other = world.env.create_guild(name="Other Server")
    lounge = other.create_text_channel("lounge")
    owner_role = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    owner = other.add_member(world.env.create_user("olga"), roles=[owner_role])
    await owner.slash(lounge, "enhance", sketch="Sam runs the other server's quiz nights.", name="Sam")
    await world.env.advance_time(15)
    world.chat.script_reply("Quiz Sam, ready.")
    await owner.slash(lounge, "roleplay as", persona="Sam")
    [theirs] = [m for m in lounge.history() if m.webhook_id is not None]
    world.chat.script_reply("Quiz Sam, take two.")

    done = await owner.context_menu(lounge, "Regenerate", theirs)

    assert "written again" in done.response.content
    assert "Other Server" in history_of_last_request(world)[0]["content"]  # written with its own server's setting
    assert [m.content for m in lounge.history() if m.webhook_id is not None] == ["Quiz Sam, take two."]
    assert [m.content for m in persona_messages(world)] == ["Sam of Game Night here."]
    world.chat.script_reply("Still Game Night Sam.")
    await world.alice.send(world.channel, "Sam?")
    history = history_of_last_request(world)
    assert {"role": "assistant", "content": "Sam of Game Night here."} in history
    assert all("Quiz" not in message["content"] for message in history)
