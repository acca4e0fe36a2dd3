"""Which of the bot's shards this process runs (SHARD_COUNT, SHARD_IDS), and what follows from it.

Discord requires sharding from 2,500 servers: each shard is one gateway connection carrying the
servers with `(guild_id >> 22) % shard_count` equal to its id. Several processes can split the
shards between them, all sharing one PostgreSQL database (README: "Running at scale").
"""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_shard_ids(text: str) -> list[int]:
    """ "0-3" -> [0, 1, 2, 3]; "0,2,5" -> [0, 2, 5]; ranges and single ids may be mixed."""
    ids: list[int] = []
    for part in text.replace(" ", "").split(","):
        match = _RANGE.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not a shard id or a range such as 0-3")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise ValueError(f"the range {part} runs backwards")
        ids.extend(range(first, last + 1))
    if len(set(ids)) != len(ids):
        raise ValueError("a shard id is listed twice")
    return sorted(ids)


def check_shards(count: int | None, ids: list[int] | None) -> None:
    if ids is None:
        return
    if count is None:
        raise ValueError("SHARD_IDS needs SHARD_COUNT, the number of shards over every process")
    outside = [shard for shard in ids if shard >= count]
    if outside:
        raise ValueError(f"shard {outside[0]} is not below SHARD_COUNT={count} (ids start at 0)")


def publishes_commands(ids: list[int] | None) -> bool:
    """Only one process publishes the slash commands: the one running shard 0 (or every shard)."""
    return ids is None or 0 in ids


def runs_guild(guild_id: int, count: int | None, ids: list[int] | None) -> bool:
    """Whether this process runs the shard a server is on (with every shard here, every server)."""
    return ids is None or count is None or shard_of(guild_id, count) in ids


def shard_of(guild_id: int, count: int) -> int:
    """The shard Discord routes a server's events to."""
    return (guild_id >> 22) % count
