"""Who speaks next: a draw by talkativeness in `always` mode, personas answering each other within a
bound, and `/roleplay next` making one persona speak now."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import discord
import pytest

from tests.conftest import World
from tests.test_roleplay import persona_messages, start

NUDGE = "the innkeeper notices the stolen ring"


async def make(world: World, name: str, *, talkativeness: int | None = None) -> None:
    """A persona made as members make them; its talkativeness saved as `/persona edit` saves it."""
    await world.enhance(sketch=f"{name} is a regular at the Rusty Anchor.", name=name)
    await world.env.advance_time(15)
    if talkativeness is not None:
        persona = await world.bot.personas.get_by_name(world.guild.id, name)
        assert persona is not None
        await world.bot.personas.set_traits(persona, talkativeness=talkativeness, nsfw=False, now=0.0)


def speakers(world: World) -> list[str]:
    return [m.author.name for m in persona_messages(world)]


async def another_server(world: World) -> tuple[Any, Any, Any]:
    """A second server with a channel, an admin there and a member: none of them in the first."""
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    mallory = other.add_member(world.env.create_user("mallory"), roles=[owners])
    return other, lobby, mallory


# --- always mode: one persona answers, drawn by talkativeness -----------------------------------


async def test_in_always_mode_one_persona_answers_each_unaddressed_message_by_talkativeness(world: World) -> None:
    await make(world, "Sam", talkativeness=80)
    await make(world, "Jinx", talkativeness=40)
    await make(world, "Vi", talkativeness=0)
    for name in ("Sam", "Jinx", "Vi"):
        await start(world, persona=name, mode="always")
    world.bot.roleplay.rng.seed(7)
    greeted = len(persona_messages(world))

    for turn in range(24):
        await world.alice.send(world.channel, f"so what happens now? ({turn})")

    answers = speakers(world)[greeted:]
    assert len(answers) == 24  # exactly one answer to each message
    shares = Counter(answers)
    assert "Vi" not in shares  # talkativeness 0: only when named
    assert shares["Sam"] > shares["Jinx"] > 0
    # The persona that spoke last does not always answer the next message.
    assert any(before != after for before, after in itertools.pairwise(speakers(world)[greeted - 1 :]))
    stored = {p["name"]: p["talkativeness"] for p in await world.personas()}
    assert stored == {"Sam": 80, "Jinx": 40, "Vi": 0}


async def test_in_always_mode_a_named_persona_still_answers_even_at_talkativeness_zero(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Vi", talkativeness=0)
    await start(world, persona="Sam", mode="always")
    await start(world, persona="Vi", mode="always")
    world.chat.script_reply("Vi here, if you must.")

    await world.alice.send(world.channel, "Vi, are you awake?")

    assert speakers(world)[-1] == "Vi"
    assert persona_messages(world)[-1].content == "Vi here, if you must."
    assert speakers(world).count("Sam") == 1  # its greeting only: the named one answered alone


async def test_talkativeness_still_chooses_the_speaker_after_a_restart(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Vi", talkativeness=0)
    await start(world, persona="Sam", mode="always")
    await start(world, persona="Vi", mode="always")

    await world.restart()
    world.bot.roleplay.rng.seed(7)
    for turn in range(6):
        await world.alice.send(world.channel, f"what now? ({turn})")

    assert speakers(world)[2:] == ["Sam"] * 6  # Vi's 0, read back from storage, keeps it quiet


# --- personas answering each other, within ROLEPLAY_MAX_PERSONA_CHAIN ----------------------------


def two_personas_that_always_name_each_other(world: World, rounds: int) -> None:
    for _ in range(rounds):
        world.chat.script_reply("Jinx, your move.")
        world.chat.script_reply("Sam, back to you.")


async def test_personas_that_name_each_other_stop_at_the_chain_limit_until_a_member_speaks(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")
    await start(world, persona="Sam")
    await start(world, persona="Jinx")
    two_personas_that_always_name_each_other(world, rounds=5)
    before = len(world.chat.requests)

    await world.alice.send(world.channel, "Sam, start us off")
    await world.env.advance_time(60)

    # Sam answers Alice, then two persona-to-persona turns (the default limit), then silence.
    assert speakers(world)[2:] == ["Sam", "Jinx", "Sam"]
    assert persona_messages(world)[-1].content == "Jinx, your move."  # named, yet Jinx stays quiet
    assert len(world.chat.requests) == before + 3

    await world.bob.send(world.channel, "Jinx, your call")
    await world.env.advance_time(60)

    assert speakers(world)[5:] == ["Jinx", "Sam", "Jinx"]  # a member spoke: the count starts again
    assert len(world.chat.requests) == before + 6
    stored = await world.rows("SELECT COUNT(*) AS lines FROM persona_messages")
    assert stored == [{"lines": 2 + 6}]


@pytest.mark.parametrize("settings_overrides", [{"roleplay_max_persona_chain": 0}])
async def test_with_a_chain_limit_of_zero_personas_never_answer_each_other(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")
    await start(world, persona="Sam")
    await start(world, persona="Jinx")
    two_personas_that_always_name_each_other(world, rounds=2)

    await world.alice.send(world.channel, "Sam, start us off")
    await world.env.advance_time(60)

    assert speakers(world)[2:] == ["Sam"]


async def test_a_persona_naming_itself_does_not_answer_itself(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")
    await start(world, persona="Sam")
    await start(world, persona="Jinx")
    world.chat.script_reply("Sam always says: Sam never gives up.")

    await world.alice.send(world.channel, "Sam, motto?")
    await world.env.advance_time(60)

    assert speakers(world)[2:] == ["Sam"]


# --- /roleplay next ---------------------------------------------------------------------------


async def test_roleplay_next_makes_a_persona_speak_now_with_the_nudge_as_its_cue(world: World) -> None:
    await make(world, "Sam")
    await start(world, persona="Sam")
    world.chat.script_reply("Sam's eyes flick to the innkeeper, then to the ring.")

    result = await world.admin.slash(world.channel, "roleplay next", persona="sam", nudge=NUDGE)

    assert result.ephemeral
    assert result.response.content == "🎲 **Sam** will speak next."
    assert persona_messages(world)[-1].content == "Sam's eyes flick to the innkeeper, then to the ring."
    last_turn = world.chat.requests[-1].messages[-1]
    assert last_turn["role"] == "user"
    assert last_turn["content"].endswith(f"(What should happen now: {NUDGE})")
    stored = await world.rows("SELECT persona_id FROM persona_messages")
    assert len(stored) == 2  # the greeting and the nudged line, both remembered as Sam's


async def test_roleplay_next_without_a_nudge_is_an_ordinary_turn(world: World) -> None:
    await make(world, "Sam")
    await start(world, persona="Sam")

    await world.admin.slash(world.channel, "roleplay next", persona="Sam")

    assert len(persona_messages(world)) == 2
    assert "What should happen now" not in str(world.chat.requests[-1].messages)


async def test_whoever_started_a_persona_may_call_it_even_without_the_right_to_start(world: World) -> None:
    await make(world, "Sam")
    players = world.guild.create_role("Players")
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[players])
    await world.admin.slash(world.channel, "roleplay role", role=players)
    await carol.slash(world.channel, "roleplay as", persona="Sam")
    await world.admin.slash(world.channel, "roleplay role")  # back to Manage Server only

    by_starter = await carol.slash(world.channel, "roleplay next", persona="Sam")
    by_member = await world.bob.slash(world.channel, "roleplay next", persona="Sam", nudge="Sam falls asleep")

    assert by_starter.response.content == "🎲 **Sam** will speak next."
    assert "Only whoever started **Sam** here" in by_member.response.content
    assert by_member.ephemeral
    assert len(persona_messages(world)) == 2  # the greeting and carol's call; bob's was refused
    assert "Sam falls asleep" not in str(world.chat.requests)
    assert len(world.refusals()) == 1


async def test_roleplay_next_refuses_a_persona_not_speaking_here_and_says_who_is(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")
    elsewhere = world.guild.create_text_channel("tavern")

    nobody = await world.admin.slash(world.channel, "roleplay next", persona="Sam")
    await start(world, persona="Sam")
    not_here = await world.admin.slash(world.channel, "roleplay next", persona="Jinx")
    other_channel = await world.admin.slash(elsewhere, "roleplay next", persona="Sam")

    assert "No persona is speaking here" in nobody.response.content
    assert "“Jinx” is not speaking here. Speaking here: **Sam**." in not_here.response.content
    assert "No persona is speaking here" in other_channel.response.content
    assert all(r.ephemeral for r in (nobody, not_here, other_channel))
    assert len(persona_messages(world)) == 1  # Sam's greeting only
    assert len(world.refusals()) == 3


async def test_a_persona_of_one_server_cannot_be_made_to_speak_from_another(world: World) -> None:
    await make(world, "Sam")
    await start(world, persona="Sam")
    _, lobby, mallory = await another_server(world)
    requests = len(world.chat.requests)

    refused = await mallory.slash(lobby, "roleplay next", persona="Sam", nudge="Sam insults everyone")
    choices = await mallory.autocomplete(lobby, "roleplay next", "persona", "sa")

    assert refused.ephemeral
    assert "No persona is speaking here" in refused.response.content
    assert choices == []
    assert len(world.chat.requests) == requests
    assert len(persona_messages(world)) == 1
    assert persona_messages(world, lobby) == []
    assert len(world.refusals()) == 1


async def test_roleplay_next_autocompletes_the_personas_speaking_in_this_channel(world: World) -> None:
    await make(world, "Sam")
    await make(world, "Jinx")
    await make(world, "Samira")
    await start(world, persona="Sam")
    await start(world, persona="Jinx")

    everyone = await world.alice.autocomplete(world.channel, "roleplay next", "persona", "")
    typed = await world.alice.autocomplete(world.channel, "roleplay next", "persona", "SA")

    assert [c["value"] for c in everyone] == ["Sam", "Jinx"]
    assert [c["value"] for c in typed] == ["Sam"]  # Samira exists, but is not speaking here
