"""`python -m bot` runs the bot; `check` verifies its configuration; `copy-db` moves its data to PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import aiohttp
import discord

from bot.check import DiscordLogin, discord_login, run_checks
from bot.copy_db import copy_db
from bot.core import PersonaBot
from bot.logs import setup_logging
from bot.redaction import url_secrets
from bot.settings import Settings, SettingsError, load_settings, load_storage_settings

log = logging.getLogger("bot")

TOKEN_REJECTED = "Discord rejected DISCORD_TOKEN; reset it under Bot in the Developer Portal."
INTENT_REFUSED = "Discord refused an intent the bot needs; enable it under Bot in the Developer Portal."


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description="The Humalike persona bot for Discord.")
    parser.add_argument("command", nargs="?", choices=("run", "check", "copy-db"), default="run")
    parser.add_argument(
        "--sync",
        action="store_true",
        help="publish the slash commands globally at start-up (once after install or an update)",
    )
    parser.add_argument("--to", metavar="POSTGRESQL_URL", help="copy-db: the empty PostgreSQL database to copy into")
    parser.add_argument(
        "--from", dest="source", metavar="PATH", type=Path, help="copy-db: the SQLite file (DATABASE_PATH)"
    )
    args = parser.parse_args(argv)
    if args.command == "copy-db" and not (args.to or "").startswith(("postgres://", "postgresql://")):
        parser.error("copy-db needs --to postgresql://user@host/database")
    return args


async def run(settings: Settings, *, sync_globally: bool) -> None:
    async with PersonaBot(settings, sync_globally=sync_globally) as bot:
        await bot.start(settings.discord_token.get_secret_value())


async def check(settings: Settings, *, login: DiscordLogin = discord_login) -> int:
    results = await run_checks(settings, login=login)
    for result in results:
        print(result.line())  # noqa: T201 - a CLI report
    return 1 if any(result.ok is False for result in results) else 0


def copy_db_command(args: argparse.Namespace) -> int:
    try:
        source = args.source or load_storage_settings().database_path
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    if not source.is_file():
        print(f"No SQLite database at {source} (DATABASE_PATH); nothing to copy.", file=sys.stderr)  # noqa: T201
        return 2
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(copy_db(source, args.to))


def secrets_of(settings: Settings) -> list[str]:
    """Every configured value that must never reach the log, even inside a library's DEBUG line."""
    secrets = [settings.discord_token.get_secret_value(), settings.humalike_token.get_secret_value()]
    if settings.chat_model_api_key is not None:
        secrets.append(settings.chat_model_api_key.get_secret_value())
    for url in (settings.humalike_base_url, settings.chat_model_base_url, settings.database_url):
        secrets.extend(url_secrets(url or ""))
    return secrets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "copy-db":
        return copy_db_command(args)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "check":
        logging.basicConfig(level=logging.CRITICAL)  # the report is the output; discord.py's chatter is not
        return asyncio.run(check(settings))
    setup_logging(settings.log_level, secrets=secrets_of(settings))
    try:
        asyncio.run(run(settings, sync_globally=args.sync))
    except discord.LoginFailure:
        print(TOKEN_REJECTED, file=sys.stderr)  # noqa: T201
        return 2
    except discord.PrivilegedIntentsRequired:
        print(INTENT_REFUSED, file=sys.stderr)  # noqa: T201
        return 2
    except (aiohttp.ClientError, OSError) as error:
        print(f"Could not reach Discord ({type(error).__name__}); check the network and try again.", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        log.info("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
