"""`python -m bot copy-db --to postgresql://...`: move a server's data from the SQLite file to PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from bot.redaction import redacted_url
from storage.copy import CopyRefused, TableCopied, copy_database
from storage.errors import DatabaseUnavailable
from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase

BAR_WIDTH = 30


async def copy_db(source_path: Path, target_url: str, out: TextIO = sys.stdout) -> int:
    """Copy, print a progress bar and a summary per table; 0 when every table matches."""
    try:
        target = await PostgresDatabase.open(target_url)
    except DatabaseUnavailable as error:
        print(f"Could not reach the target: {error}", file=out)
        return 2
    source = await SqliteDatabase.open(source_path)
    print(f"Copying {source_path} into {redacted_url(target_url)}", file=out)
    try:
        tables = await copy_database(source, target, ProgressBar(out))
    except CopyRefused as error:
        print(f"Refused: {error}. Nothing was copied.", file=out)
        return 1
    finally:
        await source.close()
        await target.close()
    print(summary(tables), file=out)
    if all(table.matches for table in tables):
        print("Every table matches. Set DATABASE_URL to the target and restart the bot.", file=out)
        return 0
    print("MISMATCH: the copy differs from the source; do not switch to it.", file=out)
    return 1


class ProgressBar:
    """One line per table, redrawn in place on a terminal, written once when done otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._live = out.isatty()

    def __call__(self, table: str, done: int, total: int) -> None:
        finished = done >= total
        if not (self._live or finished):
            return
        line = progress_line(table, done, total)
        self._out.write(("\r" if self._live else "") + line + ("\n" if finished else ""))
        self._out.flush()


def progress_line(table: str, done: int, total: int) -> str:
    share = 1.0 if total == 0 else done / total
    filled = round(share * BAR_WIDTH)
    return f"{table:<24} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {done:,}/{total:,}"


def summary(tables: list[TableCopied]) -> str:
    lines = [f"{'table':<24} {'rows':>9} {'rows copied':>11}  checksum (SHA-256 of the rows, both sides)"]
    for table in tables:
        same = "same" if table.matches else f"DIFFERS: {table.target.checksum[:16]}"
        lines.append(
            f"{table.source.table:<24} {table.source.rows:>9,} {table.target.rows:>11,}  "
            f"{table.source.checksum[:16]} {same}"
        )
    return "\n".join(lines)
