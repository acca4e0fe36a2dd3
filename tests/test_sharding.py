"""SHARD_COUNT and SHARD_IDS: which shards a process runs, and the one process that publishes commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.clock import wall_clock
from bot.settings import SettingsError, load_settings
from bot.sharding import parse_shard_ids, shard_of
from tests.conftest import World
from tests.factories import new_persona


@pytest.mark.parametrize(
    ("text", "ids"),
    [("0", [0]), ("0-3", [0, 1, 2, 3]), ("4-7", [4, 5, 6, 7]), ("0,2,5", [0, 2, 5]), ("6, 0-1", [0, 1, 6])],
)
def test_shard_ids_are_read_as_ids_and_ranges(text: str, ids: list[int]) -> None:
    assert parse_shard_ids(text) == ids


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"SHARD_IDS": "0-1"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1-2"}, "shard 2 is not below SHARD_COUNT=2"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, "runs backwards"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "one"}, "'one' is not a shard id"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0,0"}, "listed twice"),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT"),
    ],
)
def test_a_wrong_shard_setting_is_told_in_one_line(
    values: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("DISCORD_TOKEN", "x")
    monkeypatch.setenv("HUMALIKE_TOKEN", "y")
    for key, value in values.items():
        monkeypatch.setenv(key, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert said in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_server_is_on_the_shard_discord_routes_it_to() -> None:
    guild_id = 197038439483310086  # Discord's documented example
    assert shard_of(guild_id, 1) == 0
    assert shard_of(guild_id, 2) == (guild_id >> 22) % 2


def commands_published(world: World) -> list[Any]:
    return [request for request in world.env.http_requests if request.method == "PUT" and "/commands" in request.path]


@pytest.mark.parametrize("settings_overrides", [{"shard_count": 2, "shard_ids": "1"}])
async def test_a_process_without_shard_0_does_not_publish_the_commands(world: World) -> None:
    assert world.bot.shard_ids == [1]
    assert commands_published(world) == []


@pytest.mark.parametrize("settings_overrides", [{"shard_count": 2, "shard_ids": "0"}])
async def test_the_process_with_shard_0_publishes_the_commands(world: World) -> None:
    assert world.bot.shard_ids == [0]
    assert len(commands_published(world)) == 1


async def test_one_process_runs_every_shard_by_default(world: World) -> None:
    assert world.settings.shard_count is None and world.bot.shard_ids is None
    assert len(commands_published(world)) == 1


ON_SHARD_0, ON_SHARD_1 = 2 << 22, 3 << 22  # server ids whose events Discord routes to shard 0 and 1 of 2


@pytest.mark.parametrize("settings_overrides", [{"shard_count": 2, "shard_ids": "1"}])
async def test_after_a_restart_a_process_takes_up_only_the_roleplay_of_its_own_shards(world: World) -> None:
    persona = await world.bot.personas.save_imported(new_persona(ON_SHARD_0, "Sam", created_at=wall_clock()))
    for guild_id, channel_id in ((ON_SHARD_0, 100), (ON_SHARD_1, 200)):
        await world.bot.roleplay_store.start(
            guild_id=guild_id,
            channel_id=channel_id,
            persona_id=persona.id,
            mode="mention",
            started_by=1,
            now=wall_clock(),
            max_active_in_guild=5,
        )

    bot = await world.restart()

    assert bot.roleplay.in_channel(100) == []  # shard 0's process speaks there
    assert [session.persona_name for session in bot.roleplay.in_channel(200)] == ["Sam"]
