"""/roleplay: a saved persona speaks in a channel through a webhook, in its own name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World


def persona_messages(world: World, channel: Any = None) -> list[Any]:
    return [m for m in (channel or world.channel).history() if m.webhook_id is not None]


async def start(world: World, persona: str = "Sam", **options: Any) -> Any:
    return await world.admin.slash(world.channel, "roleplay as", persona=persona, **options)


async def test_a_persona_greets_the_channel_in_its_own_name(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hey all, Sam here. Who's queueing?")

    result = await start(world)

    assert not result.ephemeral
    assert "Sam" in result.response.content
    [greeting] = persona_messages(world)
    assert greeting.author.name == "Sam"
    assert greeting.content == "Hey all, Sam here. Who's queueing?"
    [request] = world.chat.requests
    assert request.messages[0]["role"] == "system"
    assert request.messages[0]["content"].startswith("You are Sam Okafor")
    assert request.stream is True


async def test_a_persona_answers_when_named_and_sees_the_conversation(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi!")
    await start(world)
    await world.alice.send(world.channel, "anyone up for ranked?")  # not addressed: no answer
    world.chat.script_reply("Always, Alice. Thresh lantern incoming.")

    await world.alice.send(world.channel, "sam, you in?")

    replies = persona_messages(world)
    assert [m.content for m in replies] == ["Hi!", "Always, Alice. Thresh lantern incoming."]
    history = world.chat.requests[-1].messages
    assert history[-2] == {"role": "assistant", "content": "Hi!"}
    assert history[-1]["role"] == "user"
    assert "alice: anyone up for ranked?" in history[-1]["content"]
    assert "alice: sam, you in?" in history[-1]["content"]
    assert len(world.chat.requests) == 2


async def test_a_reply_to_a_persona_message_reaches_it(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    [greeting] = persona_messages(world)
    world.chat.script_reply("Sure thing.")

    await world.alice.send(world.channel, "can you help me?", reply_to=greeting)

    assert persona_messages(world)[-1].content == "Sure thing."


async def test_always_mode_answers_every_member_message(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")

    await world.alice.send(world.channel, "gg")
    await world.bob.send(world.channel, "that was close")

    assert len(persona_messages(world)) == 3  # greeting + two answers


async def test_with_two_personas_a_named_one_answers_alone_and_sees_the_other_as_another(world: World) -> None:
    await world.make_persona("Sam")
    await world.enhance(sketch="Jinx is a chaotic ADC main who loves rockets.", name="Jinx")
    await world.env.advance_time(15)
    world.chat.script_reply("Sam reporting.")
    await start(world, persona="Sam")
    world.chat.script_reply("BOOM. Jinx is here.")
    await start(world, persona="Jinx")
    world.chat.script_reply("Rockets, obviously.")

    await world.alice.send(world.channel, "Jinx, rockets or minigun?")

    assert [m.author.name for m in persona_messages(world)] == ["Sam", "Jinx", "Jinx"]
    history = world.chat.requests[-1].messages
    assert "Jinx" in history[0]["content"]
    joined = "\n".join(m["content"] for m in history[1:])
    assert "Sam: Sam reporting." in joined  # another persona's line, labelled as theirs
    assert {"role": "assistant", "content": "BOOM. Jinx is here."} in history


async def test_a_persona_never_pings_anyone(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply(f"@everyone @here listen to {world.alice.mention}!")

    await start(world)

    [greeting] = persona_messages(world)
    assert "@everyone" in greeting.content
    assert not greeting.mention_everyone
    sent = [r for r in world.env.http_requests if r.path.startswith("/webhooks/") and r.method in ("POST", "PATCH")]
    assert sent
    assert all(r.json["allowed_mentions"] == {"parse": []} for r in sent)


async def test_a_long_reply_continues_in_a_new_message_at_a_sentence(world: World) -> None:
    await world.make_persona("Sam")
    sentence = "Warding the river brush wins games more often than people think. "
    world.chat.script_reply(sentence * 50, chunk_size=200)  # ~3,250 characters

    await start(world)

    parts = [m.content for m in persona_messages(world)]
    assert len(parts) == 2
    assert all(len(part) <= 2000 for part in parts)
    assert parts[0].endswith("think.")
    assert " ".join(parts).split() == (sentence * 50).split()


async def test_a_webhook_deleted_by_a_moderator_is_made_again(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    for webhook in list(world.env.backend.webhooks.values()):
        world.env.backend.delete_webhook(webhook.id)
    world.chat.script_reply("Still here.")

    await world.alice.send(world.channel, "Sam?")

    assert persona_messages(world)[-1].content == "Still here."
    assert len(world.env.backend.webhooks) == 1


async def test_a_channel_with_fifteen_webhooks_is_refused_at_start(world: World) -> None:
    await world.make_persona("Sam")
    world.env.inject_error(
        "POST", "/channels/*/webhooks", status=400, code=30007, message="Maximum number of webhooks reached (15)"
    )

    result = await start(world)

    assert result.ephemeral
    assert "15 webhooks" in result.response.content
    assert len(world.refusals()) == 1


async def test_without_manage_webhooks_roleplay_is_refused_at_start(world: World) -> None:
    import discord

    await world.make_persona("Sam")
    locked = world.guild.create_text_channel(
        "no-webhooks", overwrites={world.bot.user: discord.PermissionOverwrite(manage_webhooks=False)}
    )

    result = await world.admin.slash(locked, "roleplay as", persona="Sam")

    assert result.ephemeral
    assert "Manage Webhooks" in result.response.content
    assert len(world.refusals()) == 1


@pytest.mark.parametrize("settings_overrides", [{"chat_model_base_url": None, "chat_model_name": None}])
async def test_without_a_chat_model_roleplay_says_how_to_set_one_up(world: World) -> None:
    await world.make_persona("Sam")

    result = await start(world)

    assert result.ephemeral
    assert "CHAT_MODEL_BASE_URL" in result.response.content
    assert len(world.refusals()) == 1


async def test_members_without_manage_server_cannot_start_roleplay(world: World) -> None:
    await world.make_persona("Sam")

    result = await world.alice.slash(world.channel, "roleplay as", persona="Sam")

    assert result.ephemeral
    assert "Manage Server" in result.response.content
    assert len(world.refusals()) == 1
    assert persona_messages(world) == []


async def test_unknown_and_ambiguous_names_are_told_plainly(world: World) -> None:
    await world.make_persona("Sam Okafor")
    await world.enhance(sketch="Sam Rivera is a jungler.", name="Sam Rivera")
    await world.env.advance_time(15)

    unknown = await start(world, persona="Teemo")
    ambiguous = await start(world, persona="sam")
    partial = await start(world, persona="rivera")

    assert "no persona called “Teemo”" in unknown.response.content
    assert "could mean" in ambiguous.response.content
    assert not partial.ephemeral and "Sam Rivera" in partial.response.content
    assert len(world.refusals()) == 2


async def test_autocomplete_lists_this_servers_personas(world: World) -> None:
    await world.make_persona("Sam Okafor")

    choices = await world.admin.autocomplete(world.channel, "roleplay as", "persona", "sa")

    assert [c["value"] for c in choices] == ["Sam Okafor"]
    assert "by alice" in choices[0]["name"]


async def test_a_failing_model_gets_one_short_line_in_the_channel(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    world.chat.script_reply("I think we should", chunk_size=4, fail_after_chunks=2)

    await world.alice.send(world.channel, "Sam, plan?")

    last = world.channel.history()[-1]
    assert last.webhook_id is None
    assert last.content.startswith("⚠️ Sam could not answer")


@pytest.mark.parametrize("status", [429, 500, 401])
async def test_model_errors_are_told_not_swallowed(world: World, status: int) -> None:
    await world.make_persona("Sam")
    world.chat.fail_next(status)

    await start(world)

    last = world.channel.history()[-1]
    assert last.content.startswith("⚠️ Sam could not answer")
    assert "test-key" not in last.content


async def test_stop_and_status(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")

    status = await world.admin.slash(world.channel, "roleplay status")
    assert "Sam" in status.response.content and "always mode" in status.response.content

    stopped = await world.admin.slash(world.channel, "roleplay stop")
    assert "Sam" in stopped.response.content
    requests = len(world.chat.requests)
    await world.alice.send(world.channel, "hello?")
    assert len(world.chat.requests) == requests


async def test_sessions_survive_a_restart_and_remember_the_conversation(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Hi, I'm Sam.")
    await start(world)
    await world.alice.send(world.channel, "my favourite champion is Braum")

    await world.restart()
    world.chat.script_reply("Back already.")
    await world.alice.send(world.channel, "Sam, you there?")

    assert persona_messages(world)[-1].content == "Back already."
    history = world.chat.requests[-1].messages
    assert {"role": "assistant", "content": "Hi, I'm Sam."} in history
    assert "alice: my favourite champion is Braum" in history[-1]["content"]
    assert "alice: Sam, you there?" in history[-1]["content"]


async def test_an_idle_session_ends_with_a_line_saying_so(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)

    await world.wait(31 * 60)

    assert "left: nobody talked with them for 30 minutes" in world.channel.history()[-1].content
    requests = len(world.chat.requests)
    await world.alice.send(world.channel, "Sam?")
    assert len(world.chat.requests) == requests


async def test_the_bot_does_not_answer_other_bots(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")
    robot = world.guild.add_member(world.env.create_user("robot", bot=True))
    requests = len(world.chat.requests)

    await robot.send(world.channel, "Sam, beep boop")

    assert len(world.chat.requests) == requests


async def test_the_channel_shows_typing_until_the_first_words(world: World) -> None:
    await world.make_persona("Sam")

    await start(world)

    paths = [(r.method, r.path) for r in world.env.http_requests]
    typing = paths.index(("POST", f"/channels/{world.channel.id}/typing"))
    first_words = next(
        i for i, (method, path) in enumerate(paths) if method == "POST" and path.startswith("/webhooks/")
    )
    assert typing < first_words


@pytest.mark.parametrize("settings_overrides", [{"roleplay_channel_cooldown_seconds": 30}])
async def test_replies_in_a_channel_keep_the_cooldown_apart(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")  # the greeting starts the cooldown
    await world.env.advance_time(31)

    await world.alice.send(world.channel, "first")
    await world.alice.send(world.channel, "second")
    assert len(persona_messages(world)) == 2  # greeting + "first"; "second" waits out the cooldown

    await world.env.advance_time(31)
    assert len(persona_messages(world)) == 3
    assert "second" in world.chat.requests[-1].messages[-1]["content"]


async def test_threads_work_like_channels(world: World) -> None:
    await world.make_persona("Sam")
    created = world.env.backend.create_thread(world.channel.id, "game night", world.admin.id)
    await world.env.settle()
    thread = next(t for t in world.channel.threads if t.id == created.id)
    world.chat.script_reply("Thread Sam, ready.")

    await world.admin.slash(thread, "roleplay as", persona="Sam")
    world.chat.script_reply("In the thread, as asked.")
    await world.alice.send(thread, "sam, where are you?")

    # simcord files a webhook message under the webhook's own channel whatever its thread_id, so
    # check what the bot asked Discord for: the parent's one webhook, every call aimed at the thread.
    calls = [r for r in world.env.http_requests if "simcord_webhook" in r.path]
    assert [r.method for r in calls] == ["POST", "PATCH", "POST", "PATCH"]
    assert all(r.params.get("thread_id") == thread.id for r in calls)
    assert [r.json["content"] for r in calls if r.method == "PATCH"] == [
        "Thread Sam, ready.",
        "In the thread, as asked.",
    ]
    assert len(world.env.backend.webhooks) == 1
    webhook_id = int(calls[0].path.split("/")[2])
    assert world.env.backend.webhooks[webhook_id].channel_id == world.channel.id


@pytest.mark.parametrize("settings_overrides", [{"roleplay_max_active_per_guild": 1}])
async def test_the_server_wide_limit_of_active_personas_is_told(world: World) -> None:
    await world.make_persona("Sam")
    await world.enhance(sketch="Jinx is a chaotic ADC main.", name="Jinx")
    await world.env.advance_time(15)
    await start(world, persona="Sam")

    refused = await start(world, persona="Jinx")

    assert refused.ephemeral
    assert "1 personas are already active" in refused.response.content
    assert len(world.refusals()) == 1


async def test_admins_choose_who_may_start_and_where(world: World) -> None:
    await world.make_persona("Sam")
    players = world.guild.create_role("Players")
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[players])
    other = world.guild.create_text_channel("off-topic")

    await world.admin.slash(world.channel, "roleplay role", role=players)
    await world.admin.slash(world.channel, "roleplay channel", channel=world.channel, allowed=True)
    elsewhere = await world.admin.slash(other, "roleplay as", persona="Sam")
    by_player = await carol.slash(world.channel, "roleplay as", persona="Sam")
    by_member = await world.alice.slash(world.channel, "roleplay as", persona="Sam")

    assert "not allowed in this channel" in elsewhere.response.content
    assert not by_player.ephemeral
    assert "Manage Server permission or the" in by_member.response.content
    assert len(world.refusals()) == 2


async def test_only_admins_change_roleplay_settings(world: World) -> None:
    result = await world.alice.slash(world.channel, "roleplay channel", channel=world.channel, allowed=True)

    assert result.ephemeral
    assert "Manage Server" in result.response.content
    world.refusals()


async def test_mentioning_the_bot_reaches_the_persona(world: World) -> None:
    await world.make_persona("Sam")
    await start(world)
    world.chat.script_reply("You rang?")

    await world.alice.send(world.channel, f"{world.bot.user.mention} what do you think?")

    assert persona_messages(world)[-1].content == "You rang?"


async def test_a_streamed_reply_is_not_edited_more_than_once_a_second(world: World) -> None:
    await world.make_persona("Sam")
    world.chat.script_reply("Lantern out, hook ready, let's go win this lane together. " * 3, chunk_size=4)
    before = world.env.now()

    await start(world)

    [message] = persona_messages(world)
    edits = [r for r in world.env.http_requests if r.method == "PATCH" and r.path.endswith(f"/messages/{message.id}")]
    elapsed = (world.env.now() - before).total_seconds()
    assert len(world.chat.requests[-1].messages) >= 1
    # ~45 chunks arrived; the message was posted at the first words and edited at most once per second since.
    assert 1 <= len(edits) <= int(elapsed) + 1
    assert edits[-1].json["content"] == message.content


async def test_sessions_left_without_a_chat_model_stay_quiet_instead_of_failing(world: World) -> None:
    await world.make_persona("Sam")
    await start(world, mode="always")
    world.settings = world.settings.model_copy(update={"chat_model_base_url": None})  # removed from .env
    await world.restart()
    requests = len(world.chat.requests)

    await world.alice.send(world.channel, "anyone?")

    assert len(world.chat.requests) == requests
    assert world.env.errors == []


async def test_the_model_is_sent_only_the_start_of_a_very_long_system_prompt(world: World) -> None:
    import json

    lore = "The Rusty Anchor never closes. " * 5_000  # 155,000 characters: a card may hold this much
    card = {"name": "Mira", "description": lore, "personality": "warm"}
    await world.alice.slash(world.channel, "persona import", card=("mira.json", json.dumps(card).encode()))
    [persona] = await world.personas()
    assert len(persona["system_prompt"]) > 150_000

    await start(world, persona="Mira")

    [request] = world.chat.requests
    system = request.messages[0]["content"]
    limit = world.settings.roleplay_system_prompt_chars
    assert limit == 24_000
    assert system.startswith("You are Mira.\n\n## Description\nThe Rusty Anchor never closes.")
    assert len(system) < limit + 1_000  # the prompt's start, then the note on the setting
    assert "…\n\nYou are in #general" in system
    assert "Reply as Mira only" in system
