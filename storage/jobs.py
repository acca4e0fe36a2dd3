"""Enhancement jobs: written before Humalike is called, read back on restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.errors import IntegrityError
from storage.models import UNFINISHED_STATES, Job, JobKind, JobState

_UNFINISHED = ", ".join(f"'{state}'" for state in UNFINISHED_STATES)
# Unfinished, not already ours, and with no live lease (unless every job is to be taken).
_CLAIMABLE = (
    f"state IN ({_UNFINISHED}) AND (lease_owner IS NULL OR lease_owner <> :owner)"
    " AND (:every_job OR lease_until IS NULL OR lease_until < :now)"
)


@dataclass(frozen=True)
class Lease:
    """A job held by one bot process (`owner`) until `until` (wall-clock seconds)."""

    owner: str
    until: float


class TooManyJobs(Exception):
    def __init__(self, in_flight: int) -> None:
        super().__init__(f"{in_flight} jobs already in flight")
        self.in_flight = in_flight


class AlreadyRetried(Exception):
    """A failed job can be retried once; a second click must not start a second job."""


class JobStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def shared(self) -> bool:
        """Whether other bot processes may use this database too (PostgreSQL), so leases matter."""
        return self._db.backend != "sqlite"

    async def create(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        sketch: str,
        grounding: str,
        requested_name: str | None,
        created_at: float,
        max_in_flight: int,
        retry_of: int | None = None,
        user_name: str | None = None,
        kind: JobKind = JobKind.ENHANCEMENT,
        cast_size: int | None = None,
        lease: Lease | None = None,
    ) -> Job:
        """Record a new job, unless the user already has `max_in_flight` unfinished ones.

        One statement, so the limit check and the insert are atomic without a transaction: this is
        on the path to answering the member, and a burst of commands queues on the one connection.
        Serialised per member, so processes sharing a database keep the limit exact too.
        """
        try:
            rows = await self._db.write_returning(
                "INSERT INTO jobs (guild_id, channel_id, user_id, sketch, grounding, requested_name,"
                " state, created_at, retry_of, user_name, kind, cast_size, lease_owner, lease_until)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                f" WHERE (SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ({_UNFINISHED})) < ?"
                " RETURNING *",
                (
                    guild_id,
                    channel_id,
                    user_id,
                    sketch,
                    grounding,
                    requested_name,
                    JobState.QUEUED.value,
                    created_at,
                    retry_of,
                    user_name,
                    kind,
                    cast_size,
                    lease.owner if lease else None,
                    lease.until if lease else None,
                    user_id,
                    max_in_flight,
                ),
                serialize_on=f"member-jobs:{user_id}",
            )
        except IntegrityError:
            raise AlreadyRetried() from None
        if not rows:
            row = await self._db.fetch_one(
                f"SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state IN ({_UNFINISHED})", (user_id,)
            )
            raise TooManyJobs(row[0] if row else max_in_flight)
        return Job.from_row(rows[0])

    async def discard(self, job_id: int) -> None:
        """Forget a job that never reached the user nor Humalike (its reply could not be sent)."""
        await self._db.write("DELETE FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.QUEUED.value))

    async def get(self, job_id: int) -> Job | None:
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(row) if row else None

    async def retry_of(self, job_id: int) -> Job | None:
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE retry_of = ?", (job_id,))
        return Job.from_row(row) if row else None

    async def unfinished(self) -> list[Job]:
        rows = await self._db.fetch_all(f"SELECT * FROM jobs WHERE state IN ({_UNFINISHED}) ORDER BY id")
        return [Job.from_row(row) for row in rows]

    async def attach_reply(
        self, job_id: int, *, application_id: int, token: str, token_expires_at: float, message_id: int
    ) -> Job | None:
        """Record where the job's reply is; the job as it now stands."""
        return await self._update_returning(
            "UPDATE jobs SET application_id = ?, interaction_token = ?, token_expires_at = ?, message_id = ?"
            " WHERE id = ? RETURNING *",
            (application_id, token, token_expires_at, message_id, job_id),
        )

    async def replace_reply(self, job_id: int, message_id: int) -> None:
        """The reply now lives in a plain channel message; the interaction token is of no more use."""
        await self._db.write(
            "UPDATE jobs SET message_id = ?, interaction_token = NULL, token_expires_at = NULL WHERE id = ?",
            (message_id, job_id),
        )

    # --- Leases: which process follows which job -------------------------------------------------

    async def claim_orphans(self, lease: Lease, *, now: float, limit: int = 100, every_job: bool = False) -> list[Job]:
        """Take unfinished jobs whose lease ran out (or that never had one); the jobs now held.

        Two processes claiming at once never take the same job: PostgreSQL skips rows another
        claim has locked, and re-checks the lease of a row that changed meanwhile; SQLite runs one
        statement at a time. `every_job` takes live leases too, for a database no other process uses.
        """
        skip_locked = " FOR UPDATE SKIP LOCKED" if self._db.backend == "postgresql" else ""
        rows = await self._db.write_returning(
            "UPDATE jobs SET lease_owner = :owner, lease_until = :until"
            f" WHERE {_CLAIMABLE} AND id IN"
            f" (SELECT id FROM jobs WHERE {_CLAIMABLE} ORDER BY id LIMIT :limit{skip_locked})"
            " RETURNING *",
            {"owner": lease.owner, "until": lease.until, "now": now, "limit": limit, "every_job": every_job},
        )
        return sorted((Job.from_row(row) for row in rows), key=lambda job: job.id)

    async def renew_leases(self, lease: Lease) -> set[int]:
        """Extend every lease `lease.owner` holds on an unfinished job; the ids of those jobs."""
        rows = await self._db.write_returning(
            f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND state IN ({_UNFINISHED}) RETURNING id",
            (lease.until, lease.owner),
        )
        return {row[0] for row in rows}

    async def release_leases(self, owner: str) -> int:
        """Give up every lease `owner` holds, so another process takes its jobs over at once."""
        return await self._db.write(
            f"UPDATE jobs SET lease_until = NULL WHERE lease_owner = ? AND state IN ({_UNFINISHED})", (owner,)
        )

    async def mark_sending(self, job_id: int) -> Job | None:
        """Claim a queued job for sending its start; the job as it now stands, or None if it was not queued.

        Written (durably) before the request goes out: a job left "queued" by a stop was never sent.
        """
        return await self._update_returning(
            "UPDATE jobs SET state = ? WHERE id = ? AND state = ? RETURNING *",
            (JobState.SENDING.value, job_id, JobState.QUEUED.value),
        )

    async def mark_started(
        self, job_id: int, *, enhancement_id: str, started_at: float, deadline_at: float
    ) -> Job | None:
        """Record that Humalike accepted the job; the job as it now stands."""
        return await self._update_returning(
            "UPDATE jobs SET state = ?, enhancement_id = ?, started_at = ?, deadline_at = ? WHERE id = ? RETURNING *",
            (JobState.PENDING.value, enhancement_id, started_at, deadline_at, job_id),
        )

    async def _update_returning(self, sql: str, params: tuple[Any, ...]) -> Job | None:
        # The updated row comes back with the write: no second trip to read it.
        rows = await self._db.write_returning(sql, params)
        return Job.from_row(rows[0]) if rows else None

    async def mark_reply_stale(self, job_id: int, stale: bool) -> None:
        await self._db.write("UPDATE jobs SET reply_stale = ? WHERE id = ?", (int(stale), job_id))

    async def finished_with_stale_replies(self) -> list[Job]:
        rows = await self._db.fetch_all(
            f"SELECT * FROM jobs WHERE reply_stale = 1 AND state NOT IN ({_UNFINISHED}) ORDER BY id"
        )
        return [Job.from_row(row) for row in rows]

    async def set_state(self, job_id: int, state: JobState) -> None:
        await self._db.write(
            f"UPDATE jobs SET state = ? WHERE id = ? AND state IN ({_UNFINISHED})", (state.value, job_id)
        )

    async def mark_timed_out(self, job_id: int) -> None:
        await self._db.write("UPDATE jobs SET timed_out = 1 WHERE id = ?", (job_id,))

    async def finish_failed(self, job_id: int, *, code: str, detail: str | None, finished_at: float) -> None:
        await self._db.write(
            "UPDATE jobs SET state = ?, error_code = ?, error_detail = ?, finished_at = ? WHERE id = ?",
            (JobState.FAILED.value, code, detail, finished_at, job_id),
        )
