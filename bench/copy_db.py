"""`python -m bot copy-db` over a large server: 100,000 personas in 1,000 guilds into PostgreSQL.

Builds an SQLite file the way the bot leaves it (every migration, personas of realistic size and a
job for each), then runs the command exactly as an admin would, in its own process, into a fresh
schema of the PostgreSQL on 127.0.0.1:5432 (or TEST_POSTGRES_URL). Reports the time it took, its
peak RSS, and whether every table's row count and checksum came out equal on both sides.

    python -m bench.copy_db [--personas 100000] [--guilds 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storage.models import name_key
from storage.sqlite import SqliteDatabase
from tests.databases import postgres_schema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BATCH = 5000
# Sizes like a Humalike persona's: a system prompt and a sheet of about 1.5 KB each, a dozen fields.
SYSTEM_PROMPT = "You are {name}. " + "Speak warmly, keep answers short, and stay in character. " * 25
SHEET = "# {name}\n\n" + "- A line of the character sheet, as the enhancement writes it.\n" * 24
FIELDS = json.dumps({f"field {n}": "a value of a few words, as Humalike gives" for n in range(12)})


def build(path: Path, personas: int, guilds: int) -> None:
    asyncio.run(_migrate(path))
    with sqlite3.connect(path) as connection:
        for start in range(0, personas, BATCH):
            ids = range(start, min(start + BATCH, personas))
            connection.executemany(
                "INSERT INTO jobs (id, guild_id, channel_id, user_id, sketch, grounding, state, enhancement_id,"
                " created_at, persona_id, kind) VALUES (?, ?, ?, ?, ?, 'off', 'succeeded', ?, ?, ?, 'enhancement')",
                [
                    (i + 1, 1 + i % guilds, 10 + i % guilds, 1000 + i % 50, f"Sketch {i}", f"e{i}", 1.7e9 + i, i + 1)
                    for i in ids
                ],
            )
            connection.executemany(
                "INSERT INTO personas (id, guild_id, name, name_key, creator_id, creator_name, enhancement_id,"
                " humalike_persona_id, fields_json, system_prompt, markdown, sketch, grounding, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, 'member', ?, ?, ?, ?, ?, ?, 'off', ?, ?)",
                [_persona(i, guilds) for i in ids],
            )


def _persona(index: int, guilds: int) -> tuple[object, ...]:
    name = f"Persona {index}"
    return (
        index + 1,
        1 + index % guilds,
        name,
        name_key(name),
        1000 + index % 50,
        f"e{index}",
        f"p{index}",
        FIELDS,
        SYSTEM_PROMPT.format(name=name),
        SHEET.format(name=name),
        f"Sketch {index}",
        1.7e9 + index,
        1.7e9 + index,
    )


async def _migrate(path: Path) -> None:
    database = await SqliteDatabase.open(path)
    await database.close()


async def copy(path: Path) -> tuple[int, str, float, float]:
    """Run `python -m bot copy-db` into a fresh schema: (exit code, output, seconds, peak RSS in MB)."""
    async with postgres_schema() as url:
        began = time.perf_counter()
        finished = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "copy-db", "--from", str(path), "--to", url],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        )
        seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return finished.returncode, finished.stdout + finished.stderr, seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=100_000)
    parser.add_argument("--guilds", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bot.sqlite3"
        began = time.perf_counter()
        build(path, args.personas, args.guilds)
        built = time.perf_counter() - began
        size_mb = path.stat().st_size / 1e6
        code, output, seconds, peak_mb = asyncio.run(copy(path))
    print(
        f"source: {args.personas:,} personas and {args.personas:,} jobs in {args.guilds:,} guilds, {size_mb:.0f} MB"
        f" (built in {built:.0f} s)"
    )
    print("\n".join(line for line in output.splitlines() if "[" not in line or "100%" in line))
    print(f"\ncopy-db: {seconds:.1f} s ({2 * args.personas / seconds:,.0f} rows a second); peak RSS {peak_mb:.0f} MB")
    complete = code == 0 and "Every table matches" in output
    print(
        "Verdict: "
        + (
            "complete, every table's count and checksum equal on both sides"
            if complete
            else f"MISSED: copy-db exited {code}" + ("" if "Every table matches" in output else ", tables differ")
        )
    )


if __name__ == "__main__":
    main()
