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
from bot.avatar_host import AvatarHost
from bot.avatars import CheckedImage, check_image, check_size
from bot.card_png import card_picture, exported_png
from bot.cards import MAX_PNG_BYTES, PNG_SIGNATURE, CardError, CardPersona, export_card_json, import_card
from bot.character import card_summary
from bot.clock import wall_clock
from bot.core import PersonaBot
from bot.enhance.render import persona_card_embed, sheet_file, sheet_filename
from bot.errors import UserFacingError
from bot.image_download import check_link, download_image
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
        card_data=persona.card_data,  # a card's own data goes back out as it came in
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
        self,
        personas: PersonaStore,
        *,
        owner_id: int,
        guild_id: int,
        creator_id: int | None,
        title: str,
        avatars: AvatarHost | None = None,
    ) -> None:
        super().__init__(
            owner_id=owner_id,
            refusal="These pages belong to whoever asked; run `/persona list` to get your own.",
            timeout=LIST_TIMEOUT,
        )
        self.personas, self.guild_id = personas, guild_id
        self.creator_id, self.title = creator_id, title
        self.avatars = avatars
        self.page = Page(0, 1)
        self.message: discord.InteractionMessage | None = None

    async def render(self, number: int) -> discord.Embed:
        personas, total = await self.personas.page(
            self.guild_id, creator_id=self.creator_id, offset=number * PAGE_SIZE, limit=PAGE_SIZE
        )
        self.page = Page(number, page_count(total))
        self.previous.disabled = not self.page.has_previous
        self.next.disabled = not self.page.has_next
        faces = await self.avatars.shown_urls(self.guild_id, [p.id for p in personas]) if self.avatars else {}
        return render_page(personas, page=self.page, total=total, title=self.title, avatars=faces)

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
        avatars: AvatarHost = interaction.client.avatars  # type: ignore[attr-defined]
        holder = await avatars.holder_of(self.persona.guild_id, self.persona.id)  # its row goes with the persona
        deleted = await self.personas.delete(self.persona.id)
        name = discord.utils.escape_markdown(self.persona.name)
        text = f"🗑️ Deleted **{name}**." if deleted else f"**{name}** was already deleted."
        await interaction.response.edit_message(content=text, view=None)
        if deleted:  # after the answer: each channel it spoke in is told
            await self.roleplay.end_persona(self.persona.id, by=interaction.user)
            avatars.forget(self.persona.id)
            if holder is not None:
                await avatars.delete_holder(holder)

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
            avatars=self.bot.avatars,
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
        embed = persona_card_embed(persona)
        summary = card_summary(persona.card_data)
        if summary is not None:
            embed.add_field(name="From its card", value=summary, inline=False)
        face = await self.bot.avatars.shown_url(persona.guild_id, persona.id)
        if face is not None:
            embed.set_thumbnail(url=face)
        await interaction.response.send_message(
            embed=add_traits(embed, persona),
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
    @app_commands.describe(
        name="The persona to export",
        format="png: its avatar with the card inside (the default when it has one); json: the card alone",
    )
    async def export(
        self, interaction: discord.Interaction, name: str, format: Literal["png", "json"] | None = None
    ) -> None:
        """A persona as a Character Card V2 file (SillyTavern and its peers read it)."""
        persona = await self._resolve(interaction, name)
        data = export_card_json(card_of(persona))
        picture = None
        if format != "json":
            picture = await self.bot.avatars.picture(persona.guild_id, persona.id)
            if picture is None and format == "png":
                raise UserFacingError(
                    f"“{persona.name}” has no avatar to make a PNG card of. Give it one with `/persona avatar`, "
                    "or export it with `format: json`."
                )
        if picture is not None:
            png = await asyncio.to_thread(exported_png, picture.image, data)
            file = discord.File(io.BytesIO(png), filename=sheet_filename(persona.name, ".card.png"))
        else:
            file = discord.File(io.BytesIO(data), filename=sheet_filename(persona.name, ".card.json"))
        await interaction.response.send_message(
            f"📇 **{discord.utils.escape_markdown(persona.name)}** as a Character Card V2.", file=file
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
            picture = await asyncio.to_thread(card_picture, data) if data.startswith(PNG_SIGNATURE) else None
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
                card_data=imported.card_data,
                nsfw=tagged_nsfw(imported.tags),
            )
        )
        if picture is not None:  # the card's picture is its avatar, hosted once the answer is out
            await self.bot.avatars.keep_unhosted(persona.guild_id, persona.id, picture, source="card")
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
        if picture is not None:
            await self._show_card_picture(interaction, persona)

    async def _show_card_picture(self, interaction: discord.Interaction, persona: Persona) -> None:
        """Host an imported card's picture now, in this channel, and add it to the answer."""
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        url = await self.bot.avatars.url_for(persona.guild_id, persona.id, persona.name, channel)
        if url is None:
            return  # kept all the same: hosted at its first message
        embed = persona_card_embed(persona)
        embed.set_thumbnail(url=url)
        with contextlib.suppress(discord.HTTPException):  # the answer stands without its picture
            await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="avatar")
    @app_commands.guild_only()
    @app_commands.describe(
        name="The persona to give a face",
        image="A PNG, JPEG, GIF or WebP picture, at most 8 MB",
        url="An https:// link to a picture (downloaded once, so it may expire later)",
        clear="True removes the avatar",
    )
    async def avatar(
        self,
        interaction: discord.Interaction,
        name: str,
        image: discord.Attachment | None = None,
        url: str | None = None,
        clear: bool = False,
    ) -> None:
        """Give a persona a face from a picture or a link, or clear it (its creator, or Manage Server)."""
        persona = await self._resolve(interaction, name)
        member = member_of(interaction)
        title = discord.utils.escape_markdown(persona.name)
        if sum((image is not None, url is not None, clear)) != 1:
            raise UserFacingError("Give one of `image` (upload a picture), `url` (an https:// link) or `clear: True`.")
        if not may_change(member, persona.creator_id):
            raise UserFacingError(
                f"Only whoever made “{persona.name}” or a member with Manage Server can change its avatar."
            )
        if image is not None:
            check_size(image.size)  # before downloading it
        if url is not None:
            check_link(url)
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            raise UserFacingError("Set an avatar from a text channel of this server.")
        await interaction.response.defer(thinking=True)  # downloading, checking and hosting take a while
        if clear:
            cleared = await self.bot.avatars.clear(persona.guild_id, persona.id)
            text = f"🧹 **{title}** has no avatar now." if cleared else f"**{title}** had no avatar."
            await interaction.edit_original_response(content=text)
            return
        checked = await self._read_picture(image, url)
        hosted = await self.bot.avatars.replace(
            persona.guild_id,
            persona.id,
            persona.name,
            checked,
            source="upload" if image is not None else "link",
            link=url.strip().strip("<>") if url is not None else None,
            channel=channel,
        )
        embed = discord.Embed(title=persona.name[: discord_limits.EMBED_TITLE], colour=discord.Colour.green())
        embed.set_thumbnail(url=hosted)
        await interaction.edit_original_response(content=f"🖼️ **{title}** has a new avatar.", embed=embed)

    async def _read_picture(self, image: discord.Attachment | None, url: str | None) -> CheckedImage:
        """The uploaded or linked picture, checked to be one (off the event loop: decoding is CPU work)."""
        if image is not None:
            try:
                data = await image.read()
            except discord.HTTPException:
                raise UserFacingError("Discord would not hand over that picture; try uploading it again.") from None
        else:
            assert url is not None
            data = await download_image(self.bot.avatar_downloads, url)
        return await asyncio.to_thread(check_image, data)

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
    @avatar.autocomplete("name")
    async def _name_autocomplete(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return await persona_choices(self.bot.personas, interaction, typed)


async def setup(bot: PersonaBot) -> None:
    await bot.add_cog(Personas(bot))
