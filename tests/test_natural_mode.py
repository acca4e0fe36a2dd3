"""/roleplay as ... mode:natural in simcord: Humalike's turn-taking decides when a persona joins in.

The bot runs in simcord; the fake turn-taking service (tests/fakes/turn_taking.py) and the fake
chat model are served on loopback. A persona's reply arrives as the paced pieces turn-taking
pushes on its socket, each posted under the persona's name through the channel's webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from tests.conftest import World
from tests.fakes.humalike import DEFAULT_TOKEN
from tests.fakes.turn_taking import FakeTurnTaking, serve

# Time for the turn to run and its reply to be paced out by the fake (10 ms a beat), in real time.
PACING_SECONDS = 0.2


@pytest.fixture
async def turn_taking() -> AsyncIterator[FakeTurnTaking]:
    fake = FakeTurnTaking(token=DEFAULT_TOKEN, beat=0.01)
    async with serve(fake):
        yield fake


@pytest.fixture
def settings_overrides(turn_taking: FakeTurnTaking, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The fake turn-taking's address, and any settings a test asks for (indirect parametrisation)."""
    return {"humalike_turn_taking_url": turn_taking.base_url, **getattr(request, "param", {})}


def persona_lines(world: World) -> list[tuple[str, str]]:
    return [(m.author.name, m.content) for m in world.channel.history() if m.webhook_id is not None]


def bot_notices(world: World) -> list[str]:
    return [m.content for m in world.channel.history() if m.webhook_id is None and m.author.bot]


async def speaking(world: World, turn_taking: FakeTurnTaking, reply: str) -> str:
    """Sam in natural mode, its thread set to speak on the next batch with `reply`; the thread id."""
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    turn_taking.script_decisions("speak", thread_id=thread_id)
    world.chat.script_reply(reply)
    return thread_id


async def natural(world: World, turn_taking: FakeTurnTaking, persona: str = "Sam") -> str:
    """Start `persona` in natural mode after its greeting; the thread id it talks on."""
    world.chat.script_reply(f"Hey all, {persona} here.")
    result = await world.admin.slash(world.channel, "roleplay as", persona=persona, mode="natural")
    assert "join in when it is their moment" in result.response.content
    await turn_taking.wait_open()
    [(_, thread_id)] = [key for key in turn_taking.threads]
    return thread_id


async def say(world: World, member: Any, text: str, turn_taking: FakeTurnTaking) -> None:
    """A member speaks; the personas are asked, the turn runs and its reply is paced out."""
    await member.send(world.channel, text)
    await asyncio.sleep(PACING_SECONDS)
    await turn_taking.paced()
    await asyncio.sleep(PACING_SECONDS)  # the last piece posted


async def test_a_natural_persona_joins_in_when_turn_taking_says_speak_in_paced_pieces(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    turn_taking.script_decisions("speak", thread_id=thread_id)
    turn_taking.script_reply("Ha, clean hook.", "Duo later?", thread_id=thread_id)
    world.chat.script_reply("Ha, clean hook. Duo later?")

    await say(world, world.alice, "that thresh hook was insane", turn_taking)

    assert persona_lines(world) == [("Sam", "Hey all, Sam here."), ("Sam", "Ha, clean hook."), ("Sam", "Duo later?")]
    [submit] = turn_taking.calls_of("submit_messages")
    assert submit.body["messages"][0]["sender"] == "alice"
    assert submit.body["messages"][0]["content"] == "that thresh hook was insane"
    assert submit.body["system_prompt"].startswith("You are Sam Okafor")
    assert submit.body["skip_decide"] is False
    [respond] = turn_taking.calls_of("respond")
    assert respond.body["content"] == "Ha, clean hook. Duo later?"
    assert respond.body["agent_name"] == "Sam"
    # The draft was written from the persona's own prompt and the channel's conversation.
    drafted = world.chat.requests[-1].messages
    assert drafted[0]["content"].startswith("You are Sam Okafor")
    assert "that thresh hook was insane" in str(drafted)


async def test_a_natural_persona_stays_silent_when_turn_taking_says_so(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    await natural(world, turn_taking)

    await say(world, world.alice, "brb, pizza", turn_taking)

    assert persona_lines(world) == [("Sam", "Hey all, Sam here.")]
    assert len(turn_taking.calls_of("submit_messages")) == 1
    assert turn_taking.calls_of("respond") == []


async def test_named_a_natural_persona_always_answers_without_a_billed_decision(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    turn_taking.script_reply("Always.", thread_id=thread_id)
    world.chat.script_reply("Always.")

    await say(world, world.alice, "sam, you in for ranked?", turn_taking)

    assert persona_lines(world)[-1] == ("Sam", "Always.")
    [submit] = turn_taking.calls_of("submit_messages")
    assert submit.body["skip_decide"] is True
    assert "submit_messages" not in [call.action for call in turn_taking.billed]


async def test_roleplay_status_shows_what_natural_mode_cost_today(world: World, turn_taking: FakeTurnTaking) -> None:
    await speaking(world, turn_taking, "Sure.")
    await say(world, world.alice, "anyone?", turn_taking)

    status = await world.alice.slash(world.channel, "roleplay status")

    assert "natural mode" in status.response.content
    assert "Natural mode today (UTC): 2 of 2000 billable turn-taking calls in this server" in status.response.content
    assert "Sam: 2" in status.response.content


async def test_out_of_credits_is_told_once_and_the_persona_goes_on_in_mention_mode(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    await natural(world, turn_taking)
    turn_taking.fail_next("submit_messages", 402, times=5)

    await say(world, world.alice, "anyone up?", turn_taking)
    world.chat.script_reply("I'm here.")
    await say(world, world.alice, "sam?", turn_taking)

    notices = [text for text in bot_notices(world) if "credits have run out" in text]
    assert len(notices) == 1
    assert persona_lines(world)[-1] == ("Sam", "I'm here.")  # answered as in mention mode
    assert len(turn_taking.calls_of("submit_messages")) == 1  # no turn-taking after the refusal
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "mention mode" in status.response.content


async def test_stopping_a_natural_persona_closes_its_socket(world: World, turn_taking: FakeTurnTaking) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    assert turn_taking.open_sockets(thread_id) == 1

    await world.admin.slash(world.channel, "roleplay stop")

    await asyncio.sleep(0.1)
    assert turn_taking.open_sockets(thread_id) == 0


async def test_a_persona_remembers_players_in_one_memory_per_server_named_by_our_ids(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    await natural(world, turn_taking)

    [opened] = turn_taking.calls_of("open_thread")
    [persona] = await world.personas()
    assert opened.body["integrations"] == {
        "social_memory": {"memory_bank_id": f"guild-{world.guild.id}-persona-{persona['id']}"}
    }


async def test_after_a_restart_the_same_thread_is_reopened_and_the_persona_goes_on(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)

    await world.restart()
    await turn_taking.wait_open(thread_id, count=1)
    turn_taking.script_decisions("speak", thread_id=thread_id)
    turn_taking.script_reply("Back again.", thread_id=thread_id)
    world.chat.script_reply("Back again.")
    await say(world, world.alice, "sam left?", turn_taking)

    assert [call.body["thread_id"] for call in turn_taking.calls_of("open_thread")] == [thread_id, thread_id]
    assert len(turn_taking.threads) == 1  # re-opened, nothing new created
    assert persona_lines(world)[-1] == ("Sam", "Back again.")


async def test_a_persona_never_hears_its_own_lines_and_hears_the_others_with_the_next_member_line(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    await world.enhance(sketch="Jinx is a chaotic ADC main who loves rockets.", name="Jinx")
    await world.env.advance_time(15)
    sam = await natural(world, turn_taking, "Sam")
    world.chat.script_reply("Jinx here, rockets ready.")
    await world.admin.slash(world.channel, "roleplay as", persona="Jinx", mode="natural")
    await turn_taking.wait_open(count=2)
    jinx = next(thread for _, thread in turn_taking.threads if thread != sam)
    turn_taking.script_decisions("speak", thread_id=sam)
    turn_taking.script_reply("Anyone for bot lane?", thread_id=sam)
    world.chat.script_reply("Anyone for bot lane?")
    await say(world, world.alice, "evening all", turn_taking)

    await say(world, world.bob, "me!", turn_taking)

    def heard(thread: str) -> list[list[str]]:
        calls = [c for c in turn_taking.calls_of("submit_messages") if c.body["thread_id"] == thread]
        return [[m["content"] for m in call.body["messages"]] for call in calls]

    # Sam greeted before Jinx joined; Jinx's greeting reached Sam, never Jinx itself.
    assert heard(sam) == [["Jinx here, rockets ready.", "evening all"], ["me!"]]
    assert heard(jinx) == [["evening all"], ["Anyone for bot lane?", "me!"]]


async def test_a_refused_token_is_told_once_with_what_to_fix(world: World, turn_taking: FakeTurnTaking) -> None:
    await world.make_persona("Sam")
    await natural(world, turn_taking)
    turn_taking.fail_next("submit_messages", 401, times=5)

    await say(world, world.alice, "anyone?", turn_taking)
    await say(world, world.bob, "hello?", turn_taking)

    [notice] = [text for text in bot_notices(world) if "refused the bot's token" in text]
    assert "HUMALIKE_TOKEN" in notice and "python -m bot check" in notice
    assert DEFAULT_TOKEN not in notice


async def test_a_502_is_retried_and_the_persona_still_joins_in(world: World, turn_taking: FakeTurnTaking) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    turn_taking.fail_next("submit_messages", 502)
    turn_taking.script_decisions("speak", thread_id=thread_id)
    world.chat.script_reply("Made it.")

    await say(world, world.alice, "lag spike?", turn_taking)
    await asyncio.sleep(1.2)  # the retry waits a second
    await turn_taking.paced()
    await asyncio.sleep(PACING_SECONDS)

    assert [call.status for call in turn_taking.calls_of("submit_messages")] == [502, 200]
    assert persona_lines(world)[-1] == ("Sam", "Made it.")
    assert len([call for call in turn_taking.billed if call.action == "submit_messages"]) == 1


async def test_a_natural_persona_pings_nobody(world: World, turn_taking: FakeTurnTaking) -> None:
    await world.make_persona("Sam")
    thread_id = await natural(world, turn_taking)
    turn_taking.script_decisions("speak", thread_id=thread_id)
    turn_taking.script_reply(f"@everyone look, <@{world.alice.id}>!", thread_id=thread_id)
    world.chat.script_reply("@everyone look!")

    await say(world, world.alice, "watch this", turn_taking)

    [*_, line] = [m for m in world.channel.history() if m.webhook_id is not None]
    assert line.content.startswith("@everyone look")
    assert not line.mention_everyone
    posted = [r for r in world.env.http_requests if r.path.startswith("/webhooks/") and r.method == "POST"]
    assert posted and all(r.json["allowed_mentions"] == {"parse": []} for r in posted)


async def test_what_a_persona_learns_in_one_server_it_never_recalls_in_another(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    here = await natural(world, turn_taking)
    other = world.env.create_guild(name="Other Server")
    other_channel = other.create_text_channel("general")
    other_alice = other.add_member(world.env.create_user("alice"))
    admins = other.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    other_admin = other.add_member(world.env.create_user("olga"), roles=[admins])
    await other_admin.slash(other_channel, "enhance", sketch="Sam is a 30-year-old support main. Friendly.")
    await world.env.advance_time(15)
    world.chat.script_reply("Hi there.")
    await other_admin.slash(other_channel, "roleplay as", persona="Sam", mode="natural")
    await turn_taking.wait_open(count=2)
    there = next(thread for _, thread in turn_taking.threads if thread != here)

    await say(world, world.alice, "I main Thresh, by the way", turn_taking)
    await other_alice.send(other_channel, "hi Sam")
    await say(world, world.alice, "sam, what do I main?", turn_taking)

    banks = {call.body["thread_id"]: call.body["integrations"] for call in turn_taking.calls_of("open_thread")}
    assert banks[here] != banks[there]
    recalled = {
        call.body["thread_id"]: call for call in turn_taking.calls_of("submit_messages") if call.body["skip_decide"]
    }
    assert recalled  # both "hi Sam" and "sam, what do I main?" named Sam
    drafted = [str(request.messages[0]["content"]) for request in world.chat.requests]
    assert any('alice said "I main Thresh, by the way"' in prompt for prompt in drafted)
    assert sum("I main Thresh" in prompt for prompt in drafted) == 1  # only here, never in the other server


@pytest.mark.parametrize("settings_overrides", [{"roleplay_natural_daily_calls": 3}], indirect=True)
async def test_at_the_daily_cap_the_channel_is_told_once_and_the_persona_answers_only_when_named(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await speaking(world, turn_taking, "Sure.")
    await say(world, world.alice, "anyone?", turn_taking)  # a decision and a reply: 2 of 3
    await say(world, world.bob, "me", turn_taking)  # a decision: 3 of 3
    await say(world, world.alice, "still there?", turn_taking)  # at the cap: nobody asked
    world.chat.script_reply("Still here, Alice.")

    await say(world, world.alice, "sam?", turn_taking)

    [notice] = [text for text in bot_notices(world) if "turn-taking calls for today" in text]
    assert "3 turn-taking calls" in notice and "until tomorrow" in notice
    assert len(turn_taking.calls_of("submit_messages")) == 2
    assert persona_lines(world)[-1] == ("Sam", "Still here, Alice.")  # named: answered as in mention mode
    status = await world.alice.slash(world.channel, "roleplay status")
    assert "3 of 3 billable turn-taking calls" in status.response.content


@pytest.mark.parametrize(
    "settings_overrides", [{"humalike_max_connections": 2, "humalike_max_concurrent_starts": 1}], indirect=True
)
async def test_more_natural_personas_than_humalike_connections_all_listen_and_are_asked(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    for name in ("Sam", "Jinx", "Mira"):
        await world.enhance(sketch=f"{name} is a support main.", name=name)
        await world.env.advance_time(15)
        world.chat.script_reply(f"{name} here.")
        await world.admin.slash(world.channel, "roleplay as", persona=name, mode="natural")
    await turn_taking.wait_open(count=3)

    await say(world, world.alice, "roll call!", turn_taking)

    assert turn_taking.open_sockets() == 3  # each holds a connection: none may starve the others
    assert len(turn_taking.calls_of("submit_messages")) == 3


async def test_a_natural_turns_tokens_are_counted_with_the_servers_usage(
    world: World, turn_taking: FakeTurnTaking
) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hey all, Sam here.", usage=(100, 10))
    await world.admin.slash(world.channel, "roleplay as", persona="Sam", mode="natural")
    await turn_taking.wait_open()
    [(_, thread_id)] = [key for key in turn_taking.threads]
    turn_taking.script_decisions("speak", thread_id=thread_id)
    world.chat.script_reply("Clean hook.", usage=(50, 5))

    await say(world, world.alice, "that thresh hook was insane", turn_taking)

    assert persona_lines(world)[-1] == ("Sam", "Clean hook.")
    assert [row["tokens"] for row in await world.rows("SELECT tokens FROM chat_usage")] == [165]


@pytest.mark.parametrize(
    "settings_overrides", [{"roleplay_daily_tokens_per_guild": 100, "roleplay_natural_daily_calls": 50}], indirect=True
)
async def test_at_the_token_cap_a_natural_persona_drafts_nothing(world: World, turn_taking: FakeTurnTaking) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hey all, Sam here.", usage=(90, 20))  # past the cap of 100
    await world.admin.slash(world.channel, "roleplay as", persona="Sam", mode="natural")
    await turn_taking.wait_open()
    [(_, thread_id)] = [key for key in turn_taking.threads]
    turn_taking.script_decisions("speak", thread_id=thread_id)

    await say(world, world.alice, "that thresh hook was insane", turn_taking)

    assert len(world.chat.requests) == 1  # the greeting only
    assert persona_lines(world) == [("Sam", "Hey all, Sam here.")]
    assert [text for text in bot_notices(world) if text.startswith("🪫")]
