"""The avatar store, on SQLite and PostgreSQL: bytes kept whole, and never reached from another server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.avatars import AvatarStore
from storage.database import Backend, Database
from storage.personas import PersonaStore
from tests.databases import BACKENDS, fresh_database
from tests.factories import new_persona

GUILD, OTHER_GUILD = 10, 20
PICTURE = bytes(range(256)) * 40  # every byte value, NUL included


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend: Backend = request.param
    async with fresh_database(backend, tmp_path) as db:
        yield db


async def saved(database: Database) -> tuple[AvatarStore, int]:
    persona = await PersonaStore(database).save_imported(new_persona(GUILD, "Sam", created_at=1.0))
    store = AvatarStore(database)
    await store.set(
        GUILD,
        persona.id,
        image=PICTURE,
        content_type="image/png",
        source="upload",
        link=None,
        hosted_url="https://cdn.discordapp.com/avatars/1/abc.png?size=1024",
        holder_webhook_id=1,
        now=5.0,
    )
    return store, persona.id


async def test_a_picture_is_kept_byte_for_byte_and_replacing_it_returns_the_old_holder(database: Database) -> None:
    store, persona_id = await saved(database)

    before = await store.set(
        GUILD,
        persona_id,
        image=b"new",
        content_type="image/gif",
        source="link",
        link="https://example.com/sam.gif",
        hosted_url=None,
        holder_webhook_id=None,
        now=6.0,
    )

    assert before is not None and before.image == PICTURE and before.holder_webhook_id == 1
    now = await store.get(GUILD, persona_id)
    assert now is not None and (now.image, now.source, now.hosted_url) == (b"new", "link", None)


async def test_another_servers_persona_avatar_is_never_read_set_or_cleared(database: Database) -> None:
    store, persona_id = await saved(database)

    assert await store.get(OTHER_GUILD, persona_id) is None
    assert await store.hosted_urls(OTHER_GUILD, [persona_id]) == {}
    assert await store.clear(OTHER_GUILD, persona_id) is None
    with pytest.raises(LookupError):
        await store.set(
            OTHER_GUILD,
            persona_id,
            image=b"evil",
            content_type="image/png",
            source="upload",
            link=None,
            hosted_url=None,
            holder_webhook_id=None,
            now=7.0,
        )
    kept = await store.get(GUILD, persona_id)
    assert kept is not None and kept.image == PICTURE


async def test_a_late_hosting_of_a_replaced_picture_writes_nothing(database: Database) -> None:
    store, persona_id = await saved(database)
    first = await store.get(GUILD, persona_id)
    assert first is not None
    await store.set(
        GUILD,
        persona_id,
        image=b"newer",
        content_type="image/png",
        source="upload",
        link=None,
        hosted_url=None,
        holder_webhook_id=None,
        now=8.0,
    )

    late = "https://cdn.discordapp.com/avatars/2/x.png"
    assert not await store.set_hosted(first, hosted_url=late, holder_webhook_id=2)
    current = await store.get(GUILD, persona_id)
    assert current is not None and current.hosted_url is None


async def test_deleting_the_persona_deletes_its_avatar(database: Database) -> None:
    _, persona_id = await saved(database)

    await PersonaStore(database).delete(persona_id)

    assert await database.fetch_all("SELECT persona_id FROM persona_avatars") == []
