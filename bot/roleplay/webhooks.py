"""The one webhook per channel that every persona speaks through.

Created on first use and reused; a webhook a moderator deleted (10015) is
made again. Threads post through their parent channel's webhook. Every webhook
here is bound to the bot's client, so the bot's `allowed_mentions` (none) go
with each message and edit: a persona's words never ping anyone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import discord

from bot import discord_limits
from bot.errors import UserFacingError
from storage.roleplay import RoleplayStore

log = logging.getLogger(__name__)

WEBHOOK_NAME = "Humalike personas"
# Webhooks kept in memory, least recently used dropped first: a miss costs one database read,
# and a thousand channels in conversation at once is far past what one bot serves.
WEBHOOK_CACHE_SIZE = 1000

Speakable = discord.TextChannel | discord.Thread


def webhook_home(channel: Speakable) -> discord.TextChannel:
    """Where the webhook lives: the channel itself, or a thread's parent."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        if not isinstance(parent, discord.TextChannel):
            raise UserFacingError("Personas can speak in text channels and their threads, not here.")
        return parent
    return channel


def check_can_speak(channel: Speakable, me: discord.Member) -> None:
    """Refuse now, with the reason, rather than fail silently at the persona's first word."""
    home = webhook_home(channel)
    permissions = home.permissions_for(me)
    missing = [
        label
        for label, granted in (
            ("Manage Webhooks", permissions.manage_webhooks),
            ("View Channel", permissions.view_channel),
            ("Send Messages", permissions.send_messages),
        )
        if not granted
    ]
    if missing:
        raise UserFacingError(
            f"I need the {', '.join(missing)} permission in {home.mention} for a persona to speak there. "
            "Ask a server admin to grant it, then try again."
        )


class WebhookPool:
    def __init__(self, client: discord.Client, store: RoleplayStore, *, cache_size: int = WEBHOOK_CACHE_SIZE) -> None:
        self._client = client
        self._store = store
        self._cache: OrderedDict[int, discord.Webhook] = OrderedDict()  # home channel id -> its webhook
        self._cache_size = cache_size

    async def get(self, channel: Speakable) -> discord.Webhook:
        """The channel's webhook, created if there is none; UserFacingError when Discord refuses."""
        home = webhook_home(channel)
        cached = self._cache.get(home.id)
        if cached is not None:
            self._cache.move_to_end(home.id)
            return cached
        stored = await self._store.webhook(home.id)
        if stored is not None:
            webhook = discord.Webhook.partial(stored[0], stored[1], client=self._client)
        else:
            webhook = await self._create(home)
        self._cache[home.id] = webhook
        self._cache.move_to_end(home.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return webhook

    async def forget(self, channel: Speakable) -> None:
        home = webhook_home(channel)
        self._cache.pop(home.id, None)
        await self._store.forget_webhook(home.id)

    def evict(self, home_id: int) -> None:
        """Drop a webhook from memory only (it stays stored): its channel fell silent."""
        self._cache.pop(home_id, None)

    def channels(self) -> set[int]:
        return set(self._cache)

    async def _create(self, home: discord.TextChannel) -> discord.Webhook:
        try:
            webhook = await home.create_webhook(name=WEBHOOK_NAME, reason="Personas speak through it (/roleplay)")
        except discord.Forbidden:
            raise UserFacingError(
                f"I need the Manage Webhooks permission in {home.mention} for a persona to speak there."
            ) from None
        except discord.HTTPException as error:
            if error.code == discord_limits.TOO_MANY_WEBHOOKS:
                raise UserFacingError(
                    f"{home.mention} already has {discord_limits.WEBHOOKS_PER_CHANNEL} webhooks, Discord's limit. "
                    "Delete one in the channel's settings (Integrations > Webhooks), then try again."
                ) from None
            if error.code == discord_limits.TOO_MANY_GUILD_WEBHOOKS:
                limit = discord_limits.WEBHOOKS_PER_GUILD
                raise UserFacingError(f"This server has reached Discord's limit of {limit} webhooks.") from None
            raise
        assert webhook.token is not None
        await self._store.remember_webhook(home.id, webhook.id, webhook.token)
        log.info("Created the persona webhook for channel %s", home.id)
        return webhook

    async def send(
        self,
        channel: Speakable,
        *,
        content: str,
        username: str,
        avatar_url: str | None,
        view: discord.ui.View | None = None,
    ) -> discord.WebhookMessage:
        """Post as a persona, recreating the webhook once if a moderator deleted it.

        The bot made the webhook, so Discord counts it as the application's and lets it carry
        buttons (`view`), which then reach the bot like any other.
        """
        for attempt in (1, 2):
            webhook = await self.get(channel)
            try:
                return await webhook.send(
                    content,
                    username=username,
                    avatar_url=avatar_url or discord.utils.MISSING,
                    wait=True,
                    view=view or discord.utils.MISSING,
                    **_thread(channel),
                )
            except discord.NotFound as error:
                if error.code != discord_limits.UNKNOWN_WEBHOOK or attempt == 2:
                    raise
                log.info("The persona webhook of channel %s was deleted; making a new one", channel.id)
                await self.forget(channel)
        raise AssertionError("unreachable")

    async def edit(
        self, channel: Speakable, message_id: int, content: str, *, view: discord.ui.View | None = None
    ) -> None:
        """Change a persona's message; its buttons stay unless `view` is given (an empty one takes them away)."""
        webhook = await self.get(channel)
        await webhook.edit_message(message_id, content=content, view=view or discord.utils.MISSING, **_thread(channel))

    async def delete(self, channel: Speakable, message_id: int) -> None:
        webhook = await self.get(channel)
        await webhook.delete_message(message_id, **_thread(channel))


def _thread(channel: Speakable) -> dict[str, discord.abc.Snowflake]:
    return {"thread": channel} if isinstance(channel, discord.Thread) else {}
