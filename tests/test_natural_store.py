"""Natural mode's storage: one thread per persona per channel, each message delivered once, calls counted."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.database import Backend, Database, migrations, open_database
from storage.natural import NaturalStore, PlannedPiece, utc_day
from tests.databases import BACKENDS, database_location

GUILD = 10
OTHER_GUILD = 11
CHANNEL = 30
OTHER_CHANNEL = 31
SAM, ARIA = 1, 2
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = "2026-01-01"
NEXT_DAY = "2026-01-02"
THREAD = "b9c1e4f0-2a77-4f6e-9d2a-1f0c8e5b3a44"

Location = tuple[str | None, Path]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def location(backend: Backend, tmp_path: Path) -> AsyncIterator[Location]:
    """Where a new, empty database lives (an SQLite file, or a PostgreSQL schema of its own)."""
    async with database_location(backend, tmp_path) as where:
        yield where


@pytest.fixture
async def database(location: Location) -> AsyncIterator[Database]:
    url, path = location
    db = await open_database(url=url, path=path)
    yield db
    await db.close()


@pytest.fixture
async def second_process(location: Location, database: Database) -> AsyncIterator[NaturalStore]:
    """The same database through a connection (or pool) of its own, as another bot process has it."""
    url, path = location
    other = await open_database(url=url, path=path)
    yield NaturalStore(other)
    await other.close()


@pytest.fixture
def store(database: Database) -> NaturalStore:
    return NaturalStore(database)


async def count(database: Database, table: str) -> int:
    row = await database.fetch_one(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def thread_of(store: NaturalStore, *, channel: int = CHANNEL, persona: int = SAM, now: float = NOW) -> str:
    return await store.thread_id(guild_id=GUILD, channel_id=channel, persona_id=persona, now=now)


# --- Threads --------------------------------------------------------------------------------------


async def test_a_persona_keeps_one_thread_id_per_channel_and_each_channel_and_persona_has_its_own(
    store: NaturalStore, database: Database
) -> None:
    first = await thread_of(store)
    again = await thread_of(store, now=NOW + 3600)

    assert first == again
    assert len(first) == 36 and first.count("-") == 4  # a UUID, as open_thread requires
    other_channel = await thread_of(store, channel=OTHER_CHANNEL)
    other_persona = await thread_of(store, persona=ARIA)
    assert len({first, other_channel, other_persona}) == 3
    assert await count(database, "natural_threads") == 3


async def test_a_thread_id_survives_reopening_the_database(location: Location, store: NaturalStore) -> None:
    first = await thread_of(store)
    url, path = location
    reopened = await open_database(url=url, path=path)
    try:
        assert await thread_of(NaturalStore(reopened)) == first
    finally:
        await reopened.close()


async def test_concurrent_first_calls_agree_on_one_thread_id_and_one_row(
    store: NaturalStore, second_process: NaturalStore, database: Database
) -> None:
    ids = await asyncio.gather(*(thread_of(store) for _ in range(20)), *(thread_of(second_process) for _ in range(5)))

    assert len(set(ids)) == 1
    assert await count(database, "natural_threads") == 1


async def test_forgetting_a_persona_drops_only_its_threads_and_a_later_thread_is_new(
    store: NaturalStore, database: Database
) -> None:
    old = await thread_of(store)
    await thread_of(store, channel=OTHER_CHANNEL)
    arias = await thread_of(store, persona=ARIA)

    assert await store.forget_threads(SAM) == 2
    assert await store.forget_threads(SAM) == 0
    assert await thread_of(store, persona=ARIA) == arias
    assert await thread_of(store) != old
    assert await count(database, "natural_threads") == 2


# --- Deliveries -----------------------------------------------------------------------------------


async def test_a_message_is_claimed_for_delivery_once_even_from_another_process(
    store: NaturalStore, second_process: NaturalStore
) -> None:
    assert await store.claim_delivery("m_1", thread_id=THREAD, now=NOW) is True
    assert await store.claim_delivery("m_1", thread_id=THREAD, now=NOW + 1) is False
    assert await second_process.claim_delivery("m_1", thread_id=THREAD, now=NOW + 2) is False
    assert await second_process.claim_delivery("m_2", thread_id=THREAD, now=NOW + 2) is True
    assert await store.claim_delivery("m_2", thread_id=THREAD, now=NOW + 3) is False


async def test_concurrent_claims_of_one_message_from_two_processes_have_one_winner(
    store: NaturalStore, second_process: NaturalStore
) -> None:
    claims = await asyncio.gather(
        *(owner.claim_delivery("m_race", thread_id=THREAD, now=NOW) for owner in [store, second_process] * 10)
    )

    assert sorted(claims) == [False] * 19 + [True]


async def test_a_delivered_message_records_its_discord_message_and_stays_claimed(
    store: NaturalStore, database: Database
) -> None:
    await store.claim_delivery("m_1", thread_id=THREAD, now=NOW)
    await store.claim_delivery("m_2", thread_id=THREAD, now=NOW)

    await store.delivered("m_1", 2**62 + 7)

    rows = await database.fetch_all(
        "SELECT message_id, thread_id, discord_message_id FROM natural_deliveries ORDER BY message_id"
    )
    assert [tuple(row) for row in rows] == [("m_1", THREAD, 2**62 + 7), ("m_2", THREAD, None)]
    assert await store.claim_delivery("m_1", thread_id=THREAD, now=NOW + 5) is False


# --- Usage ----------------------------------------------------------------------------------------


async def test_calls_add_up_per_guild_and_day_across_personas(store: NaturalStore) -> None:
    assert await store.add_calls(guild_id=GUILD, persona_id=SAM, day=DAY) == 1
    assert await store.add_calls(guild_id=GUILD, persona_id=ARIA, day=DAY) == 2
    assert await store.add_calls(guild_id=GUILD, persona_id=SAM, day=DAY, calls=3) == 5
    assert await store.add_calls(guild_id=GUILD, persona_id=SAM, day=NEXT_DAY) == 1
    assert await store.add_calls(guild_id=OTHER_GUILD, persona_id=SAM, day=DAY) == 1

    assert await store.guild_calls(GUILD, DAY) == 5
    assert await store.guild_calls(GUILD, NEXT_DAY) == 1
    assert await store.guild_calls(OTHER_GUILD, DAY) == 1
    assert await store.guild_calls(OTHER_GUILD, NEXT_DAY) == 0


async def test_usage_is_per_persona_for_the_guild_and_day_asked(store: NaturalStore) -> None:
    await store.add_calls(guild_id=GUILD, persona_id=SAM, day=DAY, calls=4)
    await store.add_calls(guild_id=GUILD, persona_id=ARIA, day=DAY)
    await store.add_calls(guild_id=GUILD, persona_id=ARIA, day=NEXT_DAY, calls=9)
    await store.add_calls(guild_id=OTHER_GUILD, persona_id=3, day=DAY, calls=2)

    assert await store.usage(GUILD, DAY) == {SAM: 4, ARIA: 1}
    assert await store.usage(GUILD, NEXT_DAY) == {ARIA: 9}
    assert await store.usage(OTHER_GUILD, DAY) == {3: 2}
    assert await store.usage(OTHER_GUILD, NEXT_DAY) == {}


async def test_concurrent_increments_are_never_lost_and_each_caller_sees_its_own_total(
    store: NaturalStore, second_process: NaturalStore
) -> None:
    personas = [SAM, ARIA, 3, 4, 5]
    totals = await asyncio.gather(
        *(
            (store if index % 2 else second_process).add_calls(guild_id=GUILD, persona_id=personas[index % 5], day=DAY)
            for index in range(50)
        )
    )

    # Serialised per guild and day: no two callers see the same total, so a cap is never overrun.
    assert sorted(totals) == list(range(1, 51))
    assert await store.guild_calls(GUILD, DAY) == 50
    assert await store.usage(GUILD, DAY) == dict.fromkeys(personas, 10)


def test_a_day_is_the_utc_date_of_the_timestamp() -> None:
    assert utc_day(NOW) == DAY
    assert utc_day(NOW - 0.001) == "2025-12-31"
    assert utc_day(NOW + 86_399.9) == DAY
    assert utc_day(NOW + 86_400) == NEXT_DAY


# --- Notices --------------------------------------------------------------------------------------


async def test_a_notice_is_claimed_once_per_channel_day_and_kind(
    store: NaturalStore, second_process: NaturalStore
) -> None:
    assert await store.claim_notice(channel_id=CHANNEL, day=DAY, kind="daily_cap") is True
    assert await store.claim_notice(channel_id=CHANNEL, day=DAY, kind="daily_cap") is False
    assert await second_process.claim_notice(channel_id=CHANNEL, day=DAY, kind="daily_cap") is False

    assert await store.claim_notice(channel_id=CHANNEL, day=DAY, kind="out_of_credits") is True
    assert await store.claim_notice(channel_id=OTHER_CHANNEL, day=DAY, kind="daily_cap") is True
    assert await store.claim_notice(channel_id=CHANNEL, day=NEXT_DAY, kind="daily_cap") is True


# --- Pruning --------------------------------------------------------------------------------------


async def test_pruning_drops_only_old_days_and_old_deliveries(store: NaturalStore, database: Database) -> None:
    days = ["2025-12-30", "2025-12-31", DAY, NEXT_DAY]
    for day in days:
        await store.add_calls(guild_id=GUILD, persona_id=SAM, day=day)
        await store.claim_notice(channel_id=CHANNEL, day=day, kind="daily_cap")
    for age in (7200, 3601, 3599, 0):  # seconds before NOW
        await store.claim_delivery(f"m_{age}", thread_id=THREAD, now=NOW - age)
    thread = await thread_of(store)

    pruned = await store.prune(before_day=DAY, delivered_before=NOW - 3600)

    assert pruned == 2 + 2 + 2
    usage = await database.fetch_all("SELECT day FROM natural_usage ORDER BY day")
    notices = await database.fetch_all("SELECT day FROM channel_notices ORDER BY day")
    deliveries = await database.fetch_all("SELECT message_id FROM natural_deliveries ORDER BY claimed_at")
    assert [row[0] for row in usage] == [row[0] for row in notices] == [DAY, NEXT_DAY]
    assert [row[0] for row in deliveries] == ["m_3599", "m_0"]
    assert await thread_of(store) == thread  # threads are never pruned: they are re-opened by id
    assert await store.prune(before_day=DAY, delivered_before=NOW - 3600) == 0


async def test_text_keys_sort_byte_by_byte_on_both_backends(store: NaturalStore, database: Database) -> None:
    # copy-db checksums rows in key order on each side, and pruning compares days: a locale's order
    # (en-US puts "m-A" before "M-a" and ignores "_") would make PostgreSQL disagree with SQLite.
    ids = ["m_b", "M-a", "m-A", "mZ", "é"]
    for message_id in ids:
        await store.claim_delivery(message_id, thread_id=THREAD, now=NOW)

    rows = await database.fetch_all("SELECT message_id FROM natural_deliveries ORDER BY message_id")

    assert [row[0] for row in rows] == sorted(ids)
    if database.backend == "postgresql":  # the test server's own locale may be C: check the columns too
        keys = [
            ("natural_threads", "thread_id"),
            ("natural_deliveries", "message_id"),
            ("natural_usage", "day"),
            ("channel_notices", "day"),
            ("channel_notices", "kind"),
            ("chat_usage", "day"),
        ]
        columns = await database.fetch_all(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name IN ("
            " 'natural_threads', 'natural_deliveries', 'natural_usage', 'channel_notices', 'chat_usage')"
        )
        collations = {(row["table_name"], row["column_name"]): row["collation_name"] for row in columns}
        assert {key: collations.get(key) for key in keys} == dict.fromkeys(keys, "C")


# --- Migration ------------------------------------------------------------------------------------


async def test_a_database_at_schema_7_gains_the_natural_tables_and_keeps_its_data(
    backend: Backend, location: Location
) -> None:
    url, path = location
    if url is None:  # the file the release before natural mode left (tests/data/make_old_databases.py)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parent / "data" / "schema-7.sqlite3", path)
    else:
        await _postgres_at_schema_7(url)

    database = await open_database(url=url, path=path)
    try:
        assert await database.schema_version() == max(number for number, _ in migrations(backend)) >= 8
        [persona] = await database.fetch_all("SELECT id, name FROM personas")
        assert (persona["id"], persona["name"]) == (1, "Sam Okafor")
        [session] = await database.fetch_all("SELECT persona_id FROM roleplay_sessions")
        assert session["persona_id"] == 1
        store = NaturalStore(database)
        assert await thread_of(store) == await thread_of(store)
        assert await store.claim_delivery("m_1", thread_id=THREAD, now=NOW) is True
        assert await store.add_calls(guild_id=GUILD, persona_id=SAM, day=DAY) == 1
        assert await store.claim_notice(channel_id=CHANNEL, day=DAY, kind="daily_cap") is True
    finally:
        await database.close()


async def _postgres_at_schema_7(url: str) -> None:
    """A PostgreSQL database as the release before natural mode left it: migrations 1-7 and a roleplay session."""
    from tests.data.make_old_databases import JOB, PERSONA, SESSION

    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, sql in migrations("postgresql"):
            if number <= 7:
                await connection.execute(sql)
        await connection.execute("INSERT INTO schema_version (version) VALUES (7)")
        for insert in (PERSONA, JOB, SESSION):
            await connection.execute(insert)
    finally:
        await connection.close()


# --- Planned pieces ---------------------------------------------------------------------------------


async def test_planned_pieces_not_yet_delivered_are_handed_back_in_order_and_only_those(store: NaturalStore) -> None:
    pieces = [PlannedPiece(f"t/4/{n}", f"piece {n}", n, NOW + n) for n in (2, 0, 1)]
    await store.plan("t", pieces)
    await store.plan("t", pieces)  # a retried respond plans nothing twice
    await store.claim_delivery("t/4/0", thread_id="t", now=NOW)

    left = await store.unclaimed_plans("t", due_after=NOW - 30)

    assert [piece.key for piece in left] == ["t/4/1", "t/4/2"]
    assert left[0] == PlannedPiece("t/4/1", "piece 1", 1, NOW + 1)
    assert await store.unclaimed_plans("t", due_after=NOW + 1.5) == [left[1]]  # too old ones are not
    assert await store.unclaimed_plans("other", due_after=0) == []


async def test_forgotten_plans_are_claimed_so_no_socket_posts_them_later(store: NaturalStore) -> None:
    await store.plan("t", [PlannedPiece("t/1/0", "a", 0, NOW), PlannedPiece("t/1/1", "b", 1, NOW + 1)])
    await store.claim_delivery("t/1/0", thread_id="t", now=NOW)

    assert await store.forget_plans("t", now=NOW + 2) == 1

    assert await store.unclaimed_plans("t", due_after=0) == []
    assert await store.claim_delivery("t/1/1", thread_id="t", now=NOW + 3) is False
