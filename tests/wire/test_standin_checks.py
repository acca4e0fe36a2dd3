"""The stand-in holds the bot to Discord's schema, checking each body at once or, for benchmarks, afterwards."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.wire.standin import API_PREFIX, DiscordStandIn, serve

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
