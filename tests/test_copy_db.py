"""`python -m bot copy-db`: a server's data moves from the SQLite file into PostgreSQL, whole."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.copy_db import copy_db
from storage.casts import CastStore
from storage.database import Database, open_database
from storage.jobs import JobStore
from storage.models import JobKind, NewPersona
from storage.natural import NaturalStore, PlannedPiece
from storage.personas import PersonaStore
from storage.roleplay import GuildRoleplaySettings, RoleplayStore
from storage.sqlite import SqliteDatabase
from tests.databases import postgres_schema
from tests.factories import new_persona

GUILD = 10
NOW = 1_767_225_600.5
TABLES = (
    "jobs",
    "personas",
    "casts",
    "cast_members",
    "roleplay_sessions",
    "persona_messages",
    "channel_webhooks",
    "guild_roleplay_settings",
    "natural_threads",
    "natural_deliveries",
    "natural_planned",
    "natural_usage",
    "channel_notices",
)


def persona(name: str, enhancement_id: str | None) -> NewPersona:
    fields = {"age": "30", "quote": "Ünïcode — “quoted”"}
    return new_persona(GUILD, name, created_at=NOW, creator_id=20, enhancement_id=enhancement_id, fields=fields)


async def fill_every_table(database: Database) -> None:
    """One or more rows of every kind: jobs of each state and kind, personas, a cast, roleplay, natural mode."""
    jobs, personas = JobStore(database), PersonaStore(database)
    job_args = {"guild_id": GUILD, "channel_id": 30, "grounding": "off", "requested_name": None, "max_in_flight": 9}
    sam_job = await jobs.create(user_id=20, sketch="Sam", created_at=NOW, user_name="alice", **job_args)
    await jobs.mark_started(sam_job.id, enhancement_id="enh-1", started_at=NOW + 1, deadline_at=NOW + 1800)
    sam = (await personas.save_enhanced(sam_job.id, persona("Sam", "enh-1"))).persona
    failed = await jobs.create(user_id=21, sketch="Bad", created_at=NOW + 2, **job_args)
    await jobs.finish_failed(failed.id, code="provider_error", detail="upstream", finished_at=NOW + 3)
    await jobs.create(user_id=21, sketch="Bad", created_at=NOW + 4, retry_of=failed.id, **job_args)
    await personas.save_imported(persona("Aria", None))
    cast_job = await jobs.create(
        user_id=22, sketch="A crew", created_at=NOW + 5, kind=JobKind.POPULATION, cast_size=2, **job_args
    )
    await CastStore(database).save_population(
        cast_job, cast_name="Crew", members=[persona("Mo", None), persona("Jo", None)], now=NOW + 6
    )
    roleplay = RoleplayStore(database)
    session = await roleplay.start(
        guild_id=GUILD, channel_id=30, persona_id=sam.id, mode="always", started_by=20, now=NOW, max_active_in_guild=5
    )
    await roleplay.record_message(
        message_id=2**62 + 5, channel_id=30, persona_id=sam.id, session_id=session.id, now=NOW + 7
    )
    await roleplay.remember_webhook(30, 2**60 + 1, "webhook-token")
    await roleplay.save_guild_settings(GUILD, GuildRoleplaySettings(starter_role_id=77, allowed_channels=(30, 31)))
    natural = NaturalStore(database)
    thread = await natural.thread_id(guild_id=GUILD, channel_id=30, persona_id=sam.id, now=NOW)
    await natural.thread_id(guild_id=GUILD, channel_id=31, persona_id=sam.id, now=NOW + 8)
    # Ids whose byte order is not a locale's (case, punctuation): copy-db's checksums read them in key order.
    for message_id in ("m_b", "M-a", "m-A", "mZ"):
        await natural.claim_delivery(message_id, thread_id=thread, now=NOW + 9)
    await natural.delivered("m_b", 2**62 + 9)
    await natural.plan(thread, [PlannedPiece(f"{thread}/3/{n}", f"piece {n}", n, NOW + 10 + n) for n in range(2)])
    await natural.add_calls(guild_id=GUILD, persona_id=sam.id, day="2026-01-01", calls=3)
    await natural.add_calls(guild_id=GUILD, persona_id=sam.id, day="2025-12-31")
    await natural.claim_notice(channel_id=30, day="2026-01-01", kind="daily_cap")
    await natural.claim_notice(channel_id=30, day="2026-01-01", kind="out_of_credits")


@pytest.fixture
async def source_path(tmp_path: Path) -> Path:
    """An SQLite file with rows in every table, closed, as a stopped bot leaves it."""
    path = tmp_path / "bot.sqlite3"
    source = await SqliteDatabase.open(path)
    await fill_every_table(source)
    await source.close()
    return path


async def rows_of(database: Database, table: str) -> list[dict[str, object]]:
    return [dict(row) for row in await database.fetch_all(f"SELECT * FROM {table}")]


async def test_every_row_of_every_table_arrives_with_its_id_and_timestamps(source_path: Path) -> None:

    async with postgres_schema() as url:
        out = io.StringIO()
        assert await copy_db(source_path, url, out) == 0

        source, target = await SqliteDatabase.open(source_path), await open_database(url=url, path=source_path)
        try:
            for table in TABLES:
                expected = sorted(map(repr, await rows_of(source, table)))
                assert expected, f"the fixture left {table} empty"
                assert sorted(map(repr, await rows_of(target, table))) == expected, table
            # New rows number on after the copied ones instead of clashing with them.
            later = await PersonaStore(target).save_imported(persona("Newcomer", None))
            highest = await source.fetch_one("SELECT MAX(id) FROM personas")
            assert highest is not None and later.id == highest[0] + 1
        finally:
            await source.close()
            await target.close()

    report = out.getvalue()
    for table in TABLES:
        assert f"{table:<24} [{'#' * 30}] 100%" in report  # its progress bar, full
    assert "Every table matches" in report and "MISMATCH" not in report


@pytest.mark.parametrize("version", [1, 2, 3, 7, 8])
async def test_a_file_left_by_an_earlier_release_copies_whole(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(Path(__file__).parent / "data" / f"schema-{version}.sqlite3", path)

    async with postgres_schema() as url:
        out = io.StringIO()
        assert await copy_db(path, url, out) == 0
        target = await open_database(url=url, path=path)
        try:
            [copied] = await rows_of(target, "personas")
        finally:
            await target.close()

    assert (copied["id"], copied["name"], copied["created_at"]) == (1, "Sam Okafor", 1767225600.0)
    assert "Every table matches" in out.getvalue()


async def test_a_second_copy_is_refused_and_copies_nothing_twice(source_path: Path) -> None:

    async with postgres_schema() as url:
        assert await copy_db(source_path, url, io.StringIO()) == 0
        again = io.StringIO()
        assert await copy_db(source_path, url, again) == 1
        target = await open_database(url=url, path=source_path)
        try:
            counts = {table: len(await rows_of(target, table)) for table in ("jobs", "personas", "casts")}
        finally:
            await target.close()

    assert "already holds data (4 jobs, 4 personas, 1 casts" in again.getvalue()
    assert "Nothing was copied" in again.getvalue()
    assert counts == {"jobs": 4, "personas": 4, "casts": 1}


async def test_the_command_line_copies_from_database_path(
    source_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here: the environment alone, and no tokens needed
    monkeypatch.setenv("DATABASE_PATH", str(source_path))

    async with postgres_schema() as url:
        code = await asyncio.to_thread(main, ["copy-db", "--to", url])  # main runs its own event loop
        target = await open_database(url=url, path=source_path)
        try:
            personas = len(await rows_of(target, "personas"))
        finally:
            await target.close()

    assert (code, personas) == (0, 4)


def test_copy_db_without_a_postgresql_url_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["copy-db", "--to", "mysql://somewhere"])
    assert "copy-db needs --to postgresql://" in capsys.readouterr().err
