"""Plain records read from and written to the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"  # row written; its start not sent yet (waiting for a slot, or for a restart)
    SENDING = "sending"  # its start is (or was) on the wire; Humalike has not confirmed it yet
    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"  # Humalike refused our polls (token); resumed at next start-up
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


class JobKind(StrEnum):
    ENHANCEMENT = "enhancement"  # one persona from a sketch
    POPULATION = "population"  # a cast of personas from a prompt


UNFINISHED_STATES = tuple(state.value for state in JobState if not state.is_finished)

# The longest name of a persona or a cast: Discord's limit for a webhook username, so that
# every persona can speak under its name as it is (bot/discord_limits.py; a test holds them together).
MAX_NAME_LENGTH = 80

# How readily a persona takes a turn no one asked of it in particular: 0 (only when called) to 100.
DEFAULT_TALKATIVENESS = 50
MAX_TALKATIVENESS = 100


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
    kind: JobKind = JobKind.ENHANCEMENT
    cast_size: int | None = None
    reply_stale: bool = False  # Discord took its latest reply nowhere
    lease_owner: str | None = None  # the bot process following it (storage/jobs.py, leases)
    lease_until: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        values = dict(row)
        values["state"] = JobState(values["state"])
        values["kind"] = JobKind(values["kind"])
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
    origin: str | None = None  # where an imported persona came from; None: made on Humalike
    talkativeness: int = DEFAULT_TALKATIVENESS
    nsfw: bool = False  # speaks only in age-restricted channels
    # An imported card's own `data` object, kept whole (greetings, lorebook, examples, other tools'
    # fields): bot/character.py reads it, export writes it back. None: not from a card.
    card_data: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> Persona:
        values = dict(row)
        values.pop("name_key", None)
        values["fields"] = json.loads(values.pop("fields_json"))
        card_json = values.pop("card_json", None)
        values["card_data"] = json.loads(card_json) if card_json else None
        values["nsfw"] = bool(values.get("nsfw", False))
        return cls(**values)


@dataclass(frozen=True)
class NewPersona:
    """A persona about to be saved: everything but its id. Its name may still get a number."""

    guild_id: int
    name: str
    creator_id: int
    creator_name: str | None
    enhancement_id: str | None  # what makes saving it again find the first save (None: imported)
    humalike_persona_id: str | None
    fields: dict[str, str]
    system_prompt: str
    markdown: str
    sketch: str
    grounding: str
    created_at: float
    origin: str | None = None  # where an imported persona came from; None: made on Humalike
    nsfw: bool = False
    card_data: dict[str, Any] | None = None  # an imported card's own `data` object

    def row(self) -> dict[str, object]:
        """Its columns as named parameters, but for the name, which the insert chooses."""
        return {
            "guild_id": self.guild_id,
            "creator_id": self.creator_id,
            "creator_name": self.creator_name,
            "enhancement_id": self.enhancement_id,
            "humalike_persona_id": self.humalike_persona_id,
            "fields_json": json.dumps(self.fields, ensure_ascii=False),
            "system_prompt": self.system_prompt,
            "markdown": self.markdown,
            "sketch": self.sketch,
            "grounding": self.grounding,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "origin": self.origin,
            "nsfw": int(self.nsfw),
            "card_json": json.dumps(self.card_data, ensure_ascii=False) if self.card_data is not None else None,
        }


def name_key(name: str) -> str:
    """How names compare: case and runs of spaces do not make two names different."""
    return " ".join(name.split()).casefold()
