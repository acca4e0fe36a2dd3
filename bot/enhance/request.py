"""What a member asks Humalike to make, and the checks it passes before anything is recorded."""

from __future__ import annotations

from dataclasses import dataclass

from bot import discord_limits
from bot.errors import UserFacingError
from bot.names import required_name
from storage.models import JobKind

# A form's paragraph holds this much; the slash option is held to the same.
SKETCH_LIMIT = discord_limits.TEXT_INPUT


@dataclass(frozen=True)
class JobRequest:
    """One persona from a sketch, or a cast of `size` personas from a prompt (`text` is either)."""

    kind: JobKind
    text: str
    grounding: str
    name: str | None = None  # the persona's, or the cast's
    size: int | None = None  # a cast's member count
    retry_of: int | None = None  # the failed job this one retries


def checked_sketch(sketch: str) -> str:
    """The sketch as sent to Humalike, or a UserFacingError saying what is wrong with it."""
    text = sketch.strip()
    if not text:
        raise UserFacingError("The sketch is empty. Describe your character in a sentence or more.")
    if len(text) > SKETCH_LIMIT:
        raise UserFacingError(
            f"The sketch is {len(text):,} characters; the limit is {SKETCH_LIMIT:,}. Trim it and try again."
        )
    return text


def checked_name(name: str | None) -> str | None:
    """The name asked for, tidied; None when none was asked for; a UserFacingError when nothing is left."""
    return None if name is None else required_name(name, advice="Pick another, or leave it out.")
