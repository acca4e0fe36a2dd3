"""Scenes and recaps in storage, on SQLite and PostgreSQL: per channel, never across servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.database import Backend, Database
from storage.roleplay import RoleplayStore
from storage.scenes import Recap, Scene, SceneStore, SessionSpan
from tests.databases import BACKENDS, fresh_database
from tests.factories import new_persona

GUILD = 1001
OTHER_GUILD = 2002
CHANNEL = 501
OTHER_CHANNEL = 502
ADA = 11
NOW = 1_767_225_600.0


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend: Backend = request.param
    async with fresh_database(backend, tmp_path) as db:
        yield db


@pytest.fixture
def scenes(database: Database) -> SceneStore:
    return SceneStore(database)


async def test_a_scene_is_set_replaced_and_cleared_per_channel(scenes: SceneStore) -> None:
    await scenes.set_scene(guild_id=GUILD, channel_id=CHANNEL, text="A tavern.", set_by=ADA, now=NOW)
    await scenes.set_scene(guild_id=GUILD, channel_id=OTHER_CHANNEL, text="A ship.", set_by=ADA, now=NOW)
    await scenes.set_scene(guild_id=GUILD, channel_id=CHANNEL, text="The docks.", set_by=12, now=NOW + 5)

    assert await scenes.scene(GUILD, CHANNEL) == Scene(CHANNEL, GUILD, "The docks.", 12, NOW + 5)
    assert await scenes.clear_scene(GUILD, CHANNEL) is True
    assert await scenes.clear_scene(GUILD, CHANNEL) is False
    assert await scenes.scene(GUILD, CHANNEL) is None
    assert (await scenes.scene(GUILD, OTHER_CHANNEL)) == Scene(OTHER_CHANNEL, GUILD, "A ship.", ADA, NOW)


async def test_a_recap_replaces_the_last_one_and_is_cleared_apart_from_the_scene(scenes: SceneStore) -> None:
    await scenes.set_scene(guild_id=GUILD, channel_id=CHANNEL, text="A tavern.", set_by=ADA, now=NOW)
    await scenes.set_recap(guild_id=GUILD, channel_id=CHANNEL, text="Week one.", written_by=ADA, now=NOW)
    await scenes.set_recap(guild_id=GUILD, channel_id=CHANNEL, text="Week two.", written_by=ADA, now=NOW + 7)

    assert await scenes.recap(GUILD, CHANNEL) == Recap(CHANNEL, GUILD, "Week two.", ADA, NOW + 7)
    assert await scenes.clear_recap(GUILD, CHANNEL) is True
    assert await scenes.recap(GUILD, CHANNEL) is None
    assert await scenes.scene(GUILD, CHANNEL) is not None


async def test_another_servers_id_reaches_no_scene_or_recap(scenes: SceneStore) -> None:
    await scenes.set_scene(guild_id=GUILD, channel_id=CHANNEL, text="A tavern.", set_by=ADA, now=NOW)
    await scenes.set_recap(guild_id=GUILD, channel_id=CHANNEL, text="Week one.", written_by=ADA, now=NOW)

    assert await scenes.scene(OTHER_GUILD, CHANNEL) is None
    assert await scenes.recap(OTHER_GUILD, CHANNEL) is None
    assert await scenes.clear_scene(OTHER_GUILD, CHANNEL) is False
    assert await scenes.clear_recap(OTHER_GUILD, CHANNEL) is False
    assert await scenes.scene(GUILD, CHANNEL) is not None
    assert await scenes.recap(GUILD, CHANNEL) is not None


async def test_session_spans_are_the_channels_own_newest_first(database: Database, scenes: SceneStore) -> None:
    from storage.personas import PersonaStore

    personas = PersonaStore(database)
    sam = await personas.save_imported(new_persona(GUILD, "Sam", created_at=NOW))
    jinx = await personas.save_imported(new_persona(GUILD, "Jinx", created_at=NOW))
    roleplay = RoleplayStore(database)
    first = await roleplay.start(
        guild_id=GUILD,
        channel_id=CHANNEL,
        persona_id=sam.id,
        mode="mention",
        started_by=ADA,
        now=NOW,
        max_active_in_guild=10,
    )
    await roleplay.end(first.id, now=NOW + 60, reason="stopped")
    await roleplay.start(
        guild_id=GUILD,
        channel_id=CHANNEL,
        persona_id=jinx.id,
        mode="narrator",
        started_by=ADA,
        now=NOW + 100,
        max_active_in_guild=10,
    )
    await roleplay.start(
        guild_id=GUILD,
        channel_id=OTHER_CHANNEL,
        persona_id=sam.id,
        mode="always",
        started_by=ADA,
        now=NOW + 200,
        max_active_in_guild=10,
    )

    assert await scenes.session_spans(GUILD, CHANNEL) == [SessionSpan(NOW + 100, None), SessionSpan(NOW, NOW + 60)]
    assert await scenes.session_spans(OTHER_GUILD, CHANNEL) == []
