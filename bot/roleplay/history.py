"""The Chat Completions `messages` for one persona's turn in a channel.

The persona's own past lines are its `assistant` turns; everyone else's lines
(members and other personas alike) are `user` turns prefixed with the
speaker's display name. Consecutive lines of the same role are merged into one
message, because many OpenAI-compatible servers (llama.cpp, Ollama templates)
refuse roles that do not alternate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Shown in place of the start of a line cut to fit the history's size (and of a system prompt's end).
TRUNCATION_MARK = "…"
# Strict chat templates also want the first turn after the system message to be
# the user's; a session usually opens with the persona's greeting.
OPENING_TURN = "(The conversation starts.)"
OPENING_TURN_AFTER_CUT = "(Earlier messages are not shown.)"


@dataclass(frozen=True)
class ChannelLine:
    """One message of the channel: `persona_id` is set when a persona said it through the webhook.

    `message_id` is the Discord message the line starts in (None when unknown), and `continued_in`
    the messages a reply longer than Discord's limit went on in: Regenerate and Edit find a line by them.
    """

    author_name: str
    content: str
    persona_id: int | None
    author_id: int
    message_id: int | None = None
    continued_in: tuple[int, ...] = ()

    def shown_in(self, message_id: int) -> bool:
        return message_id == self.message_id or message_id in self.continued_in


@dataclass(frozen=True)
class SettingNote:
    """Where the persona is speaking, for the note after its system prompt."""

    guild_name: str
    channel_name: str
    other_personas: Sequence[str]


@dataclass(frozen=True)
class Stage:
    """What the table shares and the persona brings beyond its own prompt, each part already bounded.

    The order follows SillyTavern's: the character (prompt, lore, examples) first, then where the
    story stands (recap, scene), then the channel note; `after_history` and `cue` come after the
    conversation, as the last thing the model reads.
    """

    scene: str = ""  # the channel's /scene
    recap: str = ""  # the channel's last "previously on…"
    lore: Sequence[str] = ()  # lorebook entries in force, in their insertion order
    examples: str = ""  # the card's mes_example, placeholders filled
    after_history: str = ""  # the card's post_history_instructions, placeholders filled
    narrator: bool = False  # a game master: describes, never speaks for the players' characters
    cue: str = ""  # /roleplay next's nudge, or what /scene narrate asks to happen


NO_STAGE = Stage()


def build_messages(
    *,
    persona_id: int,
    persona_name: str,
    system_prompt: str,
    setting: SettingNote,
    lines: Sequence[ChannelLine],
    max_messages: int,
    max_chars: int,
    max_prompt_chars: int | None = None,
    stage: Stage = NO_STAGE,
) -> list[dict[str, str]]:
    """The system message, then the newest `lines` that fit `max_messages` and `max_chars`, as alternating turns.

    The persona's `system_prompt` is cut to its first `max_prompt_chars` characters (None: whole).
    """
    if max_messages < 1 or max_chars < 1:
        raise ValueError("max_messages and max_chars must be at least 1")
    # An empty assistant turn is refused by some servers; a member's empty line
    # (an image, a sticker) still shows that they spoke, so it stays.
    spoken = [line for line in lines if line.content.strip() or line.persona_id != persona_id]
    turns = _newest_turns(spoken, persona_id, max_messages, max_chars)
    system = system_message(persona_name, system_prompt, setting, max_prompt_chars=max_prompt_chars, stage=stage)
    messages = [{"role": "system", "content": system}]
    if turns and turns[0][0] == "assistant":
        opening = OPENING_TURN_AFTER_CUT if len(turns) < len(spoken) else OPENING_TURN
        messages.append({"role": "user", "content": opening})
    for role, content in turns:
        _add_turn(messages, role, content)
    for note in (stage.after_history, cue_line(stage.cue)):
        if note:
            # After the conversation, as SillyTavern places them; joined to the last user turn so
            # strict templates still see the roles alternate.
            _add_turn(messages, "user", note)
    return messages


def cue_line(cue: str) -> str:
    return f"(What should happen now: {cue})" if cue else ""


def _add_turn(messages: list[dict[str, str]], role: str, content: str) -> None:
    if messages[-1]["role"] == role:
        messages[-1]["content"] += "\n" + content
    else:
        messages.append({"role": role, "content": content})


def system_message(
    persona_name: str,
    system_prompt: str,
    setting: SettingNote,
    *,
    max_prompt_chars: int | None = None,
    stage: Stage = NO_STAGE,
) -> str:
    """The persona's own prompt (its first `max_prompt_chars` characters), then a note on where it is.

    The prompt is bounded like the history: it is sent on every turn, and a persona's prompt
    (an imported card's above all) can be far longer than any model's context is worth spending.
    Its beginning is kept, where prompts say who the character is; the note always follows whole.
    """
    note = [
        f'You are in #{setting.channel_name}, a text channel on the Discord server "{setting.guild_name}".',
        'Several people talk here; each of their messages is given to you as "Display name: message".',
    ]
    if setting.other_personas:
        others = ", ".join(setting.other_personas)
        note.append(f"Other characters present: {others}. Their lines are theirs, not yours.")
    if stage.narrator:
        note += [
            f"You are {persona_name}, the narrator and game master of this story.",
            "Describe the world, what happens and the people the players meet; never speak or act for the "
            "players' characters, and leave their choices to them.",
        ]
    else:
        note.append(f"Reply as {persona_name} only, in character.")
    note += [
        "Keep replies chat-sized: a few sentences.",
        "Do not start your reply with your name.",
        "Never mention anyone with @.",
    ]
    prompt = system_prompt.strip()
    if max_prompt_chars is not None:
        prompt = _keep_start(prompt, max_prompt_chars)
    parts = [prompt] if prompt else []
    if stage.lore:
        parts.append("What you know of this world:\n" + "\n".join(stage.lore))
    if stage.examples:
        parts.append(f"Examples of how {persona_name} speaks:\n{stage.examples}")
    if stage.recap:
        parts.append(f"Previously: {stage.recap}")
    if stage.scene:
        parts.append(f"The scene: {stage.scene}")
    parts.append(" ".join(note))
    return "\n\n".join(parts)


def _keep_start(text: str, max_chars: int) -> str:
    """The start of `text`, marked as cut, in at most `max_chars` characters."""
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(TRUNCATION_MARK))].rstrip() + TRUNCATION_MARK


def _newest_turns(
    lines: Sequence[ChannelLine], persona_id: int, max_messages: int, max_chars: int
) -> list[tuple[str, str]]:
    """(role, content) of the newest lines within both bounds, oldest first."""
    turns: list[tuple[str, str]] = []
    used_chars = 0
    for line in reversed(lines[-max_messages:]):
        role, prefix = ("assistant", "") if line.persona_id == persona_id else ("user", f"{line.author_name}: ")
        content = prefix + line.content
        if used_chars + len(content) > max_chars:
            if not turns:
                turns.append((role, _keep_end(prefix, line.content, max_chars)))
            break
        turns.append((role, content))
        used_chars += len(content)
    turns.reverse()
    return turns


def _keep_end(prefix: str, content: str, max_chars: int) -> str:
    """`prefix` and the end of `content`, marked as cut, in at most `max_chars` characters."""
    room = max_chars - len(prefix) - len(TRUNCATION_MARK)
    if room < 1:
        return (prefix + content)[-max_chars:]
    return prefix + TRUNCATION_MARK + content[-room:]
