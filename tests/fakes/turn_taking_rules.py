"""What the turn-taking pages say each request body must be. The fake refuses anything else.

Each function returns the problems of one body as `(field, message)` pairs, the
`{field, message}` details of a `VALIDATION_ERROR`; an empty list is a valid body.
Written from the pages, not from the client, so the two can disagree and a test see it.
Lengths are counted in characters; unknown keys are ignored.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.fakes.humalike import ID_PATTERN, error_body

Problem = tuple[str, str]

MAX_MESSAGES = 20
MAX_TEXT = 4000
MAX_NAME = 255
MAX_SYSTEM_PROMPT = 100_000
MAX_METADATA_BYTES = 4096
EVENT_TYPES = ("typing_start", "typing_stop", "message_edited")
# (field, lowest, highest, whether the lowest itself is allowed), from respond's PacingOverrides.
PACING_RANGES = (
    ("reading_delay_ms", 0, 30_000, True),
    ("typing_wpm", 0, 2000, False),
    ("max_typing_ms", 0, 60_000, False),
)


def refusal(problems: list[Problem]) -> dict[str, Any]:
    """The body of a refused request: `VALIDATION_ERROR` with `{field, message}` details."""
    details = [{"field": where, "message": message} for where, message in problems]
    return error_body("VALIDATION_ERROR", "The request body is invalid.", details=details)


def open_thread_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")]
    problems = []
    thread_id = body.get("thread_id")
    if thread_id is not None and not is_uuid(thread_id):
        problems.append(("thread_id", "must be a UUID"))
    integrations = body.get("integrations")
    if integrations is None:
        return problems
    if not isinstance(integrations, dict):
        return [*problems, ("integrations", "must be an object")]
    for name, keys in (("social_signals", ("channel_id",)), ("social_memory", ("memory_bank_id", "scope_id"))):
        block = integrations.get(name)
        if block is None:
            continue
        if not isinstance(block, dict):
            problems.append((f"integrations.{name}", "must be an object"))
            continue
        for key in keys:
            problems += text(block, key, f"integrations.{name}.{key}", required=False, low=0, high=MAX_NAME)
    return problems


def submit_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")]
    problems = text(body, "thread_id", "thread_id")
    messages = body.get("messages")
    if not isinstance(messages, list):
        problems.append(("messages", "is required and must be an array"))
    elif not 1 <= len(messages) <= MAX_MESSAGES:
        problems.append(("messages", f"must hold 1 to {MAX_MESSAGES} messages, not {len(messages)}"))
    else:
        for index, message in enumerate(messages):
            where = f"messages.{index}"
            if not isinstance(message, dict):
                problems.append((where, "must be an object"))
                continue
            problems += text(message, "sender", f"{where}.sender", high=MAX_NAME)
            problems += text(message, "content", f"{where}.content", high=MAX_TEXT)
            problems += timestamp(message, "client_ts", f"{where}.client_ts")
            problems += boolean(message, "has_media", f"{where}.has_media")
    problems += text(body, "system_prompt", "system_prompt", required=False, low=0, high=MAX_SYSTEM_PROMPT)
    return problems + boolean(body, "skip_decide", "skip_decide")


def respond_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")]
    problems = text(body, "thread_id", "thread_id") + text(body, "content", "content", high=MAX_TEXT)
    epoch = body.get("turn_epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        problems.append(("turn_epoch", "is required and must be an integer"))
    problems += text(body, "system_prompt", "system_prompt", required=False, low=0, high=MAX_SYSTEM_PROMPT)
    problems += text(body, "agent_name", "agent_name", required=False, high=MAX_NAME)
    pacing = body.get("pacing")
    if pacing is not None and not isinstance(pacing, dict):
        problems.append(("pacing", "must be an object"))
    elif pacing is not None:
        for name, low, high, low_allowed in PACING_RANGES:
            value = pacing.get(name)
            if value is None:
                continue
            in_range = (low <= value if low_allowed else low < value) and value <= high
            if isinstance(value, bool) or not isinstance(value, int | float) or not in_range:
                problems.append((f"pacing.{name}", f"must be a number in {'[' if low_allowed else '('}{low}, {high}]"))
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        problems.append(("metadata", "must be an object"))
    elif metadata is not None and serialized_size(metadata) > MAX_METADATA_BYTES:
        problems.append(("metadata", f"must serialize to at most {MAX_METADATA_BYTES} bytes"))
    return problems


def serialized_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON, as `JSON.stringify` writes it (no `\\u` escapes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def record_event_problems(body: Any) -> list[Problem]:
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")]
    problems = text(body, "thread_id", "thread_id")
    if body.get("type") not in EVENT_TYPES:
        problems.append(("type", f"must be one of {', '.join(EVENT_TYPES)}"))
    return problems + text(body, "sender", "sender", high=MAX_NAME) + timestamp(body, "client_ts", "client_ts")


def text(
    body: dict[str, Any], name: str, where: str, *, required: bool = True, low: int = 1, high: int | None = None
) -> list[Problem]:
    value = body.get(name)
    if value is None:
        return [(where, "is required")] if required else []
    if not isinstance(value, str):
        return [(where, "must be a string")]
    if len(value) < low or (high is not None and len(value) > high):
        return [(where, f"must be {low} to {high} characters" if high else f"must be at least {low} characters")]
    return []


def boolean(body: dict[str, Any], name: str, where: str) -> list[Problem]:
    value = body.get(name)
    return [] if value is None or isinstance(value, bool) else [(where, "must be a boolean")]


def timestamp(body: dict[str, Any], name: str, where: str) -> list[Problem]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return []
    return [(where, "must be an ISO 8601 time")]


def is_uuid(value: Any) -> bool:
    """The canonical form, `8-4-4-4-12` hex digits: what the page means by "a UUID"."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None
