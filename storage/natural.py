"""Natural roleplay mode's state: turn-taking threads, delivered messages, billable calls, notices given.

Several bot processes may share one database (PostgreSQL), and any of them may reconnect a
persona's socket or deliver its messages, so every "once" here is decided by the database:
an `INSERT ... ON CONFLICT DO NOTHING` that only one caller ever wins.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import Database
from storage.notices import ChannelNotices


@dataclass(frozen=True)
class PlannedPiece:
    key: str  # what its delivery claims (bot/roleplay/natural/thread.py)
    content: str
    position: int
    deliver_at: float  # wall clock


def utc_day(timestamp: float) -> str:
    """The UTC day of `timestamp` as 'YYYY-MM-DD': the unit of the daily cap, which sorts as it dates."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


class NaturalStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    # --- Threads: one per persona per channel, re-opened with the same id ----------------------------

    async def thread_id(self, *, guild_id: int, channel_id: int, persona_id: int, now: float) -> str:
        """Our turn-taking thread id for this persona in this channel: made the first time, the same ever after.

        Re-opening a thread with its id creates nothing new on Humalike, so the id must survive
        restarts and be the same in every process. Read first (the usual case, one trip); when
        missing, insert a new one, and a caller that lost that race reads the winner's.
        """
        while True:  # a second turn only if the winner's row was deleted (forget_threads) meanwhile
            if found := await self._thread_of(persona_id, channel_id):
                return found
            inserted = await self._db.write_returning(
                "INSERT INTO natural_threads (thread_id, guild_id, channel_id, persona_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (persona_id, channel_id) DO NOTHING RETURNING thread_id",
                (str(uuid.uuid4()), guild_id, channel_id, persona_id, now),
            )
            if inserted:
                return str(inserted[0][0])

    async def _thread_of(self, persona_id: int, channel_id: int) -> str | None:
        row = await self._db.fetch_one(
            "SELECT thread_id FROM natural_threads WHERE persona_id = ? AND channel_id = ?", (persona_id, channel_id)
        )
        return row[0] if row else None

    async def forget_threads(self, persona_id: int) -> int:
        """Forget a deleted persona's threads; how many. Its usage stays: it was billed."""
        return await self._db.write("DELETE FROM natural_threads WHERE persona_id = ?", (persona_id,))

    # --- Deliveries: each paced message posted exactly once ------------------------------------------

    async def claim_delivery(self, message_id: str, *, thread_id: str, now: float) -> bool:
        """Whether this caller is the one to post Humalike's message `message_id`: True for the first caller only.

        Claimed before posting, so a replay after a reconnect, the `scheduled` fallback or another
        process never posts it again. A post that fails after the claim is lost rather than doubled.
        """
        inserted = await self._db.write(
            "INSERT INTO natural_deliveries (message_id, thread_id, claimed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (message_id, thread_id, now),
        )
        return inserted == 1

    async def delivered(self, message_id: str, discord_message_id: int) -> None:
        """Record the Discord message a claimed delivery became, to tell a lost post from a made one."""
        await self._db.write(
            "UPDATE natural_deliveries SET discord_message_id = ? WHERE message_id = ?",
            (discord_message_id, message_id),
        )

    # --- Usage: billable calls per guild, persona and day --------------------------------------------

    async def add_calls(self, *, guild_id: int, persona_id: int, day: str, calls: int = 1) -> int:
        """Count `calls` billable calls for the persona; the guild's total that day, all personas, after adding.

        The increment and the total are one transaction, serialised per guild and day: every
        caller sees a different total, so a daily cap compared against it is never overrun by
        callers that added at once.
        """
        async with self._db.transaction() as transaction:
            await transaction.lock(f"natural-usage:{guild_id}:{day}")
            await transaction.execute(
                "INSERT INTO natural_usage (guild_id, persona_id, day, calls) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (guild_id, persona_id, day) DO UPDATE SET calls = natural_usage.calls + excluded.calls",
                (guild_id, persona_id, day, calls),
            )
            row = await transaction.fetch_one(
                "SELECT SUM(calls) FROM natural_usage WHERE day = ? AND guild_id = ?", (day, guild_id)
            )
        assert row is not None and row[0] is not None  # the row written above
        return int(row[0])

    async def usage(self, guild_id: int, day: str) -> dict[int, int]:
        """persona id -> billable calls that day, for the personas of the guild that made any."""
        rows = await self._db.fetch_all(
            "SELECT persona_id, calls FROM natural_usage WHERE day = ? AND guild_id = ? ORDER BY persona_id",
            (day, guild_id),
        )
        return {row["persona_id"]: row["calls"] for row in rows}

    async def guild_calls(self, guild_id: int, day: str) -> int:
        """The guild's billable calls that day, all personas together."""
        row = await self._db.fetch_one(
            "SELECT COALESCE(SUM(calls), 0) FROM natural_usage WHERE day = ? AND guild_id = ?", (day, guild_id)
        )
        return int(row[0]) if row else 0

    # --- Notices: told once per channel, day and kind ------------------------------------------------

    async def claim_notice(self, *, channel_id: int, day: str, kind: str) -> bool:
        """Whether to tell the channel of `kind` ("out_of_credits", "daily_cap"): True the first time that day only."""
        return await ChannelNotices(self._db).claim(channel_id=channel_id, day=day, kind=kind)

    # --- Planned pieces: a reply's schedule, for when the socket misses them --------------------------

    async def plan(self, thread_id: str, pieces: Sequence[PlannedPiece]) -> None:
        """Keep a reply's pieces as `respond` scheduled them (a retried respond plans nothing twice)."""
        for piece in pieces:
            await self._db.write(
                "INSERT INTO natural_planned (piece_key, thread_id, content, position, deliver_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (piece_key) DO NOTHING",
                (piece.key, thread_id, piece.content, piece.position, piece.deliver_at),
            )

    async def unclaimed_plans(self, thread_id: str, *, due_after: float) -> list[PlannedPiece]:
        """The thread's planned pieces due after `due_after` that nobody has delivered yet, in order."""
        rows = await self._db.fetch_all(
            "SELECT piece_key, content, position, deliver_at FROM natural_planned p WHERE thread_id = ?"
            " AND deliver_at > ? AND NOT EXISTS (SELECT 1 FROM natural_deliveries d WHERE d.message_id = p.piece_key)"
            " ORDER BY deliver_at, position",
            (thread_id, due_after),
        )
        return [PlannedPiece(row[0], row[1], row[2], row[3]) for row in rows]

    async def forget_plans(self, thread_id: str, *, now: float) -> int:
        """A stopped persona's pieces still to come: never delivered, by this process or another.

        Claimed as if delivered (with no Discord message), so that the service pacing them out to a
        socket opened later on the same thread posts nothing either; how many were still to come.
        """
        async with self._db.transaction() as transaction:
            dropped = await transaction.execute(
                "INSERT INTO natural_deliveries (message_id, thread_id, claimed_at)"
                " SELECT piece_key, thread_id, ? FROM natural_planned WHERE thread_id = ?"
                " ON CONFLICT (message_id) DO NOTHING",
                (now, thread_id),
            )
            await transaction.execute("DELETE FROM natural_planned WHERE thread_id = ?", (thread_id,))
        return dropped

    # --- Housekeeping ---------------------------------------------------------------------------------

    async def prune(self, *, before_day: str, delivered_before: float) -> int:
        """Drop usage and notices of days before `before_day`, and deliveries claimed before `delivered_before`.

        So the tables do not grow forever; how many rows went. Keep deliveries for longer than
        Humalike could replay a message, or a replay would be claimed, and posted, again.
        """
        async with self._db.transaction() as transaction:
            usage = await transaction.execute("DELETE FROM natural_usage WHERE day < ?", (before_day,))
            notices = await transaction.execute("DELETE FROM channel_notices WHERE day < ?", (before_day,))
            deliveries = await transaction.execute(
                "DELETE FROM natural_deliveries WHERE claimed_at < ?", (delivered_before,)
            )
            planned = await transaction.execute("DELETE FROM natural_planned WHERE deliver_at < ?", (delivered_before,))
        return usage + notices + deliveries + planned
