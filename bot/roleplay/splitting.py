"""Where to cut a reply that is too long for one Discord message.

A cut prefers, in order, a paragraph break, a line break, the end of a
sentence, a space, and only then the middle of a word. Each kind counts first
only when it keeps at least half the limit in the first part (so a short
opening paragraph does not become a message of its own and the reply one
message longer); failing that, any boundary beats splitting a word.
"""

from __future__ import annotations

import re

from bot import discord_limits

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_LINE_BREAK = re.compile(r"\n")
# Sentence-ending punctuation (with any closing quotes or brackets) before a
# space; CJK full stops need no space after them.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]*_~]*(?=\s)|[。！？]+[”’」』）)]*")
_SPACE = re.compile(r"\s")


# In order of preference; True when the cut goes after the match (punctuation
# stays with its sentence), False when before it (the break starts the next
# part and is stripped there).
_BOUNDARIES: tuple[tuple[re.Pattern[str], bool], ...] = (
    (_PARAGRAPH_BREAK, False),
    (_LINE_BREAK, False),
    (_SENTENCE_END, True),
    (_SPACE, False),
)


def cut_point(text: str, limit: int = discord_limits.MESSAGE_CONTENT) -> int:
    """Where to cut `text` so that `text[:cut]` is at most `limit` characters and ends at the best boundary.

    Never 0 and never more than `limit` for a text longer than `limit`; a text that
    already fits is not cut (the whole length is returned).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if len(text) <= limit:
        return len(text)
    first_content = len(text) - len(text.lstrip())
    # The first part must hold some text, or it would be an empty message.
    lowest = first_content + 1
    for floor in (max(lowest, limit // 2), lowest):
        for pattern, cut_after in _BOUNDARIES:
            cut = _last_cut(text, limit, pattern, cut_after, floor)
            if cut is not None:
                return cut
    return limit


def _last_cut(text: str, limit: int, pattern: re.Pattern[str], cut_after: bool, floor: int) -> int | None:
    """The last cut of this kind in `floor..limit`, if there is one."""
    # A few characters past the limit, so a break or a space right at the limit is seen whole.
    window = text[: limit + 2]
    best = None
    for match in pattern.finditer(window):
        cut = match.end() if cut_after else match.start()
        if floor <= cut <= limit:
            best = cut
    return best


def split_message(text: str, limit: int = discord_limits.MESSAGE_CONTENT) -> list[str]:
    """`text` as parts of 1 to `limit` characters, stripped, cut where `cut_point` says; [] for blank text."""
    parts = []
    rest = text.strip()
    while len(rest) > limit:
        cut = cut_point(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
