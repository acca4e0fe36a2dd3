"""Writes the databases earlier releases left on disk, for the upgrade tests.

Run once when a migration is added (`python -m tests.data.make_old_databases`); the files are
committed, so the tests upgrade real files made before each change, not schemas rebuilt on the fly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.database import migrations

HERE = Path(__file__).parent
PERSONA = (
    "INSERT INTO personas (guild_id, name, name_key, creator_id, enhancement_id, humalike_persona_id, fields_json,"
    " system_prompt, markdown, sketch, grounding, created_at, updated_at) VALUES (10, 'Sam Okafor', 'sam okafor',"
    " 20, 'enh-1', 'enhanced-abc', '{\"age\": \"30\"}', 'You are Sam Okafor.', '# Sam Okafor',"
    " 'Sam is a support main.', 'off', 1767225600, 1767225600)"
)
JOB = (
    "INSERT INTO jobs (guild_id, channel_id, user_id, sketch, grounding, state, enhancement_id, created_at,"
    " persona_id) VALUES (10, 30, 20, 'Sam is a support main.', 'off', 'succeeded', 'enh-1', 1767225600, 1)"
)
SESSION = (
    "INSERT INTO roleplay_sessions (guild_id, channel_id, persona_id, mode, started_by, started_at,"
    " last_activity_at) VALUES (10, 30, 1, 'mention', 20, 1767225700, 1767225700)"
)


def make(version: int) -> Path:
    path = HERE / f"schema-{version}.sqlite3"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as connection:
        for number, sql in migrations():
            if number <= version:
                connection.executescript(sql)
        connection.execute(f"PRAGMA user_version = {version}")
        connection.execute(PERSONA)
        connection.execute(JOB)
        if version >= 2:
            connection.execute(SESSION)
    connection.close()
    return path


if __name__ == "__main__":
    for version in (1, 2, 3, 7, 8):
        print(make(version))  # noqa: T201
