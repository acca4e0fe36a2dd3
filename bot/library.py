"""Pure pieces of the persona library: pages of the list, and who may change a persona."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import discord

from storage.personas import PersonaSummary

PAGE_SIZE = 10
LIST_COLOUR = discord.Colour.blurple()


@dataclass(frozen=True)
class Page:
    number: int  # from 0
    count: int

    @property
    def has_previous(self) -> bool:
        return self.number > 0

    @property
    def has_next(self) -> bool:
        return self.number + 1 < self.count


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


def render_page(
    personas: list[PersonaSummary], *, page: Page, total: int, title: str, avatars: Mapping[int, str] | None = None
) -> discord.Embed:
    """One page of the list: name, creator and age on each line, within Discord's embed limits.

    `avatars` (persona id -> picture URL): a persona with a picture gets a 🖼️ linking to it, and the
    first of them on the page is the embed's thumbnail (an embed has one).
    """
    avatars = avatars or {}
    if not personas:
        description = "No personas yet. Make one with `/enhance`."
    else:
        description = "\n".join(list_line(p, avatars.get(p.id)) for p in personas)
    embed = discord.Embed(title=title, description=description, colour=LIST_COLOUR)
    first_face = next((avatars[p.id] for p in personas if p.id in avatars), None)
    if first_face is not None:
        embed.set_thumbnail(url=first_face)
    embed.set_footer(text=f"Page {page.number + 1} of {page.count} · {total} persona{'s' if total != 1 else ''}")
    return embed


def list_line(persona: PersonaSummary, avatar_url: str | None = None) -> str:
    name = discord.utils.escape_markdown(persona.name)
    creator = discord.utils.escape_markdown(persona.creator_name or "someone")
    face = f" · [🖼️]({avatar_url})" if avatar_url else ""
    return f"**{name}** · by {creator} · <t:{int(persona.created_at)}:R>{face}"


def may_change(member: discord.Member, creator_id: int) -> bool:
    """The creator, and members with Manage Server, may rename, edit or delete a persona."""
    return member.id == creator_id or member.guild_permissions.manage_guild
