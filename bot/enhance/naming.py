"""Choosing a persona's name from whatever the user and Humalike gave us.

In order: the `name` option, `fields.name` (or a close cousin), the sketch
("Sam is a ..." gives "Sam"), the sheet (a heading, a "Name:" line, "You
are ..."), else a placeholder the owner can rename later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.names import tidy_name
from storage.models import MAX_NAME_LENGTH

PLACEHOLDER_NAME = "Unnamed persona"

NAME_FIELD_KEYS = ("name", "full_name", "fullname", "display_name", "character_name", "persona_name")
# Capitalised words that start sentences but are not names.
NOT_NAMES = {"a", "an", "the", "this", "that", "my", "our", "he", "she", "they", "it", "i", "we", "you"}

_NAME_WORD = r"[A-Z][\w'’.-]*"
# A name stays on one line, and a word ending a sentence ("Okafor.") ends it; an initial or a title does not.
_NEXT_WORD = rf"(?:(?:(?<![a-z]{{2}}\.)|(?<=Mrs\.)|(?<=Prof\.))[ \t]+{_NAME_WORD})"
_NAME = rf"{_NAME_WORD}{_NEXT_WORD}{{0,3}}"
_SKETCH_NAME = re.compile(
    rf"^\s*(?:(?i:name)[ \t]*[:=-][ \t]*(?P<labelled>{_NAME})[ \t]*(?:$|,|\(|-|—)"
    rf"|(?P<name>{_NAME})\s*(?:,|\(|\bis\b|\bwas\b|:|-|—))",
    re.MULTILINE,
)
_NAME_LINE = re.compile(r"^\W*name\W*[:=-]\s*(?P<name>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# Only a top-level heading names the sheet; "## Overview" is a section.
_HEADING = re.compile(r"^\s{0,3}#\s+(?P<name>.+?)\s*#*\s*$", re.MULTILINE)
_YOU_ARE = re.compile(rf"\bYou are (?P<name>{_NAME})")


def clean_name(raw: str) -> str:
    """A name read out of text: tidied (bot/names.py), without the punctuation around it ("Sam." gives "Sam")."""
    return tidy_name(tidy_name(raw).strip(" .,;:!?-—'\""))


def name_from_fields(fields: Mapping[str, str]) -> str | None:
    by_key = {key.strip().lower(): value for key, value in fields.items()}
    for key in NAME_FIELD_KEYS:
        name = clean_name(by_key.get(key, ""))
        if name:
            return name
    return None


def name_from_sketch(sketch: str) -> str | None:
    match = _SKETCH_NAME.match(sketch)
    if not match:
        return None
    words = (match.group("labelled") or match.group("name")).split()
    while words and words[0].lower() in NOT_NAMES:
        words.pop(0)
    return clean_name(" ".join(words)) or None


def name_from_sheet(sheet: str) -> str | None:
    for pattern in (_HEADING, _NAME_LINE):
        match = pattern.search(sheet)
        if match:
            name = clean_name(match.group("name"))
            if name and len(name.split()) <= 6:
                return name
    match = _YOU_ARE.search(sheet)
    if match:
        return name_from_sketch(match.group("name") + ",")
    return None


def cast_name_from(prompt: str) -> str:
    """A cast's name when none was given: its prompt, shortened to a few words."""
    words = tidy_name(prompt).split()
    name = " ".join(words[:6]) + ("…" if len(words) > 6 else "")
    return name[:MAX_NAME_LENGTH] or "Cast"


def infer_name(
    *,
    requested: str | None,
    fields: Mapping[str, str],
    sketch: str,
    sheet: str,
    system_prompt: str = "",
    placeholder: str = PLACEHOLDER_NAME,
) -> str:
    for candidate in (
        tidy_name(requested) if requested else None,
        name_from_fields(fields),
        name_from_sketch(sketch),
        name_from_sheet(sheet),
        name_from_sheet(system_prompt),
    ):
        if candidate:
            return candidate
    return placeholder
