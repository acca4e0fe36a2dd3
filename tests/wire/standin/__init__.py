"""A local stand-in for Discord, good enough for the real discord.py client over real sockets.

One aiohttp application serves:

- REST under `/api/v10`: login (`/users/@me`, `/oauth2/applications/@me`), `/gateway/bot`,
  command sync, interaction callbacks, original-response and follow-up edits through the
  interaction token, channel messages, typing, and channel webhooks. Every call is recorded
  (method, path, documented template, JSON body, uploaded file names, status, arrival time)
  and every JSON body is checked against Discord's own OpenAPI description
  (`tests/wire/discord_api/openapi.json`); a body that fails is recorded in `schema_failures`
  and, like Discord does, refused with 400 (50035). The stand-in's own JSON answers are
  checked against the response schemas too (`answer_failures`), so the fake keeps to the API.
  An interaction callback after Discord's 3 s is refused with 10062 and counted
  (`late_callbacks_refused`).
- A websocket gateway at `/gateway` (and `/gateway/resume`, the `resume_gateway_url`): HELLO,
  heartbeats acked, IDENTIFY answered with READY and a GUILD_CREATE per guild, RESUME replaying
  what the bot missed and then RESUMED, INVALID_SESSION for a session it does not know.
- Attachments at `/attachments/...`, as Discord's CDN serves them.

Tests drive it as Discord's users would: `send_command()` builds an INTERACTION_CREATE for a
synced slash command the way Discord does, `click_button()`, `submit_modal()` and
`send_member_message()` likewise; `drop_gateway()` cuts the connection; `rate_limit()` answers
a route with Discord's 429 (headers, body and the `Via` header discord.py looks for) a number
of times; `slow()` adds latency. What a user would see is in `messages` (content, embeds,
components, attachment names, every version with its time).

It never imports the bot.

How the pieces fit: `DiscordStandIn` is one object made of mixins. Their common base,
`StandInState` (state.py), makes every attribute in its constructor, typed, so all the mixins
read and write the same state; it also builds the world (`add_guild()`, ...) and answers the
tests' questions (`channel_messages()`, `wait_until()`, ...). Each mixin derives from
`StandInState` and from the mixins whose methods it calls (the routes and `ActingAsUsers` from
`Messages`, which derives from `Gateway`; `RestFrontDoor` from `Faults`), so whatever a module
calls on `self` is defined in a class it imports. Each route module lists its routes at the top
of its class; `DiscordStandIn` (stand_in.py) gathers those tables and builds the aiohttp app.

- constants.py: Discord's numbers (paths, opcodes, permission bits, types, flags), ids, timestamps.
- world.py: users, roles, channels and guilds.
- records.py: what is recorded: REST calls, schema failures, gateway events, messages, webhooks,
  interactions.
- plumbing.py: internal types: the gateway session and connection, fault rules, a parsed REST
  request and its answer.
- state.py: `StandInState`, the shared state; building the world; inspecting it; its URLs.
- faults.py: `Faults`: `rate_limit()`, `slow()`, `drop_gateway()`, `reconnect_request()`, and
  how a REST request meets them (429s, latency, rate-limit headers).
- gateway.py: `Gateway`: the websocket, IDENTIFY, RESUME, and events dispatched to the bot.
- messages.py: `Messages`: making, editing and deleting stored messages, and their mentions.
- users.py: `ActingAsUsers`: slash commands, buttons, modals, autocomplete, member messages.
- rest.py: `RestFrontDoor`: parsing, schema checks, routing and recording of each REST request.
- routes_application.py: `ApplicationRoutes`: login, the gateway URL, command sync.
- routes_interactions.py: `InteractionRoutes`: the interaction callback and `/webhooks/...`.
- routes_channels.py: `ChannelRoutes`: `/channels/...`: messages, typing, channel webhooks.
- stand_in.py: `DiscordStandIn`, and `serve()`.
"""

from tests.wire.standin.constants import (
    API_PREFIX,
    ATTACHMENTS_PATH,
    DEFAULT_TOKEN,
    GATEWAY_PATH,
    RESUME_GATEWAY_PATH,
)
from tests.wire.standin.records import (
    Attachment,
    ChannelWebhook,
    GatewayEvent,
    InteractionRecord,
    MessageVersion,
    RestCall,
    SchemaFailure,
    StoredMessage,
    visible_text,
)
from tests.wire.standin.stand_in import DiscordStandIn, serve
from tests.wire.standin.world import StandInChannel, StandInGuild, StandInRole, StandInUser

__all__ = [
    "API_PREFIX",
    "ATTACHMENTS_PATH",
    "DEFAULT_TOKEN",
    "GATEWAY_PATH",
    "RESUME_GATEWAY_PATH",
    "Attachment",
    "ChannelWebhook",
    "DiscordStandIn",
    "GatewayEvent",
    "InteractionRecord",
    "MessageVersion",
    "RestCall",
    "SchemaFailure",
    "StandInChannel",
    "StandInGuild",
    "StandInRole",
    "StandInUser",
    "StoredMessage",
    "serve",
    "visible_text",
]
