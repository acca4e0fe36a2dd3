"""Run the real bot against the wire harness's Discord stand-in: `python -m tests.wire.run_bot`.

Only the harness (tests/wire/harness.py) runs this, with `WIRE_DISCORD_BASE` set to the
stand-in's address. It points discord.py's REST base (`Route.BASE`) at the stand-in and takes
the gateway URL from the stand-in's `GET /gateway/bot`, as a sharded client would (a plain
`discord.Client` otherwise connects straight to `wss://gateway.discord.gg`). Then it runs the
bot's own entry point, `python -m bot run --sync`, unchanged. Nothing in `.env` or the bot's
settings can point the bot anywhere but Discord: this module is the only way in.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

# The harness imports this module for the name alone: discord.py and the bot load in `run()`.
STANDIN_VARIABLE = "WIRE_DISCORD_BASE"
API_VERSION_PATH = "/api/v10"


def point_discord_at(base: str, token: str) -> str:
    """Send discord.py's REST and gateway traffic to the stand-in at `base`; returns the gateway URL."""
    import discord.gateway
    import discord.http
    import yarl

    api = base.rstrip("/") + API_VERSION_PATH
    discord.http.Route.BASE = api
    request = urllib.request.Request(f"{api}/gateway/bot", headers={"Authorization": f"Bot {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    # Before the event loop exists, so a blocking read blocks nothing.
    with opener.open(request, timeout=10) as response:
        gateway = json.load(response)["url"]
    # A plain Client connects here first, and again after an INVALID_SESSION.
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return gateway


def run() -> int:
    base = os.environ.get(STANDIN_VARIABLE)
    if not base:
        print(f"{STANDIN_VARIABLE} is not set: only the wire harness runs this.", file=sys.stderr)  # noqa: T201
        return 2
    point_discord_at(base, os.environ.get("DISCORD_TOKEN", ""))
    from bot.__main__ import main

    return main(["run", "--sync"])


if __name__ == "__main__":
    sys.exit(run())
