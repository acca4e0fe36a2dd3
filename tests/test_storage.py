"""The database: migrations, jobs and their limits, personas saved once and named uniquely per guild."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.database import Backend, Database, migrations, open_database
from storage.jobs import AlreadyRetried, JobStore, TooManyJobs
from storage.models import Job, JobState, NewPersona
from storage.personas import PersonaStore, SavedPersona
from storage.sqlite import SqliteDatabase
from tests.databases import BACKENDS, database_location, fresh_database
from tests.fakes.humalike import sam_persona

GUILD = 1001
OTHER_GUILD = 2002
ALICE = 11
BOB = 22
SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
NOW = 1_767_225_600.0

_enhancement_ids = iter(range(1, 1_000_000))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def database(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    """Every store test runs on SQLite and on PostgreSQL, each time on an empty database."""
    async with fresh_database(backend, tmp_path) as db:
        yield db


@pytest.fixture
async def sqlite_database(db_path: Path) -> AsyncIterator[SqliteDatabase]:
    """For what only the SQLite backend does: its file, its pragmas, its group commit."""
    db = await SqliteDatabase.open(db_path)
    yield db
    await db.close()


@pytest.fixture
def jobs(database: Database) -> JobStore:
    return JobStore(database)


@pytest.fixture
def personas(database: Database) -> PersonaStore:
    return PersonaStore(database)


async def new_job(jobs: JobStore, *, user: int = ALICE, guild: int = GUILD, max_in_flight: int = 100, **kw: Any) -> Job:
    return await jobs.create(
        guild_id=guild,
        channel_id=5,
        user_id=user,
        sketch=SKETCH,
        grounding="off",
        requested_name=None,
        created_at=NOW,
        max_in_flight=max_in_flight,
        **kw,
    )


async def started_job(jobs: JobStore, **kw: Any) -> Job:
    job = await new_job(jobs, **kw)
    enhancement_id = f"00000000-0000-4000-8000-{next(_enhancement_ids):012d}"
    returned = await jobs.mark_started(
        job.id, enhancement_id=enhancement_id, started_at=NOW + 0.3, deadline_at=NOW + 1800
    )
    started = await jobs.get(job.id)
    assert started is not None and returned == started  # the write hands back the job as stored
    assert started.state is JobState.PENDING and started.enhancement_id == enhancement_id
    return started


async def save(personas: PersonaStore, job: Job, name: str = "Sam Okafor") -> SavedPersona:
    humalike = sam_persona()
    persona = NewPersona(
        guild_id=job.guild_id,
        name=name,
        creator_id=job.user_id,
        creator_name=job.user_name,
        enhancement_id=job.enhancement_id,
        humalike_persona_id=humalike["persona_id"],
        fields=humalike["fields"],
        system_prompt=humalike["system_prompt"],
        markdown=humalike["markdown"],
        sketch=job.sketch,
        grounding=job.grounding,
        created_at=NOW + 40,
    )
    return await personas.save_enhanced(job.id, persona)


async def count(database: Database, table: str) -> int:
    row = await database.fetch_one(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return row[0]


# --- Migrations ---------------------------------------------------------------------------------


async def test_migrations_create_the_schema_and_set_user_version(
    sqlite_database: SqliteDatabase, db_path: Path
) -> None:
    database = sqlite_database
    latest = max(version for version, _ in migrations())

    [main] = await database.fetch_all("PRAGMA database_list")
    assert main["file"] == str(db_path)
    assert await database.schema_version() == latest >= 1
    tables = {row[0] for row in await database.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "personas"} <= tables
    row = await database.fetch_one("PRAGMA journal_mode")
    assert row is not None and row[0] == "wal"


def test_both_backends_have_the_same_migration_numbers() -> None:
    assert [version for version, _ in migrations("postgresql")] == [version for version, _ in migrations("sqlite")]


async def test_postgresql_migrations_create_every_table_sqlite_has(tmp_path: Path) -> None:
    async with fresh_database("postgresql", tmp_path) as database:
        assert await database.schema_version() == max(version for version, _ in migrations("postgresql"))
        rows = await database.fetch_all(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    async with fresh_database("sqlite", tmp_path) as reference:
        expected = await reference.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {row[0] for row in rows} - {"schema_version"} == {row[0] for row in expected} - {"sqlite_sequence"}


async def test_reopening_keeps_the_data_and_does_not_rerun_migrations(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with database_location(backend, tmp_path) as (url, path):
        await _reopen_and_compare(url, path, caplog)


async def _reopen_and_compare(url: str | None, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storage")
    first = await open_database(url=url, path=db_path)
    job = await started_job(JobStore(first))
    saved = await save(PersonaStore(first), job)
    version = await first.schema_version()
    await first.close()
    assert "Applying database migration" in caplog.text
    caplog.clear()

    second = await open_database(url=url, path=db_path)
    try:
        assert "Applying database migration" not in caplog.text
        assert await second.schema_version() == version
        assert await PersonaStore(second).get(saved.persona.id) == saved.persona
        reread = await JobStore(second).get(job.id)
        assert reread is not None and reread.state is JobState.SUCCEEDED
        assert await second.migrate() == version
    finally:
        await second.close()


# --- Jobs ---------------------------------------------------------------------------------------


async def test_a_new_job_is_queued_with_what_the_user_asked(jobs: JobStore) -> None:
    job = await new_job(jobs, user=BOB)

    assert job.state is JobState.QUEUED
    assert (job.user_id, job.guild_id, job.sketch, job.grounding) == (BOB, GUILD, SKETCH, "off")
    assert job.enhancement_id is None and job.persona_id is None and job.retry_of is None
    assert await jobs.get(job.id) == job


async def test_max_in_flight_is_enforced_per_user(jobs: JobStore, database: Database) -> None:
    await new_job(jobs, user=ALICE, max_in_flight=2)
    await new_job(jobs, user=ALICE, max_in_flight=2)

    with pytest.raises(TooManyJobs) as raised:
        await new_job(jobs, user=ALICE, max_in_flight=2)

    assert raised.value.in_flight == 2
    assert await count(database, "jobs") == 2
    # Bob is not held back by Alice's jobs.
    await new_job(jobs, user=BOB, max_in_flight=2)
    await new_job(jobs, user=BOB, max_in_flight=2)
    assert await count(database, "jobs") == 4


async def test_finished_jobs_do_not_count_against_the_limit(
    jobs: JobStore, personas: PersonaStore, database: Database
) -> None:
    failed = await new_job(jobs, max_in_flight=2)
    succeeded = await started_job(jobs, max_in_flight=2)
    with pytest.raises(TooManyJobs):
        await new_job(jobs, max_in_flight=2)

    await jobs.finish_failed(failed.id, code="provider_error", detail=None, finished_at=NOW + 10)
    await new_job(jobs, max_in_flight=2)
    with pytest.raises(TooManyJobs):
        await new_job(jobs, max_in_flight=2)

    await save(personas, succeeded)
    await new_job(jobs, max_in_flight=2)
    assert await count(database, "jobs") == 4


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.RUNNING, JobState.STALLED])
async def test_started_running_and_stalled_jobs_count_against_the_limit(jobs: JobStore, state: JobState) -> None:
    job = await started_job(jobs, max_in_flight=1)
    await jobs.set_state(job.id, state)
    with pytest.raises(TooManyJobs):
        await new_job(jobs, max_in_flight=1)


async def test_a_queued_job_is_claimed_for_sending_once(jobs: JobStore) -> None:
    job = await new_job(jobs)

    first = await jobs.mark_sending(job.id)
    second = await jobs.mark_sending(job.id)

    assert first is not None and first.state is JobState.SENDING
    assert second is None  # whoever asks second must not send it: a start is billed
    with pytest.raises(TooManyJobs):  # a job being sent still counts against its member's limit
        await new_job(jobs, max_in_flight=1)


async def test_a_failed_job_can_be_retried_only_once(jobs: JobStore, database: Database) -> None:
    failed = await new_job(jobs)
    await jobs.finish_failed(failed.id, code="provider_error", detail=None, finished_at=NOW + 10)

    retry = await new_job(jobs, retry_of=failed.id)
    assert retry.retry_of == failed.id
    assert await jobs.retry_of(failed.id) == retry

    with pytest.raises(AlreadyRetried):
        await new_job(jobs, retry_of=failed.id)
    assert await count(database, "jobs") == 2
    # The refused retry left nothing half-written: the store still takes new jobs.
    await new_job(jobs)


async def test_attaching_the_reply_hands_back_the_job_as_stored(jobs: JobStore) -> None:
    job = await new_job(jobs)

    attached = await jobs.attach_reply(job.id, application_id=7, token="tok", token_expires_at=NOW + 900, message_id=9)

    assert attached == await jobs.get(job.id)
    assert attached is not None and (attached.interaction_token, attached.message_id) == ("tok", 9)
    assert await jobs.attach_reply(999_999, application_id=7, token="t", token_expires_at=NOW, message_id=1) is None


async def test_a_burst_of_concurrent_jobs_still_respects_each_members_limit(jobs: JobStore, database: Database) -> None:
    # Writes arriving together are committed together; each must still see the ones before it.
    outcomes = await asyncio.gather(
        *(new_job(jobs, user=user, max_in_flight=3) for user in [ALICE] * 10 + [BOB] * 10),
        return_exceptions=True,
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, TooManyJobs)]
    created = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    assert len(refused) == 14 and len(created) == 6
    assert len({job.id for job in created}) == 6
    rows = await database.fetch_all("SELECT user_id, COUNT(*) FROM jobs GROUP BY user_id ORDER BY user_id")
    assert [tuple(row) for row in rows] == [(ALICE, 3), (BOB, 3)]


async def test_a_write_that_fails_in_a_burst_fails_alone(jobs: JobStore, database: Database) -> None:
    failed = await new_job(jobs)
    await jobs.finish_failed(failed.id, code="provider_error", detail=None, finished_at=NOW + 10)

    outcomes = await asyncio.gather(
        new_job(jobs, user=BOB),
        new_job(jobs, retry_of=failed.id),
        new_job(jobs, retry_of=failed.id),  # the second retry breaks a unique constraint
        new_job(jobs, user=BOB),
        return_exceptions=True,
    )

    bobs, retries = [outcomes[0], outcomes[3]], [outcomes[1], outcomes[2]]
    assert [type(outcome) for outcome in bobs] == [Job, Job]
    if database.backend == "sqlite":  # one connection: the first to ask is the first served
        assert [type(outcome) for outcome in retries] == [Job, AlreadyRetried]
    else:  # a pool: either retry may win, but only one
        assert sorted(type(outcome).__name__ for outcome in retries) == ["AlreadyRetried", "Job"]
    assert await count(database, "jobs") == 4
    for outcome in outcomes:
        if isinstance(outcome, Job):
            assert await jobs.get(outcome.id) == outcome


async def test_writes_queued_together_share_commits(sqlite_database: SqliteDatabase) -> None:
    database = sqlite_database
    statements: list[str] = []
    await database.connection.set_trace_callback(statements.append)

    changed = await asyncio.gather(
        *(database.write("UPDATE jobs SET grounding = ? WHERE id = ?", ("web", index)) for index in range(50))
    )

    await database.connection.set_trace_callback(None)
    assert changed == [0] * 50
    commits = [sql for sql in statements if sql == "COMMIT"]
    assert 1 <= len(commits) < 10, statements


async def test_a_write_given_up_before_its_turn_is_not_made(jobs: JobStore, database: Database) -> None:
    first = asyncio.ensure_future(new_job(jobs, user=ALICE))
    abandoned = asyncio.ensure_future(new_job(jobs, user=BOB))
    await asyncio.sleep(0)  # both queued, the first group not yet taken
    abandoned.cancel()

    assert isinstance(await first, Job)
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    rows = await database.fetch_all("SELECT user_id FROM jobs")
    assert [row[0] for row in rows] == [ALICE]


async def test_closing_the_database_waits_for_queued_writes(db_path: Path) -> None:
    database = await SqliteDatabase.open(db_path)
    jobs = JobStore(database)
    pending = [asyncio.ensure_future(new_job(jobs, user=user)) for user in range(1, 21)]
    await asyncio.sleep(0)

    await database.close()

    assert all(isinstance(task.result(), Job) for task in pending)
    reopened = await SqliteDatabase.open(db_path)
    try:
        assert await count(reopened, "jobs") == 20
    finally:
        await reopened.close()


async def test_unfinished_returns_only_queued_pending_running_and_stalled_jobs(
    jobs: JobStore, personas: PersonaStore
) -> None:
    queued = await new_job(jobs)
    pending = await started_job(jobs)
    running = await started_job(jobs, user=BOB)
    await jobs.set_state(running.id, JobState.RUNNING)
    stalled = await started_job(jobs, guild=OTHER_GUILD)
    await jobs.set_state(stalled.id, JobState.STALLED)
    failed = await started_job(jobs)
    await jobs.finish_failed(failed.id, code="provider_error", detail=None, finished_at=NOW + 5)
    succeeded = await started_job(jobs)
    await save(personas, succeeded)

    unfinished = await jobs.unfinished()

    assert [job.id for job in unfinished] == [queued.id, pending.id, running.id, stalled.id]
    assert [job.state for job in unfinished] == [
        JobState.QUEUED,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.STALLED,
    ]


async def test_a_finished_job_does_not_go_back_to_running(jobs: JobStore) -> None:
    job = await started_job(jobs)
    await jobs.finish_failed(job.id, code="provider_error", detail="boom", finished_at=NOW + 5)

    await jobs.set_state(job.id, JobState.RUNNING)

    reread = await jobs.get(job.id)
    assert reread is not None
    assert (reread.state, reread.error_code, reread.error_detail) == (JobState.FAILED, "provider_error", "boom")


# --- Personas -----------------------------------------------------------------------------------


async def test_save_enhanced_saves_once_per_enhancement_and_closes_the_job(
    jobs: JobStore, personas: PersonaStore, database: Database
) -> None:
    job = await started_job(jobs)

    first = await save(personas, job)
    again = await save(personas, job, name="Another Name")

    assert first.newly_saved
    assert not again.newly_saved
    assert again.persona == first.persona
    assert await count(database, "personas") == 1
    closed = await jobs.get(job.id)
    assert closed is not None
    assert closed.state is JobState.SUCCEEDED
    assert closed.persona_id == first.persona.id
    assert closed.finished_at == NOW + 40


async def test_the_saved_persona_holds_what_humalike_sent(jobs: JobStore, personas: PersonaStore) -> None:
    job = await started_job(jobs)
    saved = await save(personas, job)

    persona = await personas.get(saved.persona.id)
    humalike = sam_persona()
    assert persona is not None
    assert persona.name == "Sam Okafor"
    assert persona.fields == humalike["fields"]
    assert persona.markdown == humalike["markdown"]
    assert persona.system_prompt == humalike["system_prompt"]
    assert (persona.guild_id, persona.creator_id, persona.sketch) == (GUILD, ALICE, SKETCH)
    assert persona.enhancement_id == job.enhancement_id


async def test_names_are_unique_per_guild_case_insensitively(jobs: JobStore, personas: PersonaStore) -> None:
    names = []
    for asked in ("Sam Okafor", "sam okafor", "SAM  OKAFOR", "Sam Okafor"):
        saved = await save(personas, await started_job(jobs), name=asked)
        names.append(saved.persona.name)

    assert names == ["Sam Okafor", "sam okafor (2)", "SAM  OKAFOR (3)", "Sam Okafor (4)"]
    assert await personas.name_taken(GUILD, "SAM OKAFOR (2)")
    found = await personas.get_by_name(GUILD, "sam okafor (3)")
    assert found is not None and found.name == "SAM  OKAFOR (3)"


async def test_many_personas_of_one_name_take_the_lowest_free_number(jobs: JobStore, personas: PersonaStore) -> None:
    saved = [await save(personas, await started_job(jobs), name="Sam Okafor") for _ in range(12)]
    names = [entry.persona.name for entry in saved]
    assert names == ["Sam Okafor"] + [f"Sam Okafor ({number})" for number in range(2, 13)]

    await personas.delete(saved[2].persona.id)  # frees "Sam Okafor (3)"
    again = await save(personas, await started_job(jobs), name="sam  okafor")

    assert again.persona.name == "sam  okafor (3)"
    other_guild = await save(personas, await started_job(jobs, guild=OTHER_GUILD), name="Sam Okafor")
    assert other_guild.persona.name == "Sam Okafor"


async def test_the_same_name_in_another_guild_is_not_suffixed(jobs: JobStore, personas: PersonaStore) -> None:
    here = await save(personas, await started_job(jobs, guild=GUILD))
    there = await save(personas, await started_job(jobs, guild=OTHER_GUILD))

    assert here.persona.name == there.persona.name == "Sam Okafor"
    assert not await personas.name_taken(OTHER_GUILD + 1, "Sam Okafor")


async def test_concurrent_saves_of_the_same_name_both_succeed_with_distinct_names(
    jobs: JobStore, personas: PersonaStore, database: Database
) -> None:
    first_job, second_job, third_job = [await started_job(jobs) for _ in range(3)]

    results = await asyncio.gather(
        save(personas, first_job), save(personas, second_job), save(personas, third_job, name="sam okafor")
    )

    assert all(result.newly_saved for result in results)
    assert sorted(result.persona.name.casefold() for result in results) == [
        "sam okafor",
        "sam okafor (2)",
        "sam okafor (3)",
    ]
    assert await count(database, "personas") == 3
    for job, result in zip((first_job, second_job, third_job), results, strict=True):
        closed = await jobs.get(job.id)
        assert closed is not None and closed.persona_id == result.persona.id


async def test_concurrent_saves_of_the_same_enhancement_save_it_once(
    jobs: JobStore, personas: PersonaStore, database: Database
) -> None:
    job = await started_job(jobs)

    results = await asyncio.gather(save(personas, job), save(personas, job))

    assert sorted(result.newly_saved for result in results) == [False, True]
    assert results[0].persona == results[1].persona
    assert await count(database, "personas") == 1


async def test_a_suffixed_name_stays_within_80_characters(jobs: JobStore, personas: PersonaStore) -> None:
    long_name = "Bartholomew Okafor-Vance " * 3 + "Fifth"  # 80 characters, naming's cap
    assert len(long_name) == 80
    await save(personas, await started_job(jobs), name=long_name)

    second = await save(personas, await started_job(jobs), name=long_name)

    assert second.persona.name.endswith(" (2)")
    assert len(second.persona.name) <= 80


async def test_a_database_made_by_the_first_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    [(first_version, first_sql)] = [m for m in migrations() if m[0] == 1]
    with sqlite3.connect(path) as old:  # what the first release left on disk
        old.executescript(first_sql + f"\nPRAGMA user_version = {first_version};")
        old.execute(
            "INSERT INTO personas (guild_id, name, name_key, creator_id, enhancement_id, humalike_persona_id,"
            " fields_json, system_prompt, markdown, sketch, grounding, created_at, updated_at)"
            " VALUES (1, 'Sam', 'sam', 2, 'e1', 'p1', '{}', 'You are Sam.', '# Sam', 'Sam is...', 'off', 10, 10)"
        )
    old.close()

    database = await SqliteDatabase.open(path)
    try:
        assert await database.schema_version() == max(version for version, _ in migrations())
        [row] = await database.fetch_all("SELECT name, system_prompt, creator_name FROM personas")
        assert (row["name"], row["system_prompt"], row["creator_name"]) == ("Sam", "You are Sam.", None)
        tables = {r[0] for r in await database.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"roleplay_sessions", "persona_messages", "channel_webhooks"} <= tables
    finally:
        await database.close()


async def test_a_job_an_earlier_release_left_queued_is_upgraded_to_maybe_sent(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:  # a release in which "queued" covered a start already on the wire
        for version, sql in migrations():
            if version <= 4:
                old.executescript(sql + f"\nPRAGMA user_version = {version};")
        old.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, sketch, grounding, state, created_at)"
            " VALUES (1, 2, 3, 'Sam is...', 'off', 'queued', 10)"
        )
    old.close()

    database = await SqliteDatabase.open(path)
    try:
        [job] = await JobStore(database).unfinished()
        assert job.state is JobState.SENDING  # reported after start-up, never sent a second time
    finally:
        await database.close()


@pytest.mark.parametrize("version", [1, 2, 3, 7, 8])
async def test_a_database_left_by_an_earlier_release_is_upgraded_in_place(tmp_path: Path, version: int) -> None:
    import shutil

    path = tmp_path / "old.sqlite3"
    shutil.copy(Path(__file__).parent / "data" / f"schema-{version}.sqlite3", path)

    database = await SqliteDatabase.open(path)
    try:
        assert await database.schema_version() == max(number for number, _ in migrations())
        [persona] = await database.fetch_all("SELECT name, system_prompt, fields_json FROM personas")
        assert (persona["name"], persona["system_prompt"]) == ("Sam Okafor", "You are Sam Okafor.")
        [job] = await database.fetch_all("SELECT state, kind, persona_id FROM jobs")
        assert (job["state"], job["kind"], job["persona_id"]) == ("succeeded", "enhancement", 1)
        sessions = await database.fetch_all("SELECT persona_id FROM roleplay_sessions")
        assert len(sessions) == (1 if version >= 2 else 0)
        [stale] = await database.fetch_all("SELECT reply_stale FROM jobs")
        assert stale["reply_stale"] == 0
        [traits] = await database.fetch_all("SELECT talkativeness, nsfw, card_json FROM personas")
        assert (traits["talkativeness"], traits["nsfw"], traits["card_json"]) == (50, 0, None)
    finally:
        await database.close()


@pytest.mark.parametrize("snowflakes", [True, False], ids=["discord-ids", "ids-that-are-not-snowflakes"])
async def test_pruning_forgets_only_persona_messages_recorded_before_the_cutoff(
    database: Database, snowflakes: bool
) -> None:
    from storage.roleplay import RoleplayStore, snowflake_at

    store = RoleplayStore(database)
    ages = [40, 31, 29, 1]  # days
    for number, age in enumerate(ages):
        at = NOW - age * 86400
        message_id = snowflake_at(at) + number if snowflakes else number + 1
        await store.record_message(message_id=message_id, channel_id=1, persona_id=1, session_id=1, now=at)

    pruned = await store.prune_messages(older_than=NOW - 30 * 86400)

    assert pruned == 2
    kept = await database.fetch_all("SELECT created_at FROM persona_messages ORDER BY created_at")
    assert [round((NOW - row["created_at"]) / 86400) for row in kept] == [29, 1]
