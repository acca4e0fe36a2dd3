"""A persona's name made safe to post as a webhook message's `username`.

Discord refuses a webhook `username` that is empty, longer than 80 characters,
or contains "discord" or "clyde" in any case. Rather than drop the forbidden
word, one of its letters becomes a look-alike digit ("Discord" -> "Disc0rd",
"CLYDE" -> "CLYD3"): still readable, visibly the persona's name, and the other
letters keep their case. A digit is not a letter in any case, so a swapped word
can never spell the forbidden one again.
"""

from __future__ import annotations

import re
import unicodedata

from bot import discord_limits

FALLBACK_USERNAME = "Persona"

# Forbidden word -> (index of the letter to swap, its look-alike digit).
FORBIDDEN_WORDS = {"discord": (4, "0"), "clyde": (4, "3")}
# Mention keywords that are refused as a whole name; same swap, same reasoning.
FORBIDDEN_WHOLE_NAMES = {"everyone": (5, "0"), "here": (1, "3")}

_FORBIDDEN_ANYWHERE = re.compile("|".join(f"(?=({word}))" for word in FORBIDDEN_WORDS))
# Any character that NFKC-folds to something other than one character cannot
# be part of a forbidden word; it stands in the folded view as this sentinel.
_UNMATCHABLE = "\x00"


def webhook_username(name: str) -> str:
    """`name` cleaned to Discord's rules for a webhook `username`: 1 to 80 characters, no forbidden word."""
    visible = "".join(char for char in name if unicodedata.category(char) != "Cc")
    collapsed = " ".join(visible.split())
    safe = _swap_forbidden_words(collapsed)
    capped = _cap_at_word(safe, discord_limits.WEBHOOK_USERNAME)
    whole = FORBIDDEN_WHOLE_NAMES.get(_fold(capped))
    if whole is not None:
        capped = _swap_letter(capped, *whole)
    return capped or FALLBACK_USERNAME


def _fold(name: str) -> str:
    """A same-length view of `name` for matching: each character casefolded and NFKC-normalised.

    Discord's own check may see "ＤＩＳＣＯＲＤ" (fullwidth) as "discord", so we do too;
    the name itself keeps its characters unless one has to be swapped.
    """
    folded = []
    for char in name:
        normal = unicodedata.normalize("NFKC", char).casefold()
        folded.append(normal if len(normal) == 1 else _UNMATCHABLE)
    return "".join(folded)


def _swap_forbidden_words(name: str) -> str:
    chars = list(name)
    # Lookahead groups find overlapping hits too ("discordiscord" holds two).
    for match in _FORBIDDEN_ANYWHERE.finditer(_fold(name)):
        word = next(group for group in match.groups() if group)
        index, digit = FORBIDDEN_WORDS[word]
        chars[match.start() + index] = digit
    return "".join(chars)


def _swap_letter(name: str, index: int, digit: str) -> str:
    return name[:index] + digit + name[index + 1 :]


def _cap_at_word(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last space unless that would keep less than half."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    cut = space if space >= limit // 2 else limit
    return text[:cut].rstrip()
