"""`/scene recap`: the chat model writes a short "previously on…" of a channel's session."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.chat.client import ChatModel, ChatModelError
from bot.errors import UserFacingError
from bot.roleplay.scenes import ELLIPSIS, MAX_RECAP_CHARS
from bot.roleplay.session_log import LoggedLine
from bot.roleplay.token_meter import TABLE_TOKENS, TokenMeter, whole_reply

log = logging.getLogger(__name__)

# The most messages a recap reads back from Discord (three history pages): its newest, when longer.
RECAP_MAX_MESSAGES = 300
# The newest part of the session the model reads: a game night's worth, within a small model's context.
RECAP_SOURCE_CHARS = 16_000
# About 150 words, with room to finish the sentence.
RECAP_MAX_TOKENS = 400
RECAP_WORDS = 120

RECAP_INSTRUCTIONS = (
    'You write the "Previously on…" of a roleplay story played in a Discord channel, for the players '
    "to read before they pick the story up again. In at most {words} words of plain prose, in the past "
    "tense, tell what happened: where the story stands, what the characters did and learned, what is "
    "left open. No heading, no list, no quotes of whole lines. Never mention anyone with @."
)


def recap_messages(lines: Sequence[LoggedLine], *, scene: str, previous: str) -> list[dict[str, str]]:
    """The Chat Completions messages asking for a recap of `lines` (the newest that fit)."""
    system = [RECAP_INSTRUCTIONS.format(words=RECAP_WORDS)]
    if previous:
        system.append(f"The recap before this session: {previous}")
    if scene:
        system.append(f"The scene: {scene}")
    return [
        {"role": "system", "content": "\n\n".join(system)},
        {"role": "user", "content": "The session:\n" + transcript_text(lines, RECAP_SOURCE_CHARS)},
    ]


def transcript_text(lines: Sequence[LoggedLine], max_chars: int) -> str:
    """ "Name: line" per message, personas marked, the newest lines that fit in `max_chars`."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        who = f"{line.author_name} (character)" if line.persona else line.author_name
        text = f"{who}: {line.content}"
        if used + len(text) > max_chars and kept:
            break
        kept.append(text[-max_chars:])
        used += len(text) + 1
    kept.reverse()
    return "\n".join(kept)


def bounded_recap(text: str) -> str:
    """The model's recap, cut at a sentence (else a word) to fit MAX_RECAP_CHARS."""
    text = " ".join(text.split())
    if len(text) <= MAX_RECAP_CHARS:
        return text
    room = text[: MAX_RECAP_CHARS - len(ELLIPSIS)]
    sentence_end = max(room.rfind(". "), room.rfind("! "), room.rfind("? "))
    if sentence_end > MAX_RECAP_CHARS // 2:
        return room[: sentence_end + 1]
    return room.rsplit(" ", 1)[0] + ELLIPSIS


async def write_recap(
    chat: ChatModel,
    lines: Sequence[LoggedLine],
    *,
    scene: str,
    previous: str,
    meter: TokenMeter | None,
    guild_id: int,
) -> str:
    """The recap, bounded; a UserFacingError when the model fails or writes nothing, or the server is at its cap.

    Its tokens count towards the server's day like any persona's turn.
    """
    if meter is not None:
        await meter.check_room(guild_id)
    messages = recap_messages(lines, scene=scene, previous=previous)
    try:
        text = await whole_reply(
            chat, messages, max_tokens=RECAP_MAX_TOKENS, meter=meter, guild_id=guild_id, persona_id=TABLE_TOKENS
        )
    except ChatModelError as error:
        log.warning("The chat model failed to write a recap: %s", error.kind)
        raise UserFacingError(f"No recap this time. {error.user_line()}") from None
    recap = bounded_recap(text)
    if not recap:
        raise UserFacingError("The chat model wrote no recap. Try `/scene recap` again in a moment.")
    return recap
