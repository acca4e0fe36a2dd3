"""Names unique per guild, shared by personas and casts: finding them, and numbering a clash."""

from __future__ import annotations

from collections.abc import Mapping

from storage.database import Transaction
from storage.errors import IntegrityError
from storage.models import MAX_NAME_LENGTH, name_key

# "Sam", then "Sam (2)", "Sam (3)", ...: a clash never loses a paid-for persona.
MAX_NAME_SUFFIX = 1000
LIKE_ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\': its own `%` and `_` match only themselves."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")


def name_patterns(typed: str) -> tuple[str, str]:
    """(contains, starts with): LIKE patterns over `name_key` for what a member typed."""
    escaped = like_escaped(name_key(typed))
    return f"%{escaped}%", f"{escaped}%"


async def insert_with_free_name(
    transaction: Transaction, *, table: str, insert: str, name: str, values: Mapping[str, object]
) -> int:
    """Insert under `name`, else "name (2)", "name (3)"...; returns the new row's id.

    `insert` adds one row of `table` (unique on guild and `name_key`) from named parameters,
    `RETURNING id`: `values` and, for each candidate, `:name` and `:name_key`. `values` holds `guild_id`.
    """
    taken: set[str] = set()
    for attempt in range(1, MAX_NAME_SUFFIX + 1):
        candidate = numbered(name, attempt)
        if name_key(candidate) in taken:
            continue
        try:
            async with transaction.savepoint():
                row = await transaction.fetch_one(
                    insert, {**values, "name": candidate, "name_key": name_key(candidate)}
                )
            assert row is not None  # RETURNING id
            return int(row[0])
        except IntegrityError as error:
            if "name_key" not in str(error):
                raise  # another constraint (the enhancement id): not a clash of names
        if attempt == 1:
            # Clashed: find every numbered name already taken in one query, not one insert each.
            keys = [name_key(numbered(name, later)) for later in range(2, MAX_NAME_SUFFIX + 1)]
            rows = await transaction.fetch_all(
                f"SELECT name_key FROM {table} WHERE guild_id = ? AND name_key IN ({','.join('?' * len(keys))})",
                (values["guild_id"], *keys),
            )
            taken = {row[0] for row in rows}
    raise RuntimeError(f"no free name for {name!r} after {MAX_NAME_SUFFIX} tries")


def numbered(name: str, attempt: int) -> str:
    """The `attempt`-th candidate for `name`, within MAX_NAME_LENGTH: "Sam", "Sam (2)", ..."""
    suffix = "" if attempt == 1 else f" ({attempt})"
    return name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
