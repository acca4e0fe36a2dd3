"""`python -m bot check`: verify the configuration without starting the bot."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import discord

from bot.humalike import errors
from bot.humalike.client import HumalikeClient
from bot.redaction import redacted_url
from bot.settings import Settings
from storage.database import open_database
from storage.personas import PersonaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool | None  # None: optional and not configured
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"[{mark}] {self.name}: {self.detail}"


DiscordLogin = Callable[[str], Awaitable[str]]


async def discord_login(token: str) -> str:
    """Log in over REST only (no gateway) and name the bot user."""
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(token)
        user = client.user
        return f"logged in as {user} (id {user.id})" if user else "logged in"
    finally:
        await client.close()


async def check_discord(settings: Settings, login: DiscordLogin = discord_login) -> CheckResult:
    try:
        return CheckResult("Discord token", True, await login(settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        return CheckResult(
            "Discord token", False, "Discord rejected DISCORD_TOKEN; reset it under Bot in the Developer Portal"
        )
    except (aiohttp.ClientError, TimeoutError, discord.HTTPException) as error:
        return CheckResult("Discord token", False, f"could not reach Discord ({type(error).__name__})")


async def check_humalike(
    settings: Settings, session: aiohttp.ClientSession, *, base_url: str | None = None, name: str = "Humalike token"
) -> CheckResult:
    """The token, through the free `whoami` of the turn-taking API: natural mode's API answers for both."""
    base_url = base_url or settings.humalike_base_url
    setting = "HUMALIKE_BASE_URL" if base_url == settings.humalike_base_url else "HUMALIKE_TURN_TAKING_URL"
    client = HumalikeClient(
        session, base_url=base_url, token=settings.humalike_token, timeout=settings.humalike_timeout_seconds
    )
    try:
        user_id = await client.whoami()
    except errors.Unauthorized:
        return CheckResult(name, False, "Humalike rejected HUMALIKE_TOKEN (401); get a valid one from its dashboard")
    except errors.Forbidden:
        return CheckResult(name, False, "HUMALIKE_TOKEN is valid but not allowed to call whoami (403)")
    except errors.NetworkError:
        return CheckResult(name, False, f"could not reach {redacted_url(base_url)} ({setting})")
    except errors.HumalikeError as error:
        return CheckResult(name, False, f"Humalike answered with an error ({error.status} {error.code})")
    both = "" if settings.humalike_turn_taking_url else " (personas and natural mode's turn-taking)"
    return CheckResult(name, True, f"accepted for account {user_id} at {redacted_url(base_url)}{both}")


async def check_database(settings: Settings) -> CheckResult:
    name = "Database"
    try:
        database = await open_database(url=settings.database_url, path=settings.database_path)
    except Exception as error:  # any failure to open is a configuration problem to report
        where = "DATABASE_URL" if settings.database_url else settings.database_path
        return CheckResult(name, False, f"cannot open {where}: {error}")
    try:
        version = await database.schema_version()
        personas = await PersonaStore(database).count()
        where = database.describe()
    finally:
        await database.close()
    # Opening migrates: reaching here, the schema is the latest this version of the bot knows.
    return CheckResult(name, True, f"{where} (schema {version}, current; {personas} personas)")


async def check_chat_model(settings: Settings, session: aiohttp.ClientSession) -> CheckResult:
    name = "Chat model"
    if not settings.chat_model_configured:
        return CheckResult(name, None, "not set; /roleplay needs CHAT_MODEL_BASE_URL and CHAT_MODEL_NAME")
    assert settings.chat_model_base_url and settings.chat_model_name
    headers = {}
    # Credentials in the URL win, as in the chat client (its HTTP library sends them as Basic auth).
    if settings.chat_model_api_key is not None and "@" not in urlsplit(settings.chat_model_base_url).netloc:
        headers["Authorization"] = f"Bearer {settings.chat_model_api_key.get_secret_value()}"
    url = models_url(settings.chat_model_base_url)
    shown = redacted_url(url)  # the base URL may carry a password or a key in its query
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status in (401, 403):
                return CheckResult(name, False, f"{shown} rejected CHAT_MODEL_API_KEY ({response.status})")
            if response.status >= 400:
                return CheckResult(name, False, f"{shown} answered {response.status}")
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return CheckResult(name, False, f"could not reach {shown} ({type(error).__name__})")
    models = (
        {item.get("id") for item in body.get("data", []) if isinstance(item, dict)} if isinstance(body, dict) else set()
    )
    if settings.chat_model_name not in models:
        return CheckResult(name, False, f"{shown} does not list the model {settings.chat_model_name!r}")
    return CheckResult(name, True, f"{settings.chat_model_name} at {redacted_url(settings.chat_model_base_url)}")


def models_url(base_url: str) -> str:
    """`{base_url}/models`, keeping a query the base URL carries after the path (as the chat client sends it)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/models"))


async def run_checks(settings: Settings, *, login: DiscordLogin = discord_login) -> list[CheckResult]:
    async with aiohttp.ClientSession() as session:
        results = [await check_discord(settings, login), await check_humalike(settings, session)]
        if settings.humalike_turn_taking_url:
            url = settings.humalike_turn_taking_url
            results.append(await check_humalike(settings, session, base_url=url, name="Humalike turn-taking"))
        return [*results, await check_database(settings), await check_chat_model(settings, session)]
