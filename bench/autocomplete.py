"""How fast persona names autocomplete and resolve in a large library.

Builds a database of PERSONAS personas across GUILDS guilds (through the real
migrations), then times the bot's own `PersonaStore.search` (autocomplete) and
`resolve_persona` for random guilds and typed prefixes. Prints p50/p99.

    python -m bench.autocomplete [--personas 100000] [--guilds 1000] [--queries 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bot.discord_limits import AUTOCOMPLETE_CHOICES as AUTOCOMPLETE_LIMIT
from bot.errors import UserFacingError
from bot.personas import resolve_persona
from storage.models import name_key
from storage.personas import PersonaStore
from storage.sqlite import SqliteDatabase

FIRST = ["Sam", "Jinx", "Thresh", "Aria", "Borin", "Mira", "Kai", "Nova", "Rin", "Theo", "Lux", "Ezra", "Juno", "Vex"]
LAST = ["Okafor", "Vance", "Ironhand", "Tanaka", "Rivera", "Hartley", "Moreau", "Quinn", "Sato", "Lindqvist"]


def build(path: Path, personas: int, guilds: int, rng: random.Random) -> list[tuple[int, str]]:
    asyncio.run(_migrate(path))
    rows, names = [], []
    for index in range(personas):
        guild = 1 + index % guilds
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {index}"
        names.append((guild, name))
        rows.append(
            (
                guild,
                name,
                name_key(name),
                1000 + index % 50,
                "{}",
                "You are someone.",
                "# Sheet",
                "sketch",
                "off",
                1_700_000_000 + index,
                1_700_000_000 + index,
                "member",
            )
        )
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO personas (guild_id, name, name_key, creator_id, fields_json, system_prompt, markdown,"
            " sketch, grounding, created_at, updated_at, creator_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.execute("ANALYZE")
    return names


async def _migrate(path: Path) -> None:
    database = await SqliteDatabase.open(path)
    await database.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(path: Path, names: list[tuple[int, str]], queries: int, rng: random.Random) -> dict[str, list[float]]:
    database = await SqliteDatabase.open(path)
    store = PersonaStore(database)
    timings: dict[str, list[float]] = {
        "autocomplete, 2 letters": [],
        "autocomplete, empty": [],
        "resolve, exact": [],
        "resolve, partial": [],
    }
    try:
        for _ in range(queries):
            guild, name = rng.choice(names)
            for label, call in (
                ("autocomplete, 2 letters", store.search(guild, name[:2], limit=AUTOCOMPLETE_LIMIT)),
                ("autocomplete, empty", store.search(guild, "", limit=AUTOCOMPLETE_LIMIT)),
                ("resolve, exact", resolve_persona(store, guild, name.upper())),
                ("resolve, partial", resolve_persona(store, guild, name.split()[-1])),
            ):
                started = time.perf_counter()
                with contextlib.suppress(UserFacingError):  # an ambiguous partial name is an answer too
                    await call
                timings[label].append(1000 * (time.perf_counter() - started))
        plan = await database.fetch_all(
            "EXPLAIN QUERY PLAN SELECT id FROM personas WHERE guild_id = ? AND name_key LIKE ? ESCAPE '\\'", (1, "%sa%")
        )
    finally:
        await database.close()
    timings["_plan"] = [0.0]
    print("query plan:", "; ".join(row["detail"] for row in plan))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=100_000)
    parser.add_argument("--guilds", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        started = time.perf_counter()
        names = build(path, args.personas, args.guilds, rng)
        print(f"built {args.personas:,} personas in {args.guilds:,} guilds in {time.perf_counter() - started:.1f} s")
        timings = asyncio.run(measure(path, names, args.queries, rng))
    timings.pop("_plan")
    print(f"{'operation':<26}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for label, values in timings.items():
        p50, p99, mean = statistics.median(values), percentile(values, 0.99), statistics.fmean(values)
        print(f"{label:<26}{p50:>10.3f}{p99:>10.3f}{mean:>10.3f}")


if __name__ == "__main__":
    main()
