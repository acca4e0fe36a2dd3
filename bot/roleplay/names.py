"""A persona's name made safe to post as a webhook message's `username`.

Discord refuses a webhook `username` that is empty, longer than 80 characters,
or contains "discord" or "clyde" in any case, and the names "everyone" and
"here". The name first loses its invisible characters (bot/names.py), and
letters of other scripts drawn like Latin ones count as the letters they
imitate. Rather than drop a forbidden word, one of its letters becomes a
look-alike digit ("Discord" -> "Disc0rd", "CLYDE" -> "CLYD3"): still readable,
visibly the persona's name, and the other letters keep their case. A digit is
not a letter in any case, so a swapped word can never spell the forbidden one
again.
"""

from __future__ import annotations

import re
import unicodedata

from bot import discord_limits
from bot.names import without_invisibles

FALLBACK_USERNAME = "Persona"

# Forbidden word -> (index of the letter to swap, its look-alike digit).
FORBIDDEN_WORDS = {"discord": (4, "0"), "clyde": (4, "3")}
# Mention keywords that are refused as a whole name; same swap, same reasoning.
FORBIDDEN_WHOLE_NAMES = {"everyone": (5, "0"), "here": (1, "3")}

# Cyrillic, Greek and Armenian letters drawn like the Latin letters of the words above, as they
# read once casefolded ("Ε", Greek capital epsilon, folds to "ε"): a name spelling "Discord" with
# a Cyrillic "о" reads as Discord, and is treated so. NFKC already folds fullwidth and styled forms.
LOOKALIKES = {
    "c": "сϲ",
    "d": "ԁ",
    "e": "еε",
    "h": "һнη",
    "i": "іιıӏ",
    "l": "ӏ",
    "n": "ν",
    "o": "оοօ",
    "s": "ѕ",
    "v": "νѵ",
    "y": "уүυ",
}
# Any character that NFKC-folds to something other than one character cannot
# be part of a forbidden word; it stands in the folded view as this sentinel.
_UNMATCHABLE = "\x00"


def _spelling(word: str) -> str:
    """A pattern matching `word` in a folded view, any letter of it possibly a look-alike."""
    return "".join(f"[{re.escape(letter + LOOKALIKES.get(letter, ''))}]" for letter in word)


# Lookahead groups find overlapping hits too ("discordiscord" holds two).
_FORBIDDEN_ANYWHERE = re.compile("|".join(f"(?=(?P<{word}>{_spelling(word)}))" for word in FORBIDDEN_WORDS))
_FORBIDDEN_WHOLE = {word: re.compile(_spelling(word)) for word in FORBIDDEN_WHOLE_NAMES}


def webhook_username(name: str) -> str:
    """`name` cleaned to Discord's rules for a webhook `username`: 1 to 80 characters, no forbidden word."""
    spaced = "".join(" " if char.isspace() else char for char in name)
    # Zero-width and bidi characters go: hidden inside "Disc\u200bord" they would hide the word.
    collapsed = " ".join(without_invisibles(spaced).split())
    safe = _swap_forbidden_words(collapsed)
    capped = _cap_at_word(safe, discord_limits.WEBHOOK_USERNAME)
    return _swap_forbidden_whole_name(capped) or FALLBACK_USERNAME


def _fold(name: str) -> tuple[str, list[int]]:
    """A view of `name` for matching, and the index in `name` of each of its characters.

    Each character is NFKC-normalised and casefolded: Discord's own check may see
    "ＤＩＳＣＯＲＤ" (fullwidth) as "discord", so we do too. Combining marks are left out
    of the view ("Disc\u0301ord" still reads as Discord). The name itself keeps its
    characters unless one has to be swapped.
    """
    folded, positions = [], []
    for index, char in enumerate(name):
        if unicodedata.category(char) == "Mn":
            continue
        normal = unicodedata.normalize("NFKC", char).casefold()
        folded.append(normal if len(normal) == 1 else _UNMATCHABLE)
        positions.append(index)
    return "".join(folded), positions


def _swap_forbidden_words(name: str) -> str:
    chars = list(name)
    folded, positions = _fold(name)
    for match in _FORBIDDEN_ANYWHERE.finditer(folded):
        word = next(word for word, hit in match.groupdict().items() if hit is not None)
        index, digit = FORBIDDEN_WORDS[word]
        chars[positions[match.start() + index]] = digit
    return "".join(chars)


def _swap_forbidden_whole_name(name: str) -> str:
    folded, positions = _fold(name)
    for word, pattern in _FORBIDDEN_WHOLE.items():
        if pattern.fullmatch(folded):
            index, digit = FORBIDDEN_WHOLE_NAMES[word]
            return _swap_letter(name, positions[index], digit)
    return name


def _swap_letter(name: str, index: int, digit: str) -> str:
    return name[:index] + digit + name[index + 1 :]


def _cap_at_word(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at the last space unless that would keep less than half."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    cut = space if space >= limit // 2 else limit
    return text[:cut].rstrip()
