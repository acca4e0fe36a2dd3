"""What simcord leaves out of Discord's webhooks: an application's own webhook may carry buttons.

Discord's Execute Webhook and Edit Webhook Message take `with_components`: "When enabled, allows
application-owned webhooks to use all components and non-owned webhooks to use non-interactive
components." A webhook a bot made is its application's, so the persona webhook may carry a Stop
button. simcord 3.2 treats every webhook as non-owned and refuses buttons on all of them; this
adds the owned case, as Discord has it, and leaves every other webhook as simcord checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simcord.http.routes import interactions as webhook_routes

Body = tuple[dict[str, Any], bool]


def _owned_by_the_app(ctx: Any) -> bool:
    webhook = webhook_routes._incoming_webhook(ctx)
    return bool(webhook.creator_id == ctx.backend.bot_user.id)


@contextmanager
def application_owned_webhooks() -> Iterator[None]:
    """While open, webhooks the bot created may send and edit interactive components."""
    simcord_rule: Callable[[Any], Body] = webhook_routes._incoming_webhook_body

    def discord_rule(ctx: Any) -> Body:
        wants_components = str(ctx.params.get("with_components", "")).lower() in {"1", "true"}
        if wants_components and _owned_by_the_app(ctx):
            return dict(ctx.body()), True
        return simcord_rule(ctx)

    webhook_routes._incoming_webhook_body = discord_rule  # type: ignore[assignment]
    try:
        yield
    finally:
        webhook_routes._incoming_webhook_body = simcord_rule  # type: ignore[assignment]
