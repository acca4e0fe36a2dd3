"""Plain records read from and written to the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"  # row written; Humalike has not accepted the job yet
    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"  # Humalike refused our polls (token); resumed at next start-up
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


UNFINISHED_STATES = tuple(state.value for state in JobState if not state.is_finished)


@dataclass(frozen=True)
class Job:
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    sketch: str
    grounding: str
    requested_name: str | None
    state: JobState
    enhancement_id: str | None
    error_code: str | None
    error_detail: str | None
    application_id: int | None
    interaction_token: str | None
    token_expires_at: float | None
    message_id: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    deadline_at: float | None
    timed_out: bool
    persona_id: int | None
    retry_of: int | None
    user_name: str | None = None
    kind: str = "enhancement"  # or "population": a cast
    cast_size: int | None = None
    reply_stale: bool = False  # Discord took its latest reply nowhere

    @property
    def is_cast(self) -> bool:
        return self.kind == "population"

    @classmethod
    def from_row(cls, row: Any) -> Job:
        values = dict(row)
        values["state"] = JobState(values["state"])
        values["timed_out"] = bool(values["timed_out"])
        values["reply_stale"] = bool(values["reply_stale"])
        return cls(**values)


@dataclass(frozen=True)
class Persona:
    id: int
    guild_id: int
    name: str
    creator_id: int
    enhancement_id: str | None
    humalike_persona_id: str | None
    fields: dict[str, str]
    system_prompt: str
    markdown: str
    sketch: str
    grounding: str
    created_at: float
    updated_at: float
    creator_name: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Persona:
        values = dict(row)
        values.pop("name_key", None)
        values["fields"] = json.loads(values.pop("fields_json"))
        return cls(**values)


def name_key(name: str) -> str:
    """How names compare: case and runs of spaces do not make two names different."""
    return " ".join(name.split()).casefold()
