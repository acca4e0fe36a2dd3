"""The state of the fake turn-taking service: threads, calls, decisions, replies cut into pieces, memory."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

DecisionName = Literal["speak", "stay_silent"]
MAX_PIECES = 5


@dataclass(frozen=True)
class Decide:
    """A scripted decision; `tags` are answered only on a thread with social signals."""

    decision: DecisionName = "speak"
    tags: tuple[str, ...] = ()


@dataclass
class Thread:
    """One account's thread and everything that happened on it."""

    owner: str
    id: str
    created_at: float
    updated_at: float
    integrations: dict[str, Any] = field(default_factory=dict)
    turn_epoch: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)  # every recorded inbound message
    activity: list[dict[str, Any]] = field(default_factory=list)  # every record_event body
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # a batch's messages -> its answer
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # (epoch, draft) -> respond's answer
    sent: list[dict[str, Any]] = field(default_factory=list)  # envelopes that reached a socket
    missed: list[dict[str, Any]] = field(default_factory=list)  # envelopes due while no socket listened

    @property
    def channel(self) -> str:
        return f"turn-taking-thread/{self.id}"

    def delivered(self) -> list[dict[str, Any]]:
        """The `data` of every `turn_taking.message` that reached a socket, in the order sent."""
        return [envelope["data"] for envelope in self.sent if envelope["type"] == "turn_taking.message"]


@dataclass
class Call:
    """One HTTP request. `status` is None when the answer was never sent (a dropped connection);
    `components` the billed units (`turn-taking`, `social-memory`, `theoryofmind`), empty when free."""

    action: str
    owner: str | None
    body: Any
    status: int | None
    request_id: str
    components: tuple[str, ...] = ()

    @property
    def billed(self) -> bool:
        return bool(self.components)


class MemoryBanks:
    """Social memory: per (account, bank id), what each sender said, in order."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def recall(self, thread: Thread, memory: Any, messages: list[dict[str, Any]]) -> str:
        """What the thread's bank heard this batch's senders say before; then the batch is kept.
        Empty without social memory on the thread. The bank defaults to the thread's id."""
        if not isinstance(memory, dict):
            return ""
        bank_id = memory.get("memory_bank_id") or memory.get("scope_id") or thread.id
        bank = self.lines.setdefault((thread.owner, bank_id), [])
        senders = {message["sender"] for message in messages}
        known = [f'{sender} said "{content}"' for sender, content in bank if sender in senders]
        bank.extend((message["sender"], message["content"]) for message in messages)
        return ("Earlier, " + "; ".join(known) + ".") if known else ""


def normalised(message: dict[str, Any]) -> dict[str, Any]:
    """A message with its defaults filled in: what tells one batch from another."""
    return {
        "sender": message["sender"],
        "content": message["content"],
        "client_ts": message.get("client_ts"),
        "has_media": bool(message.get("has_media", False)),
    }


def paced_pieces(content: str) -> tuple[str, ...]:
    """A draft as 1-5 chat messages: one a sentence, the fifth holding whatever is left."""
    sentences = [part for part in re.split(r"(?<=[.!?])\s+", content.strip()) if part]
    if len(sentences) > MAX_PIECES:
        sentences[MAX_PIECES - 1 :] = [" ".join(sentences[MAX_PIECES - 1 :])]
    return tuple(sentences) or (content,)


def schedule(thread: Thread, pieces: tuple[str, ...], deliver_at: list[str]) -> list[dict[str, Any]]:
    """respond's `scheduled`: each piece with its id (also its `message_id` on the socket) and time."""
    return [
        {
            "id": str(uuid.uuid4()),
            "thread_id": thread.id,
            "content": piece,
            "position": position,
            "deliver_at": deliver_at[position],
            "status": "scheduled",
        }
        for position, piece in enumerate(pieces)
    ]
