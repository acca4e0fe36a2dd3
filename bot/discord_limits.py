"""Discord's limits, each written once. Every module that must stay inside one imports it from here.

From Discord's API documentation (v10). Discord answers 400 (code 50035) to anything past them.
"""

from __future__ import annotations

# Interactions
INTERACTION_TOKEN_LIFETIME_SECONDS = 15 * 60  # editing the original response through the token
AUTOCOMPLETE_CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 100
TEXT_INPUT = 4000  # one text input of a modal (a form)
TEXT_INPUT_PLACEHOLDER = 100

# Messages
MESSAGE_CONTENT = 2000
BUTTON_LABEL = 80

# Embeds
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_TOTAL = 6000  # across every embed of one message

# Webhooks
WEBHOOK_USERNAME = 80  # also: must not contain "discord" or "clyde"
WEBHOOKS_PER_CHANNEL = 15
WEBHOOKS_PER_GUILD = 1000

# Error codes the bot reacts to
UNKNOWN_WEBHOOK = 10015
TOO_MANY_WEBHOOKS = 30007
TOO_MANY_GUILD_WEBHOOKS = 30058
