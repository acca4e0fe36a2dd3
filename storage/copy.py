"""Copying an SQLite database into an empty PostgreSQL one, rows, ids and timestamps unchanged.

Every table is copied in one PostgreSQL transaction, so a copy that fails half-way leaves the
target empty and can simply be run again. Each table is then summed up on both sides (its row
count and a SHA-256 over its rows in key order), and the two must agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase

# In an order that satisfies every foreign key, each with the columns that order its rows.
TABLES: dict[str, tuple[str, ...]] = {
    "jobs": ("id",),
    "personas": ("id",),
    "casts": ("id",),
    "cast_members": ("cast_id", "persona_id"),
    "roleplay_sessions": ("id",),
    "persona_messages": ("message_id",),
    "channel_webhooks": ("channel_id",),
    "guild_roleplay_settings": ("guild_id",),
    "natural_threads": ("thread_id",),
    "natural_deliveries": ("message_id",),
    "natural_planned": ("piece_key",),
    "natural_usage": ("guild_id", "persona_id", "day"),
    "channel_notices": ("day", "channel_id", "kind"),
    "persona_avatars": ("persona_id",),
    "channel_scenes": ("channel_id",),
    "channel_recaps": ("channel_id",),
    "chat_usage": ("guild_id", "persona_id", "day"),
}
# Tables whose ids PostgreSQL generates: after copying, new rows must number on from the highest.
GENERATED_IDS = ("jobs", "personas", "casts", "roleplay_sessions")
BATCH_ROWS = 2000

Progress = Callable[[str, int, int], None]  # (table, rows copied, rows in the table)


@dataclass(frozen=True)
class TableSummary:
    table: str
    rows: int
    checksum: str


@dataclass(frozen=True)
class TableCopied:
    source: TableSummary
    target: TableSummary

    @property
    def matches(self) -> bool:
        return (self.source.rows, self.source.checksum) == (self.target.rows, self.target.checksum)


class CopyRefused(Exception):
    """Nothing was copied, for the reason given."""


async def copy_database(source: SqliteDatabase, target: PostgresDatabase, progress: Progress) -> list[TableCopied]:
    """Copy every row of `source` into `target`, which must hold no data; each table's summaries."""
    await _check_same_schema(source, target)
    occupied = {table: rows for table in TABLES if (rows := await _count(target, table))}
    if occupied:
        held = ", ".join(f"{rows} {table}" for table, rows in occupied.items())
        raise CopyRefused(f"the target database already holds data ({held}); copy only into an empty one")
    columns = {table: await _columns(source, table) for table in TABLES}
    async with target.bulk() as bulk:
        for table in TABLES:
            total = await _count(source, table)
            done = 0
            progress(table, done, total)
            async for batch in _batches(source, table, columns[table]):
                await bulk.copy_rows(table, columns[table], batch)
                done += len(batch)
                progress(table, done, total)
        for table in GENERATED_IDS:
            await bulk.number_on_from_highest(table)
    return [
        TableCopied(await summarize(source, table, columns[table]), await summarize(target, table, columns[table]))
        for table in TABLES
    ]


async def summarize(database: SqliteDatabase | PostgresDatabase, table: str, columns: Sequence[str]) -> TableSummary:
    """The table's row count and a SHA-256 over its rows, in key order, the same on either backend."""
    digest = hashlib.sha256()
    rows = 0
    async for batch in _batches(database, table, columns):
        for row in batch:
            digest.update(json.dumps(list(row), separators=(",", ":")).encode())
            digest.update(b"\n")
        rows += len(batch)
    return TableSummary(table, rows, digest.hexdigest())


async def _batches(
    database: SqliteDatabase | PostgresDatabase, table: str, columns: Sequence[str]
) -> AsyncIterator[list[tuple[Any, ...]]]:
    order = ", ".join(TABLES[table])
    sql = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"  # names from TABLES and the schema only
    async for batch in database.stream(sql, batch_rows=BATCH_ROWS):
        yield [tuple(row) for row in batch]


async def _count(database: SqliteDatabase | PostgresDatabase, table: str) -> int:
    row = await database.fetch_one(f"SELECT COUNT(*) FROM {table}")
    return int(row[0]) if row else 0


async def _columns(source: SqliteDatabase, table: str) -> list[str]:
    return [row["name"] for row in await source.fetch_all(f"PRAGMA table_info({table})")]


async def _check_same_schema(source: SqliteDatabase, target: PostgresDatabase) -> None:
    """Both at the same migration, and no table of the source left out of TABLES."""
    source_version, target_version = await source.schema_version(), await target.schema_version()
    if source_version != target_version:
        raise CopyRefused(f"the source is at schema {source_version} and the target at {target_version}")
    rows = await source.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    unknown = {row[0] for row in rows} - set(TABLES)
    if unknown:
        raise CopyRefused(f"this version of the bot does not know how to copy {', '.join(sorted(unknown))}")
