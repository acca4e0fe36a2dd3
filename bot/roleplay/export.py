"""`/scene export`: a channel's session as a Markdown file, who said what and when."""

from __future__ import annotations

import datetime
import re

from bot.roleplay.session_log import SessionLog

# The most messages an export reads back from Discord (ten history pages): its newest, when longer.
EXPORT_MAX_MESSAGES = 1000
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def export_filename(channel_name: str, started_at: float) -> str:
    day = datetime.datetime.fromtimestamp(started_at, tz=datetime.UTC).strftime("%Y-%m-%d")
    safe = re.sub(r"[^\w-]+", "-", channel_name).strip("-") or "channel"
    return f"{safe}-{day}.md"


def session_markdown(log: SessionLog, *, guild_name: str, channel_name: str, scene: str, recap: str) -> str:
    """The session as Markdown: a heading, the scene and recap it started with, then every line."""
    started = _when(datetime.datetime.fromtimestamp(log.started_at, tz=datetime.UTC))
    out = [f"# #{channel_name} · {guild_name}", "", f"Session from {started}, {len(log.lines)} messages."]
    if log.cut:
        out.append(f"Only the last {EXPORT_MAX_MESSAGES:,} messages are included.")
    if recap:
        out += ["", f"**Previously:** {recap}"]
    if scene:
        out += ["", f"**Scene:** {scene}"]
    out.append("")
    for line in log.lines:
        who = f"**{line.author_name}** *(persona)*" if line.persona else f"**{line.author_name}**"
        out.append(f"{who} · {_when(line.at)}")
        # Each line of a message quoted, so a message's own Markdown (a heading, a list) stays inside it.
        out += [f"> {text}" if text else ">" for text in (line.content or "*(no text)*").splitlines()]
        out.append("")
    return "\n".join(out)


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime(TIME_FORMAT)
