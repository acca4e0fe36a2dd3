"""Typed views of Humalike's turn-taking API: what we send, what it answers, what its socket pushes.

What we send is strict: the documented limits are in the types, so a value out of
range fails where it is built (a pydantic `ValidationError`, which is a `ValueError`)
and is never sent. What the service answers is lenient, like `models.py`: unknown
keys are ignored and a `null` list or string reads as empty.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, StrictInt, field_validator, model_validator

# The documented limits (submit_messages, respond, record_event, open_thread pages).
MAX_BATCH = 20
MAX_CONTENT = 4000
MAX_NAME = 255
MAX_SYSTEM_PROMPT = 100_000
MAX_METADATA_BYTES = 4096

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Content = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT)]
SystemPrompt = Annotated[str, Field(max_length=MAX_SYSTEM_PROMPT)]
Id = Annotated[str, Field(min_length=1)]


# --- What we send ---------------------------------------------------------------------------------


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def body(self) -> dict[str, Any]:
        """The JSON body: optional fields left out rather than sent as null."""
        return self.model_dump(mode="json", exclude_none=True)


class InboundMessage(_Outbound):
    """One message for `submit_messages`.

    `client_ts` (the message's own send time) also tells two identical lines apart: the
    service knows a retried batch by its messages, since the contract has no idempotency key.
    With media, put a short placeholder such as "[image]" in `content`.
    """

    sender: Name
    content: Content
    has_media: bool = False
    client_ts: AwareDatetime | None = None


class SocialSignals(_Outbound):
    channel_id: Name | None = None


class SocialMemory(_Outbound):
    """`memory_bank_id` defaults to the thread's id (memory isolated to that thread)."""

    memory_bank_id: Name | None = None


class Integrations(_Outbound):
    """Set on create; a re-open that sends it updates it; `None` on a re-open leaves it as it is."""

    social_signals: SocialSignals | None = None
    social_memory: SocialMemory | None = None


class Pacing(_Outbound):
    """Per-reply pacing overrides; each one left out keeps the service's default."""

    reading_delay_ms: Annotated[float, Field(ge=0, le=30_000)] | None = None
    typing_wpm: Annotated[float, Field(gt=0, le=2000)] | None = None
    max_typing_ms: Annotated[float, Field(gt=0, le=60_000)] | None = None


class ActivityType(StrEnum):
    """What `record_event` reports: activity that is not a message."""

    TYPING_START = "typing_start"
    TYPING_STOP = "typing_stop"
    MESSAGE_EDITED = "message_edited"


class OpenThreadRequest(_Outbound):
    thread_id: UUID | None = None
    integrations: Integrations | None = None


class SubmitRequest(_Outbound):
    thread_id: Id
    messages: Annotated[tuple[InboundMessage, ...], Field(min_length=1, max_length=MAX_BATCH)]
    system_prompt: SystemPrompt | None = None
    skip_decide: bool = False


class RespondRequest(_Outbound):
    thread_id: Id
    content: Content
    turn_epoch: StrictInt
    system_prompt: SystemPrompt | None = None
    agent_name: Name | None = None
    pacing: Pacing | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _metadata_fits(self) -> RespondRequest:
        if self.metadata is not None and metadata_size(self.metadata) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialize to at most {MAX_METADATA_BYTES} bytes")
        return self


class RecordEventRequest(_Outbound):
    thread_id: Id
    type: ActivityType
    sender: Name
    client_ts: AwareDatetime | None = None


def metadata_size(metadata: Any) -> int:
    """Bytes of `metadata` serialized as the service would (compact JSON in UTF-8, as `JSON.stringify`
    writes it): what its 4096-byte limit is read against."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


# --- What the service answers ----------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _empty_if_none(value: Any, empty: Any) -> Any:
    return empty if value is None else value


class ThreadInfo(_Lenient):
    id: str
    user_id: str = ""
    created_at: str | None = None
    updated_at: str | None = None


def _as_utc(value: Any) -> Any:
    """A time without a zone is read as UTC: a reply already scheduled and billed must not be
    lost to a missing `Z`."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class RealtimeGrant(_Lenient):
    """Where to listen: open a WebSocket to `connect_url` exactly as given, before `expires_at`.

    `connect_url` carries the socket's credential: kept secret, so no repr or log shows it."""

    connect_url: SecretStr
    expires_at: datetime | None = None

    @field_validator("expires_at", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _as_utc(value)


class OpenedThread(_Lenient):
    thread: ThreadInfo
    channel: str = ""
    realtime: RealtimeGrant

    @property
    def thread_id(self) -> str:
        return self.thread.id


class Decision(StrEnum):
    SPEAK = "speak"
    STAY_SILENT = "stay_silent"


class SubmitResult(_Lenient):
    decision: Decision
    turn_epoch: int
    tags: list[str] = Field(default_factory=list)
    recalled_context: str = ""

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return _empty_if_none(value, [])

    @field_validator("recalled_context", mode="before")
    @classmethod
    def _no_context(cls, value: Any) -> Any:
        return _empty_if_none(value, "")

    @property
    def speak(self) -> bool:
        return self.decision is Decision.SPEAK


class ScheduledMessage(_Lenient):
    """One piece of a paced reply and when the socket delivers it: the fallback when the socket is down."""

    id: str
    thread_id: str = ""
    content: str
    position: int
    deliver_at: datetime
    status: str = ""

    @field_validator("deliver_at", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _as_utc(value)


class RespondResult(_Lenient):
    """`superseded`: the draft was stale (a newer batch came first); nothing was scheduled or billed."""

    scheduled: list[ScheduledMessage] = Field(default_factory=list)
    superseded: bool = False

    @field_validator("scheduled", mode="before")
    @classmethod
    def _none_scheduled(cls, value: Any) -> Any:
        return _empty_if_none(value, [])


# --- What the socket pushes ------------------------------------------------------------------------


class AgentMessage(_Lenient):
    """`turn_taking.message` data: one paced piece of the agent's reply. `metadata` is ours, echoed."""

    message_id: str
    thread_id: str = ""
    content: str
    position: int
    sent_at: str | None = None
    metadata: dict[str, Any] | None = None


class Typing(_Lenient):
    thread_id: str = ""
    typing: bool


class Signal(_Lenient):
    thread_id: str = ""
    user_id: str = ""
    kind: str


class _Envelope(_Lenient):
    id: str = ""
    channel: str = ""
    ts: str | None = None


class MessageEvent(_Envelope):
    type: Literal["turn_taking.message"] = "turn_taking.message"
    data: AgentMessage


class TypingEvent(_Envelope):
    type: Literal["turn_taking.typing"] = "turn_taking.typing"
    data: Typing


class SignalEvent(_Envelope):
    type: Literal["turn_taking.signal"] = "turn_taking.signal"
    data: Signal


class OtherEvent(_Envelope):
    """An event type the overview does not list: passed on, for the caller to ignore."""

    type: str
    data: Any = None


Event = MessageEvent | TypingEvent | SignalEvent | OtherEvent
EVENT_TYPES: dict[str, type[MessageEvent | TypingEvent | SignalEvent]] = {
    "turn_taking.message": MessageEvent,
    "turn_taking.typing": TypingEvent,
    "turn_taking.signal": SignalEvent,
}
