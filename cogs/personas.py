"""/persona: browse, read, fix, share and retire this server's personas."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import re
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import discord_limits
from bot.cards import MAX_PNG_BYTES, CardError, CardPersona, export_card_json, import_card
from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.enhance.render import persona_card_embed, sheet_file, sheet_filename
from bot.errors import UserFacingError
from bot.library import PAGE_SIZE, Page, may_change, page_count, render_page
from bot.names import required_name
from bot.personas import persona_choices, resolve_persona
from bot.rate_limit import PerMinuteLimit
from bot.roleplay.service import RoleplayService
from bot.traits import NSFW_TAG, add_traits, apply_traits, tagged_nsfw
from bot.ui import Form, OwnedView, PersistentButton
from storage.models import MAX_NAME_LENGTH, MAX_TALKATIVENESS, NewPersona, Persona
from storage.personas import NameTaken, PersonaStore

log = logging.getLogger(__name__)

LIST_TIMEOUT = 300  # seconds the page buttons stay usable
CONFIRM_TIMEOUT = 120
# A form field's limit; a longer prompt is kept unless a new one is pasted.
PROMPT_FORM_LIMIT = discord_limits.TEXT_INPUT


def card_of(persona: Persona) -> CardPersona:
    return CardPersona(
        name=persona.name,
        system_prompt=persona.system_prompt,
        markdown=persona.markdown,
        fields=persona.fields,
        sketch=persona.sketch,
        grounding=persona.grounding,
        humalike_persona_id=persona.humalike_persona_id,
        creator=persona.creator_name,
        tags=(NSFW_TAG,) if persona.nsfw else (),  # so importing the export elsewhere keeps the mark
        origin=persona.origin,
    )


def member_of(interaction: discord.Interaction) -> discord.Member:
    if not isinstance(interaction.user, discord.Member):
        raise UserFacingError("Personas belong to a server: use this in one of its channels.")
    return interaction.user


def check_may_change(member: discord.Member, persona: Persona, action: str) -> None:
    if not may_change(member, persona.creator_id):
        raise UserFacingError(f"Only whoever made “{persona.name}” or a member with Manage Server can {action} it.")


class RoleplayButton(
    PersistentButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"persona:roleplay:(?P<id>[0-9]+)"
):
    """“Roleplay as Sam here” on a persona card; works after restarts (the id is in the custom id)."""

    def __init__(self, persona_id: int, name: str = "") -> None:
        label = f"Roleplay as {name} here" if name else "Roleplay here"
        super().__init__(
            discord.ui.Button(
                label=label[: discord_limits.BUTTON_LABEL],
                emoji="🎭",
                style=discord.ButtonStyle.secondary,
                custom_id=f"persona:roleplay:{persona_id}",
            )
        )
        self.persona_id = persona_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RoleplayButton:
        return cls(int(match["id"]))

    async def press(self, interaction: discord.Interaction[PersonaBot]) -> None:
        bot = interaction.client
        persona = await bot.personas.get(self.persona_id)
        if persona is None or persona.guild_id != interaction.guild_id:
            raise UserFacingError("That persona no longer exists in this server.")
        await bot.roleplay.begin(interaction, [persona], "mention")


class PagedList(OwnedView):
    """Previous / Next over a persona list; only the member who asked can turn the pages."""

    def __init__(
        self, personas: PersonaStore, *, owner_id: int, guild_id: int, creator_id: int | None, title: str
    ) -> None:
        super().__init__(
            owner_id=owner_id,
            refusal="These pages belong to whoever asked; run `/persona list` to get your own.",
            timeout=LIST_TIMEOUT,
        )
        self.personas, self.guild_id = personas, guild_id
        self.creator_id, self.title = creator_id, title
        self.page = Page(0, 1)
        self.message: discord.InteractionMessage | None = None

    async def render(self, number: int) -> discord.Embed:
        personas, total = await self.personas.page(
            self.guild_id, creator_id=self.creator_id, offset=number * PAGE_SIZE, limit=PAGE_SIZE
        )
        self.page = Page(number, page_count(total))
        self.previous.disabled = not self.page.has_previous
        self.next.disabled = not self.page.has_next
        return render_page(personas, page=self.page, total=total, title=self.title)

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[PagedList]) -> None:
        embed = await self.render(max(0, self.page.number - 1))
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[PagedList]) -> None:
        embed = await self.render(self.page.number + 1)
        await interaction.response.edit_message(embed=embed, view=self)

    async def on_timeout(self) -> None:
        if self.message is not None:
            # The message may be gone or its token expired: then there is nothing left to tidy.
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(view=None)


class ConfirmDelete(OwnedView):
    def __init__(self, personas: PersonaStore, roleplay: RoleplayService, *, owner_id: int, persona: Persona) -> None:
        super().__init__(owner_id=owner_id, refusal="Only whoever asked can confirm this.", timeout=CONFIRM_TIMEOUT)
        self.personas, self.roleplay, self.persona = personas, roleplay, persona

    @discord.ui.button(label="Delete", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmDelete]) -> None:
        # Asked and pressed may be minutes apart: the member may have lost Manage Server (or the
        # role giving it) meanwhile, so who may delete is decided again, on the persona as it is now.
        current = await self.personas.get(self.persona.id)
        if current is not None:
            check_may_change(member_of(interaction), current, "delete")
        self.stop()
        deleted = await self.personas.delete(self.persona.id)
        name = discord.utils.escape_markdown(self.persona.name)
        text = f"🗑️ Deleted **{name}**." if deleted else f"**{name}** was already deleted."
        await interaction.response.edit_message(content=text, view=None)
        if deleted:  # after the answer: each channel it spoke in is told
            await self.roleplay.end_persona(self.persona.id, by=interaction.user)

    @discord.ui.button(label="Keep it", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmDelete]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was deleted.", view=None)


class EditPersona(Form, title="Edit persona"):
    name: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Name", custom_id="name", max_length=MAX_NAME_LENGTH)
    prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="System prompt",
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        max_length=PROMPT_FORM_LIMIT,
        required=False,
    )

    def __init__(self, cog: Personas, persona: Persona) -> None:
        super().__init__()
        self.cog, self.persona = cog, persona
        self.name.default = persona.name
        if len(persona.system_prompt) <= PROMPT_FORM_LIMIT:
            self.prompt.default = persona.system_prompt
        else:
            self.prompt.placeholder = (
                f"The prompt is {len(persona.system_prompt):,} characters, more than a form holds: "
                "leave this empty to keep it, or paste a new one."
            )[: discord_limits.TEXT_INPUT_PLACEHOLDER]

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.apply_edit(interaction, self.persona, self.name.value, self.prompt.value)


class Personas(commands.GroupCog, group_name="persona"):
    """Browse and manage this server's personas."""

    def __init__(self, bot: PersonaBot) -> None:
        self.bot = bot
        self.imports = PerMinuteLimit(bot.settings.persona_imports_per_minute, wall_clock)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RoleplayButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RoleplayButton)

    async def _resolve(self, interaction: discord.Interaction, name: str) -> Persona:
        return await resolve_persona(self.bot.personas, member_of(interaction).guild.id, name)

    @app_commands.command(name="list")
    @app_commands.guild_only()
    @app_commands.describe(which="Everyone's personas, or only yours")
    async def list_personas(self, interaction: discord.Interaction, which: Literal["all", "mine"] = "all") -> None:
        """This server's personas, newest first."""
        member = member_of(interaction)
        mine = which == "mine"
        view = PagedList(
            self.bot.personas,
            owner_id=member.id,
            guild_id=member.guild.id,
            creator_id=member.id if mine else None,
            title="Your personas" if mine else f"Personas of {member.guild.name}",
        )
        embed = await view.render(0)
        await interaction.response.send_message(embed=embed, view=view)
        view.message = await interaction.original_response()

    @app_commands.command(name="show")
    @app_commands.guild_only()
    @app_commands.describe(name="The persona to show")
    async def show(self, interaction: discord.Interaction, name: str) -> None:
        """A persona's card, with its whole sheet attached."""
        persona = await self._resolve(interaction, name)
        sheet = sheet_file(persona)
        view = discord.ui.View(timeout=None)
        view.add_item(RoleplayButton(persona.id, persona.name))
        await interaction.response.send_message(
            embed=add_traits(persona_card_embed(persona), persona),
            file=discord.File(io.BytesIO(sheet.content), filename=sheet.filename),
            view=view,
        )

    @app_commands.command(name="rename")
    @app_commands.guild_only()
    @app_commands.describe(name="The persona to rename", new_name="Its new name")
    async def rename(
        self, interaction: discord.Interaction, name: str, new_name: app_commands.Range[str, 1, MAX_NAME_LENGTH]
    ) -> None:
        """Give a persona a new name (its creator, or Manage Server)."""
        persona = await self._resolve(interaction, name)
        member = member_of(interaction)
        check_may_change(member, persona, "rename")
        updated = await self._save(persona, new_name, persona.system_prompt)
        await interaction.response.send_message(
            f"✏️ **{discord.utils.escape_markdown(persona.name)}** is now "
            f"**{discord.utils.escape_markdown(updated.name)}**.",
        )
        await self.bot.roleplay.persona_changed(persona, updated, by=member)  # after the answer: it posts

    @app_commands.command(name="edit")
    @app_commands.guild_only()
    @app_commands.describe(
        name="The persona to edit",
        talkativeness="0 (speaks only when called) to 100 (takes most turns); leave both out to edit name and prompt",
        nsfw="Mark it NSFW: it then speaks only in age-restricted channels",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        name: str,
        talkativeness: app_commands.Range[int, 0, MAX_TALKATIVENESS] | None = None,
        nsfw: bool | None = None,
    ) -> None:
        """Set a persona's talkativeness or NSFW mark, or edit its name and prompt in a form."""
        persona = await self._resolve(interaction, name)
        member = member_of(interaction)
        check_may_change(member, persona, "edit")
        if talkativeness is None and nsfw is None:
            await interaction.response.send_modal(EditPersona(self, persona))
            return
        await apply_traits(self.bot, interaction, persona, talkativeness=talkativeness, nsfw=nsfw)

    async def apply_edit(self, interaction: discord.Interaction, persona: Persona, name: str, prompt: str) -> None:
        current = await self.bot.personas.get(persona.id)
        if current is None or current.guild_id != interaction.guild_id:
            raise UserFacingError("That persona was deleted while the form was open.")
        member = member_of(interaction)
        check_may_change(member, current, "edit")
        updated = await self._save(current, name, prompt.strip() or current.system_prompt)
        await interaction.response.send_message(f"✏️ Saved **{discord.utils.escape_markdown(updated.name)}**.")
        await self.bot.roleplay.persona_changed(current, updated, by=member)  # after the answer: it posts

    async def _save(self, persona: Persona, name: str, system_prompt: str) -> Persona:
        cleaned = required_name(name)
        try:
            return await self.bot.personas.update(persona, name=cleaned, system_prompt=system_prompt, now=wall_clock())
        except NameTaken:
            raise UserFacingError(f"A persona named “{cleaned}” already exists in this server.") from None

    @app_commands.command(name="delete")
    @app_commands.guild_only()
    @app_commands.describe(name="The persona to delete")
    async def delete(self, interaction: discord.Interaction, name: str) -> None:
        """Delete a persona for good, after a confirmation (its creator, or Manage Server)."""
        persona = await self._resolve(interaction, name)
        member = member_of(interaction)
        check_may_change(member, persona, "delete")
        await interaction.response.send_message(
            f"Delete **{discord.utils.escape_markdown(persona.name)}** for good? Its roleplay sessions end too.",
            view=ConfirmDelete(self.bot.personas, self.bot.roleplay, owner_id=member.id, persona=persona),
            ephemeral=True,
        )

    @app_commands.command(name="export")
    @app_commands.guild_only()
    @app_commands.describe(name="The persona to export")
    async def export(self, interaction: discord.Interaction, name: str) -> None:
        """A persona as a Character Card V2 file (SillyTavern and its peers read it)."""
        persona = await self._resolve(interaction, name)
        data = export_card_json(card_of(persona))
        await interaction.response.send_message(
            f"📇 **{discord.utils.escape_markdown(persona.name)}** as a Character Card V2.",
            file=discord.File(io.BytesIO(data), filename=sheet_filename(persona.name, ".card.json")),
        )

    @app_commands.command(name="import")
    @app_commands.guild_only()
    @app_commands.describe(card="A character card: V1/V2/V3 JSON, or a PNG with a card inside")
    async def import_(self, interaction: discord.Interaction, card: discord.Attachment) -> None:
        """Save a character card file as a persona of this server."""
        member = member_of(interaction)
        if card.size > MAX_PNG_BYTES:  # refused before downloading; import_card holds each kind to its own limit
            raise UserFacingError(f"That file is too large ({card.size / 1_000_000:.1f} MB) to be a character card.")
        self._check_import_allowance(member)
        try:
            data = await card.read()
            # Reading a hostile card can take half a second of CPU: never on the event loop.
            imported = await asyncio.to_thread(import_card, data, card.filename)
        except CardError as error:
            raise UserFacingError(discord.utils.escape_markdown(error.message)) from None
        except discord.HTTPException:
            raise UserFacingError("Discord would not hand over that file; try uploading it again.") from None
        persona = await self.bot.personas.save_imported(
            NewPersona(
                guild_id=member.guild.id,
                name=imported.name,
                creator_id=member.id,
                creator_name=member.display_name,
                enhancement_id=None,
                humalike_persona_id=imported.humalike_persona_id,
                fields=imported.fields,
                system_prompt=imported.system_prompt,
                markdown=imported.markdown,
                sketch=imported.sketch,
                grounding=imported.grounding,
                created_at=wall_clock(),
                origin=imported.origin,
                nsfw=tagged_nsfw(imported.tags),
            )
        )
        note = ""
        if persona.name != imported.name:
            taken, saved_as = (discord.utils.escape_markdown(name) for name in (imported.name, persona.name))
            note = f" “{taken}” was already taken in this server, so it is saved as “{saved_as}”."
        try:
            await interaction.response.send_message(
                f"📥 Imported **{discord.utils.escape_markdown(persona.name)}**.{note}",
                embed=persona_card_embed(persona),
            )
        except discord.HTTPException as error:
            if error.status < 500:
                # Discord refused the answer, so the member never saw it: a persona nobody was told
                # about (and whose card might never show) is not kept.
                await self.bot.personas.delete(persona.id)
                log.warning("Discord refused the answer to importing persona %s; it was not kept", persona.id)
            raise

    def _check_import_allowance(self, member: discord.Member) -> None:
        """Refuse a member past PERSONA_IMPORTS_PER_MINUTE, saying when they may import again."""
        allowed_at = self.imports.take(member.id)
        if allowed_at is not None:
            raise UserFacingError(
                f"You can import {self.imports.per_minute} character cards a minute, and you have. "
                f"Try again <t:{math.ceil(allowed_at)}:R>."
            )

    @show.autocomplete("name")
    @rename.autocomplete("name")
    @edit.autocomplete("name")
    @delete.autocomplete("name")
    @export.autocomplete("name")
    async def _name_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return await persona_choices(self.bot.personas, interaction, typed)


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Personas(bot))
