"""The stand-in holds the bot to Discord's schema, checking each body at once or, for benchmarks, afterwards."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.wire.standin import API_PREFIX, DiscordStandIn, InteractionRecord, serve

# A message carries at most 10 embeds in Discord's schema.
INVALID = {"content": "hi", "embeds": [{"title": "one too many"}] * 11}
VALID = {"content": "hello"}


async def post_message(standin: DiscordStandIn, body: dict[str, Any]) -> int:
    guild = standin.add_guild()
    channel = standin.add_channel(guild, "general")
    async with (
        serve(standin) as base,
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}{API_PREFIX}/channels/{channel.id}/messages",
            json=body,
            headers={"Authorization": f"Bot {standin.token}"},
        ) as response,
    ):
        return response.status


async def test_an_invalid_body_is_refused_and_recorded_at_once() -> None:
    standin = DiscordStandIn()

    assert await post_message(standin, INVALID) == 400
    assert [failure.template for failure in standin.schema_failures] == ["/channels/{channel_id}/messages"]


@pytest.mark.parametrize(("body", "failures"), [(INVALID, 1), (VALID, 0)])
async def test_deferred_checks_find_the_same_problems_once_run(body: dict[str, Any], failures: int) -> None:
    standin = DiscordStandIn(defer_checks=True)

    await post_message(standin, body)
    assert standin.schema_failures == []  # nothing checked while the clock runs

    standin.run_deferred_checks()
    assert len(standin.schema_failures) == failures
    assert standin.answer_failures == []  # our own answer follows the schema too


async def test_deferred_checks_find_a_schema_problem_sent_in_a_burst_even_one_the_route_cannot_serve() -> None:
    # Deferred, an invalid body is not refused: this one (an embed that is not an object) reaches the
    # route, which trusts the schema and fails on it. It must still be recorded and checked.
    breaking = {"content": "hi", "embeds": ["not an embed"]}
    standin = DiscordStandIn(defer_checks=True)
    guild = standin.add_guild()
    channel = standin.add_channel(guild, "general")
    url = f"{API_PREFIX}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {standin.token}"}
    burst = [VALID] * 30 + [breaking] + [VALID] * 30

    async with serve(standin) as base, aiohttp.ClientSession() as session:

        async def post(body: dict[str, Any]) -> int:
            async with session.post(f"{base}{url}", json=body, headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(post(body) for body in burst))
    assert standin.schema_failures == []  # nothing checked during the burst

    standin.run_deferred_checks()
    assert [failure.body for failure in standin.schema_failures] == [breaking]
    assert statuses.count(200) == 60
    assert len(standin.calls) == len(burst)  # the one the route could not serve is recorded too


async def test_a_callback_after_discords_answer_window_is_refused_with_10062_and_counted() -> None:
    standin = DiscordStandIn()
    standin.interaction_answer_window = 0.5
    standin.global_commands = [{"id": str(standin.ids.next()), "name": "ping", "type": 1, "options": []}]
    guild = standin.add_guild()
    channel = standin.add_channel(guild, "general")
    member = standin.add_member(guild, "alice")
    in_time = await standin.send_command("ping", user=member, channel=channel)
    late = await standin.send_command("ping", user=member, channel=channel)
    late.created_at -= 1.0  # created a second ago: past the window

    async with serve(standin) as base, aiohttp.ClientSession() as session:

        async def answer(record: InteractionRecord) -> tuple[int, Any]:
            async with session.post(
                f"{base}{API_PREFIX}/interactions/{record.id}/{record.token}/callback",
                json={"type": 4, "data": {"content": "pong"}},
            ) as response:
                return response.status, await response.json() if response.status != 204 else None

        assert (await answer(in_time))[0] == 204
        assert await answer(late) == (404, {"code": 10062, "message": "Unknown interaction"})

    assert standin.late_callbacks_refused == 1
    assert (in_time.answered, late.answered) == (True, False)
    assert in_time.settled and late.settled  # neither is still waiting for the bot


async def channel_webhook(standin: DiscordStandIn, base: str, session: aiohttp.ClientSession) -> tuple[str, int]:
    """A webhook the bot makes in a new channel: its execute URL, and the channel's id."""
    channel = standin.add_channel(standin.add_guild(), "general")
    async with session.post(
        f"{base}{API_PREFIX}/channels/{channel.id}/webhooks",
        json={"name": "voices"},
        headers={"Authorization": f"Bot {standin.token}"},
    ) as response:
        webhook = await response.json()
    return f"{base}{API_PREFIX}/webhooks/{webhook['id']}/{webhook['token']}", channel.id


@pytest.mark.parametrize(("with_components", "kept"), [(True, True), (False, False)])
async def test_a_webhook_message_keeps_its_button_only_when_with_components_is_asked(
    with_components: bool, kept: bool
) -> None:
    standin = DiscordStandIn()
    stop = {"type": 1, "components": [{"type": 2, "style": 4, "label": "Stop", "custom_id": "stop"}]}
    async with serve(standin) as base, aiohttp.ClientSession() as session:
        webhook_url, _ = await channel_webhook(standin, base, session)
        async with session.post(
            f"{webhook_url}?wait=true&with_components={str(with_components).lower()}",
            json={"content": "hello", "username": "Sam", "components": [stop]},
        ) as response:
            assert response.status == 200
            posted = await response.json()

    assert bool(standin.messages[int(posted["id"])].components) is kept


async def test_an_attachment_link_is_refused_as_a_webhook_messages_avatar_as_discord_refuses_it() -> None:
    standin = DiscordStandIn()
    async with serve(standin) as base, aiohttp.ClientSession() as session:
        webhook_url, channel_id = await channel_webhook(standin, base, session)
        url = f"{webhook_url}?wait=true"

        async def post(avatar_url: str) -> int:
            body = {"content": "hello", "username": "Sam", "avatar_url": avatar_url}
            async with session.post(url, json=body) as response:
                return response.status

        expiring = await post(f"{base}/attachments/{channel_id}/1/sam.png?ex=65f0&is=65e0&hm=ab")
        lasting = await post("https://cdn.discordapp.com/avatars/1/0a1b2c.png?size=1024")

    assert (expiring, lasting) == (400, 200)
