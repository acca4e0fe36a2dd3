"""The one rule for a persona's or a cast's name, however it gets one.

/enhance and /cast (asked for or inferred), /persona rename and edit, and
/persona import all pass a name through `tidy_name`, so every name the bot
stores reads the same in every message: no Markdown that could make a masked
link or formatting, no invisible characters, one line, at most MAX_NAME_LENGTH
characters. A name with nothing visible left is refused (`required_name`).
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UserFacingError
from storage.models import MAX_NAME_LENGTH

EMPTY_NAME = "That name has nothing printable in it once formatting, links and invisible characters are left out."

# Categories that draw nothing: format characters (zero-width spaces and joiners, bidi overrides
# and isolates, soft hyphens, tags), controls, surrogates, private use and unassigned code points.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn"})
# Default-ignorable or blank characters outside those categories, which no category check can find:
# the combining grapheme joiner, the Hangul fillers, the Khmer inherent vowels, the Mongolian
# variation selectors, and the blank Braille pattern.
INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0")
# A character someone can see: a letter, digit, punctuation or symbol (not a mark, space or the above).
VISIBLE_CATEGORY_PREFIXES = ("L", "N", "P", "S")

# [text](url), which Discord shows as `text` leading anywhere: only the text is kept.
_MASKED_LINK = re.compile(r"\[([^\[\]]*)\]\([^)]*\)")
# Markers of bold, italics, underline, strike-through, code, spoilers, headings, quotes, links.
_MARKDOWN = re.compile(r"[*_`~#>|\[\]]")


def is_invisible(char: str) -> bool:
    return char in INVISIBLE_EXTRA or unicodedata.category(char) in INVISIBLE_CATEGORIES


def without_invisibles(text: str) -> str:
    """`text` without the characters that draw nothing (see INVISIBLE_CATEGORIES and INVISIBLE_EXTRA)."""
    return "".join(char for char in text if not is_invisible(char))


def has_visible(text: str) -> bool:
    return any(unicodedata.category(char).startswith(VISIBLE_CATEGORY_PREFIXES) for char in text)


def tidy_name(raw: str, *, limit: int | None = MAX_NAME_LENGTH) -> str:
    """`raw` as a name: invisibles and Markdown out, a masked link reduced to its text, one line.

    Capped at `limit` characters (None: not capped, for a caller that refuses a long name instead).
    Empty when nothing visible is left.
    """
    # Every space (tabs and newlines too, before controls go) becomes a plain space, collapsed below.
    text = "".join(" " if char.isspace() or unicodedata.category(char).startswith("Z") else char for char in raw)
    text = without_invisibles(unicodedata.normalize("NFC", text))
    text = _MASKED_LINK.sub(r"\1", text)
    text = " ".join(_MARKDOWN.sub("", text).split())
    if not has_visible(text):
        return ""
    return text if limit is None else text[:limit].rstrip()


def required_name(raw: str, *, advice: str = "Pick another.") -> str:
    """`raw` tidied, or a UserFacingError (ending with `advice`) when nothing visible is left of it."""
    name = tidy_name(raw)
    if not name:
        raise UserFacingError(f"{EMPTY_NAME} {advice}")
    return name
