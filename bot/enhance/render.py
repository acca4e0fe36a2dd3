"""Turning a job or a persona into what Discord shows: pure, and within Discord's limits.

The budgets below stay well inside Discord's limits (bot/discord_limits.py),
and the whole sheet rides along as a `.md` file whenever it does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import discord

from bot import discord_limits
from bot.enhance.failures import Failure, describe
from storage.casts import Cast
from storage.models import Job, JobState, Persona

SKETCH_PREVIEW = 300
SHEET_PREVIEW = 1500
FAILURE_EXPLANATION = 1500
# A persona card holds, whatever is stored: a title (EMBED_TITLE), the sheet's start, CARD_MAX_FIELDS
# fields, grounding, created, requested by and a footer: at most about 4,300 characters of Discord's
# EMBED_TOTAL 6,000, so a card never fails for its size (tests/test_render.py holds it to that).
CARD_FIELD_LABEL = 64
CARD_FIELD_VALUE = 300
CARD_MAX_FIELDS = 6
CARD_GROUNDING = 32
CARD_FOOTER = 200
CAST_MEMBER_SUMMARY = 80

# Fields that tell most about a character, shown first; others follow in Humalike's order.
TELLING_FIELDS = (
    "age",
    "pronouns",
    "occupation",
    "role",
    "main_role",
    "class",
    "species",
    "location",
    "hometown",
    "personality",
    "play_style",
    "main_champion",
    "voice",
    "goal",
    "backstory",
)
NAME_KEYS = {"name", "full_name", "fullname", "display_name", "character_name", "persona_name"}

COLOURS = {
    "working": discord.Colour.blurple(),
    "late": discord.Colour.gold(),
    "done": discord.Colour.green(),
    "failed": discord.Colour.red(),
}

STATUS_LINES = {
    JobState.QUEUED: "⏳ **Queued**: waiting for its turn to be sent to Humalike…",
    JobState.SENDING: "📨 **Sending**: handing the sketch to Humalike…",
    JobState.PENDING: "🕒 **Pending**: Humalike has accepted the job and queued it.",
    JobState.RUNNING: "✍️ **Running**: Humalike is grounding and writing the persona.",
    JobState.STALLED: "⏸️ **Paused**: Humalike refused the bot's token while checking on this job. "
    "It will be picked up again when the bot restarts with a valid token.",
}


@dataclass(frozen=True)
class ReplyFile:
    filename: str
    content: bytes


@dataclass(frozen=True)
class Reply:
    """Everything one edit of the job's reply carries. Equal replies need no edit."""

    embed: discord.Embed
    files: tuple[ReplyFile, ...] = ()
    retry_job_id: int | None = None  # show a Retry button that retries this job
    content: str | None = None

    def signature(self) -> tuple[object, ...]:
        return (
            self.content,
            repr(sorted(self.embed.to_dict().items())),
            tuple((f.filename, f.content) for f in self.files),
            self.retry_job_id,
        )


@dataclass(frozen=True)
class Subject:
    """What a job makes, as its replies name it while it works and if it fails."""

    working_title: str  # "Enhancing a persona"
    facts: tuple[tuple[str, str], ...] = ()  # (label, value) shown first, e.g. ("Cast size", "5")


@dataclass(frozen=True)
class Progress:
    """What the user should see about a job still under way."""

    state: JobState
    trouble: bool = False  # Humalike has not answered our last few polls
    timed_out: bool = False
    deadline_seconds: float = 1800
    produced: tuple[int, int] | None = None  # a cast's (written, requested) personas
    extra: list[str] = field(default_factory=list)


def describe_duration(seconds: float) -> str:
    """'90 seconds', '2 minutes', '1 hour 30 minutes': how long, in words."""
    if seconds < 120:
        return f"{round(seconds)} seconds"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} hours" + (f" {minutes} minutes" if minutes else "")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def progress_bar(produced: int, total: int, width: int = 10) -> str:
    """'▰▰▰▱▱▱▱▱▱▱ 3/10 personas written'"""
    produced = max(0, min(produced, total))
    filled = round(width * produced / total)
    return f"{'▰' * filled}{'▱' * (width - filled)} {produced}/{total} personas written"


def _context_fields(embed: discord.Embed, job: Job, subject: Subject) -> None:
    for label, value in subject.facts:
        embed.add_field(name=label, value=value, inline=True)
    embed.add_field(name="Grounding", value=f"`{job.grounding}`", inline=True)
    embed.add_field(name="Started", value=f"<t:{int(job.created_at)}:R>", inline=True)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)


def _quoted_sketch(sketch: str) -> str:
    preview = truncate(" ".join(sketch.split()), SKETCH_PREVIEW)
    return "> " + discord.utils.escape_markdown(preview)


def render_progress(job: Job, subject: Subject, progress: Progress) -> Reply:
    lines = [STATUS_LINES[progress.state]]
    if progress.timed_out:
        lines.append(
            f"⌛ This is taking longer than {describe_duration(progress.deadline_seconds)}. "
            "I'll keep checking, and if it finishes the persona is saved and shown here."
        )
    if progress.produced is not None and progress.produced[1] > 0:
        lines.append(progress_bar(*progress.produced))
    if progress.trouble:
        lines.append("⚠️ Humalike isn't answering right now; still checking.")
    lines.extend(progress.extra)
    embed = discord.Embed(
        title=subject.working_title,
        description="\n".join(lines) + "\n\n" + _quoted_sketch(job.sketch),
        colour=COLOURS["late" if progress.timed_out else "working"],
    )
    _context_fields(embed, job, subject)
    return Reply(embed=embed)


def render_failure(job: Job, subject: Subject, failure: Failure) -> Reply:
    text = describe(failure)
    embed = discord.Embed(
        title=f"❌ {text.title}",
        description=truncate(text.explanation, FAILURE_EXPLANATION) + "\n\n" + _quoted_sketch(job.sketch),
        colour=COLOURS["failed"],
    )
    _context_fields(embed, job, subject)
    return Reply(embed=embed, retry_job_id=job.id if text.retryable else None)


def telling_fields(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """Up to CARD_MAX_FIELDS (label, value) pairs, most telling first, the name left out."""
    usable = {key: value.strip() for key, value in fields.items() if value.strip() and key.lower() not in NAME_KEYS}
    order = [key for key in usable if key.lower() in TELLING_FIELDS]
    order.sort(key=lambda key: TELLING_FIELDS.index(key.lower()))
    order += [key for key in usable if key not in order]
    return [(field_label(key), usable[key]) for key in order[:CARD_MAX_FIELDS]]


def field_label(key: str) -> str:
    words = re.sub(r"[_\-]+", " ", key).strip()
    return truncate(words[:1].upper() + words[1:], discord_limits.EMBED_FIELD_NAME) if words else "Field"


def sheet_filename(name: str, extension: str = ".md") -> str:
    """A file name any system accepts: 'Sam Okafor' gives 'sam-okafor.md'."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"{slug or 'persona'}{extension}"


def render_persona_card(persona: Persona, *, requested_by: int | None = None, note: str | None = None) -> Reply:
    """The card /enhance ends with: the whole sheet rides along when the card cannot hold it."""
    embed = persona_card_embed(persona, requested_by=requested_by)
    files = (sheet_file(persona),) if embed.description != sheet_text(persona).strip() else ()
    content = f"✅ Saved **{discord.utils.escape_markdown(persona.name)}**." + (f" {note}" if note else "")
    return Reply(embed=embed, files=files, content=truncate(content, discord_limits.MESSAGE_CONTENT))


def sheet_text(persona: Persona) -> str:
    """The sheet as Humalike sent it; the system prompt stands in for an empty one."""
    return persona.markdown if persona.markdown.strip() else persona.system_prompt


def sheet_file(persona: Persona) -> ReplyFile:
    return ReplyFile(sheet_filename(persona.name), sheet_text(persona).encode("utf-8"))


def persona_card_embed(persona: Persona, *, requested_by: int | None = None) -> discord.Embed:
    preview = truncate(sheet_text(persona).strip(), SHEET_PREVIEW)
    embed = discord.Embed(
        title=truncate(persona.name, discord_limits.EMBED_TITLE), description=preview, colour=COLOURS["done"]
    )
    for label, value in telling_fields(persona.fields):
        inline = len(value) <= 40
        embed.add_field(name=truncate(label, CARD_FIELD_LABEL), value=truncate(value, CARD_FIELD_VALUE), inline=inline)
    grounding = truncate(" ".join(persona.grounding.split()), CARD_GROUNDING) or "off"
    embed.add_field(name="Grounding", value=f"`{grounding}`", inline=True)
    embed.add_field(name="Created", value=f"<t:{int(persona.created_at)}:R>", inline=True)
    if requested_by is not None:
        embed.add_field(name="Requested by", value=f"<@{requested_by}>", inline=True)
    embed.set_footer(text=truncate(card_footer(persona), CARD_FOOTER))
    return embed


def card_footer(persona: Persona) -> str:
    """Where the persona came from: Humalike (with its id), or the card it was imported from."""
    if persona.origin:
        return persona.origin
    if persona.humalike_persona_id:
        return f"Humalike persona {persona.humalike_persona_id}"
    return "Humalike persona"


CAST_LIST_LIMIT = 25


def render_cast_card(cast: Cast, *, requested_by: int | None = None) -> Reply:
    """A finished cast: its name and every member, ready for /cast roleplay."""
    lines = []
    for member in cast.members[:CAST_LIST_LIMIT]:
        summary = ", ".join(value for _, value in telling_fields(member.fields)[:2])
        lines.append(
            f"• **{discord.utils.escape_markdown(member.name)}**"
            + (f": {truncate(summary, CAST_MEMBER_SUMMARY)}" if summary else "")
        )
    embed = discord.Embed(
        title=truncate(f"Cast: {cast.name}", discord_limits.EMBED_TITLE),
        description=truncate("\n".join(lines), SHEET_PREVIEW) + "\n\n" + _quoted_sketch(cast.prompt),
        colour=COLOURS["done"],
    )
    embed.add_field(name="Members", value=str(len(cast.members)), inline=True)
    embed.add_field(name="Created", value=f"<t:{int(cast.created_at)}:R>", inline=True)
    if requested_by is not None:
        embed.add_field(name="Requested by", value=f"<@{requested_by}>", inline=True)
    name = discord.utils.escape_markdown(cast.name)
    content = f"✅ Saved the cast **{name}**: {len(cast.members)} personas. `/cast roleplay` brings them all in."
    return Reply(embed=embed, content=truncate(content, discord_limits.MESSAGE_CONTENT))


def embed_size(embed: discord.Embed) -> int:
    """Characters Discord counts against the limit of one message's embeds (discord_limits.EMBED_TOTAL)."""
    total = len(embed.title or "") + len(embed.description or "")
    total += len(embed.footer.text or "") + len(embed.author.name or "")
    total += sum(len(f.name or "") + len(f.value or "") for f in embed.fields)
    return total
