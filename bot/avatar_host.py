"""Showing a persona's picture in Discord at a URL that never expires.

Discord's attachment links are signed and expire within a day, and Discord refuses them as a
webhook message's `avatar_url`. A webhook's own avatar, though, is served at
`https://cdn.discordapp.com/avatars/<webhook id>/<hash>.png` for as long as the webhook exists.
So each persona with a picture gets a small "holder" webhook ("Avatar · Sam") whose avatar is that
picture; its URL is what the persona's messages, `/persona show` and the library carry.

The picture's bytes stay in our database (storage/avatars.py), the source of truth. Once per
process, before a persona's first message, its holder is looked up: a holder an admin deleted
(10015), or whose picture someone changed, is made again from the stored bytes and the new URL
stored. Replacing or clearing a picture, or deleting the persona, deletes its holder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator

import discord

from bot import discord_limits
from bot.avatars import CheckedImage, hosted_copy
from bot.clock import wall_clock
from bot.errors import UserFacingError
from bot.roleplay.names import webhook_username
from bot.roleplay.webhooks import Speakable, webhook_home
from storage.avatars import Avatar, AvatarSource, AvatarStore
from storage.roleplay import Session

log = logging.getLogger(__name__)

HOLDER_PREFIX = "Avatar · "
# Channels tried for a new holder, the command's own first: past the 15-webhook limit in one channel
# the next is tried, but never the whole server (each try is a request to Discord).
MAX_HOLDER_CHANNELS = 5


def holder_name(persona_name: str) -> str:
    return webhook_username(HOLDER_PREFIX + persona_name)


class AvatarHost:
    def __init__(self, client: discord.Client, store: AvatarStore) -> None:
        self._client = client
        self._store = store
        # persona id -> the URL its messages carry, checked in this process (None: it has no picture).
        self._checked: dict[int, str | None] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    # --- what members see -----------------------------------------------------------------------

    async def url_for(self, guild_id: int, persona_id: int, persona_name: str, channel: Speakable) -> str | None:
        """The URL the persona's messages carry, its holder checked (and made again if need be) once per process."""
        if persona_id in self._checked:
            return self._checked[persona_id]
        lock = self._locks.setdefault(persona_id, asyncio.Lock())
        async with lock:  # a persona greeting in three channels at once checks its holder once
            if persona_id in self._checked:
                return self._checked[persona_id]
            avatar = await self._store.get(guild_id, persona_id)
            if avatar is None:
                self._checked[persona_id] = None
                return None
            url, settled = await self._verified(avatar, persona_name, channel)
            if settled:  # else the picture changed while it was hosted: the next message reads it again
                self._checked[persona_id] = url
            return url

    async def for_message(self, session: Session, channel: Speakable) -> str | None:
        """The `avatar_url` of a message the session's persona posts in `channel`."""
        return await self.url_for(session.guild_id, session.persona_id, session.persona_name, channel)

    async def shown_url(self, guild_id: int, persona_id: int) -> str | None:
        """The URL an embed shows: the checked one if this process checked it, else the stored one."""
        if persona_id in self._checked:
            return self._checked[persona_id]
        avatar = await self._store.get(guild_id, persona_id)
        return avatar.hosted_url if avatar else None

    async def shown_urls(self, guild_id: int, persona_ids: list[int]) -> dict[int, str]:
        stored = await self._store.hosted_urls(guild_id, persona_ids)
        for persona_id in persona_ids:
            if persona_id in self._checked:
                checked = self._checked[persona_id]
                if checked is None:
                    stored.pop(persona_id, None)
                else:
                    stored[persona_id] = checked
        return stored

    # --- changing a picture ---------------------------------------------------------------------

    async def replace(
        self,
        guild_id: int,
        persona_id: int,
        persona_name: str,
        image: CheckedImage,
        *,
        source: AvatarSource,
        link: str | None,
        channel: Speakable,
    ) -> str:
        """Host `image` as the persona's picture and store it; its URL. The old holder is deleted."""
        url, holder_id = await self.host(persona_name, image.data, channel)
        try:
            await self._keep(guild_id, persona_id, image, source=source, link=link, url=url, holder_id=holder_id)
        except LookupError:
            await self.delete_holder(holder_id)
            raise UserFacingError(f"“{persona_name}” was deleted meanwhile, so it has no avatar.") from None
        except BaseException:
            await self.delete_holder(holder_id)
            raise
        return url

    async def keep_unhosted(self, guild_id: int, persona_id: int, image: CheckedImage, *, source: AvatarSource) -> None:
        """Store a picture now and host it at its first use (an import answers before it talks to Discord)."""
        await self._keep(guild_id, persona_id, image, source=source, link=None, url=None, holder_id=None)

    async def _keep(
        self,
        guild_id: int,
        persona_id: int,
        image: CheckedImage,
        *,
        source: AvatarSource,
        link: str | None,
        url: str | None,
        holder_id: int | None,
    ) -> None:
        """Store the picture (hosted at `url`, or not yet), and delete the holder of the one it replaces."""
        before = await self._store.set(
            guild_id,
            persona_id,
            image=image.data,
            content_type=image.content_type,
            source=source,
            link=link,
            hosted_url=url,
            holder_webhook_id=holder_id,
            now=wall_clock(),
        )
        if url is None:
            self._checked.pop(persona_id, None)
        else:
            self._checked[persona_id] = url
        if before is not None and before.holder_webhook_id is not None:
            await self.delete_holder(before.holder_webhook_id)

    async def clear(self, guild_id: int, persona_id: int) -> bool:
        """Remove the persona's picture and its holder; False when it had none."""
        removed = await self._store.clear(guild_id, persona_id)
        self._checked[persona_id] = None
        if removed is None:
            return False
        if removed.holder_webhook_id is not None:
            await self.delete_holder(removed.holder_webhook_id)
        return True

    async def picture(self, guild_id: int, persona_id: int) -> Avatar | None:
        """The persona's stored picture (for a PNG card), or None."""
        return await self._store.get(guild_id, persona_id)

    async def holder_of(self, guild_id: int, persona_id: int) -> int | None:
        """The persona's holder webhook, read before the persona is deleted (its row goes with it)."""
        avatar = await self._store.get(guild_id, persona_id)
        return avatar.holder_webhook_id if avatar else None

    def forget(self, persona_id: int) -> None:
        self._checked.pop(persona_id, None)

    def keep_only(self, persona_ids: Iterable[int]) -> None:
        """Let go of what was checked for personas that speak nowhere now: checked again when they next speak."""
        keep = set(persona_ids)
        for persona_id in set(self._checked) - keep:
            del self._checked[persona_id]
        for persona_id, lock in list(self._locks.items()):
            if persona_id not in keep and not lock.locked():
                del self._locks[persona_id]

    def personas(self) -> set[int]:
        """The personas this host keeps anything in memory for."""
        return set(self._checked) | set(self._locks)

    # --- holders --------------------------------------------------------------------------------

    async def host(self, persona_name: str, image: bytes, channel: Speakable) -> tuple[str, int]:
        """Make a holder webhook showing `image`; its avatar URL and its id. UserFacingError when Discord refuses."""
        picture = await asyncio.to_thread(hosted_copy, image)
        name = holder_name(persona_name)
        full = 0
        for home in self._holder_channels(channel):
            try:
                webhook = await home.create_webhook(
                    name=name, avatar=picture, reason="Holds a persona's avatar (/persona avatar)"
                )
            except discord.Forbidden:
                continue
            except discord.HTTPException as error:
                if error.code == discord_limits.TOO_MANY_WEBHOOKS:
                    full += 1
                    continue
                if error.code == discord_limits.TOO_MANY_GUILD_WEBHOOKS:
                    raise UserFacingError(
                        f"This server has reached Discord's limit of {discord_limits.WEBHOOKS_PER_GUILD} webhooks, "
                        "and a persona's avatar is kept as one. Delete a webhook (Server Settings > Integrations), "
                        "then try again."
                    ) from None
                raise
            if webhook.avatar is None:  # Discord took the webhook but not its picture
                await self.delete_holder(webhook.id)
                raise UserFacingError("Discord did not keep that picture. Try another one, or a smaller one.")
            log.info("Made avatar holder webhook %s in channel %s", webhook.id, home.id)
            return webhook.avatar.url, webhook.id
        if full:
            raise UserFacingError(
                f"Every channel I tried already has {discord_limits.WEBHOOKS_PER_CHANNEL} webhooks, Discord's limit, "
                "and a persona's avatar is kept as one. Delete one in a channel's settings (Integrations > "
                "Webhooks), then try again."
            )
        raise UserFacingError(
            "I need the Manage Webhooks permission in this channel (or another text channel) to keep an avatar: "
            "Discord shows it from a webhook of mine. Ask a server admin to grant it, then try again."
        )

    async def delete_holder(self, webhook_id: int) -> None:
        """Delete a holder webhook; one already gone, or out of reach, is only logged."""
        try:
            webhook = await self._client.fetch_webhook(webhook_id)
            await webhook.delete(reason="A persona's avatar changed or was removed")
        except discord.NotFound:
            pass
        except discord.HTTPException as error:
            log.warning("Could not delete avatar holder webhook %s: %s", webhook_id, error)

    def _holder_channels(self, channel: Speakable) -> Iterator[discord.TextChannel]:
        """The command's channel (a thread's parent), then other text channels where I may manage webhooks."""
        home = webhook_home(channel)
        yield home
        guild = home.guild
        others = [c for c in guild.text_channels if c.id != home.id and c.permissions_for(guild.me).manage_webhooks]
        yield from others[: MAX_HOLDER_CHANNELS - 1]

    async def _verified(self, avatar: Avatar, persona_name: str, channel: Speakable) -> tuple[str | None, bool]:
        """The avatar's URL once its holder is known to show it, hosting it again if not; and whether that
        is settled for this process (False: the picture changed meanwhile)."""
        if avatar.holder_webhook_id is not None and avatar.hosted_url is not None:
            try:
                holder = await self._client.fetch_webhook(avatar.holder_webhook_id)
            except discord.NotFound:
                log.info("Avatar holder %s of persona %s is gone", avatar.holder_webhook_id, avatar.persona_id)
            except discord.HTTPException as error:
                # Out of reach (Manage Webhooks taken away, Discord down): the stored URL likely still works.
                log.warning("Could not check avatar holder %s: %s", avatar.holder_webhook_id, error)
                return avatar.hosted_url, True
            else:
                if holder.avatar is not None and holder.avatar.url == avatar.hosted_url:
                    return avatar.hosted_url, True
                log.info("Avatar holder %s no longer shows persona %s's picture", holder.id, avatar.persona_id)
                await self.delete_holder(holder.id)
        try:
            url, holder_id = await self.host(persona_name, avatar.image, channel)
        except (UserFacingError, discord.HTTPException) as error:
            log.warning("Could not host the avatar of persona %s: %s", avatar.persona_id, error)
            return avatar.hosted_url, True  # tried again in the next process, not at every message
        if not await self._store.set_hosted(avatar, hosted_url=url, holder_webhook_id=holder_id):
            await self.delete_holder(holder_id)  # the picture changed meanwhile: its own holder shows it
            return None, False
        return url, True
