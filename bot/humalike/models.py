"""Typed views of the Humalike enhancement responses.

The live service sends more keys than it documents and sometimes odd but legal
shapes (empty `fields`, `error` as a string or an object), so every model
ignores unknown keys and normalises the variants at the edge.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Grounding(StrEnum):
    OFF = "off"
    WEB = "web"
    RESEARCH = "research"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EnhancedPersona(_Lenient):
    persona_id: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    system_prompt: str = ""
    markdown: str = ""

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_as_strings(cls, value: Any) -> dict[str, str]:
        # Documented as strings; a stray number or null must not sink a paid-for persona.
        if not isinstance(value, dict):
            return {}
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    @field_validator("persona_id", "system_prompt", "markdown", mode="before")
    @classmethod
    def _none_as_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class JobFailure(_Lenient):
    """A failed job's `error`: documented as a string, sometimes an object."""

    code: str = "unknown_error"
    message: str | None = None


class PolledJob(_Lenient):
    """What every Humalike job answers to a poll: where it stands, and why it failed if it did."""

    id: str
    status: JobStatus
    error: JobFailure | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _error_shape(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        return {"code": str(value)}


class Enhancement(PolledJob):
    grounding: str | None = None
    persona: EnhancedPersona | None = None


class PopulationProgress(_Lenient):
    produced: int = 0
    total: int = 0


class PopulationResult(_Lenient):
    personas: list[EnhancedPersona] = Field(default_factory=list)


class Population(PolledJob):
    progress: PopulationProgress | None = None
    result: PopulationResult | None = None


class StartedJob(_Lenient):
    id: str
    status: JobStatus = JobStatus.PENDING
