"""`ApplicationRoutes`: REST for login (`/users/@me`, the application), the gateway URL and command sync."""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.wire.standin.plumbing import Handler, _Answer, _error, _Request
from tests.wire.standin.state import StandInState


class ApplicationRoutes(StandInState):
    """The routes a bot calls as it logs in and syncs its slash commands."""

    def _application_routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/users/@me"): self._get_me,
            ("GET", "/oauth2/applications/@me"): self._get_application,
            ("GET", "/applications/@me"): self._get_application,
            ("GET", "/gateway"): self._get_gateway,
            ("GET", "/gateway/bot"): self._get_gateway_bot,
            ("GET", "/applications/{application_id}/commands"): self._get_commands,
            ("PUT", "/applications/{application_id}/commands"): self._put_commands,
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands"): self._get_commands,
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): self._put_commands,
        }

    # REST: login and gateway ----------------------------------------------------------------

    async def _get_me(self, _request: _Request) -> _Answer:
        return _Answer(
            200,
            {
                **self.bot.payload(),
                "verified": True,
                "mfa_enabled": False,
                "locale": "en-US",
                "email": None,
                "premium_type": 0,
            },
        )

    async def _get_application(self, _request: _Request) -> _Answer:
        return _Answer(
            200,
            {
                "id": str(self.application_id),
                "name": self.bot.name,
                "icon": None,
                "description": "",
                "type": None,
                "bot": self.bot.payload(),
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "integration_types_config": {"0": {}},
                "verify_key": secrets.token_hex(32),
                "flags": self._application_flags(),
                "flags_new": str(self._application_flags()),
                "max_participants": None,
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "owner": self.owner.payload(),
                "approximate_guild_count": len(self.guilds),
                "approximate_user_install_count": 0,
                "approximate_user_authorization_count": 0,
                "explicit_content_filter": 0,
                "eligible_oauth2_scopes": ["bot", "applications.commands"],
                "team": None,
            },
        )

    async def _get_gateway(self, _request: _Request) -> _Answer:
        return _Answer(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, _request: _Request) -> _Answer:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _Answer(200, {"url": self.gateway_url, "shards": self.shard_count, "session_start_limit": limit})

    # REST: commands -------------------------------------------------------------------------

    def _command_list(self, request: _Request) -> list[dict[str, Any]] | _Answer:
        if int(request.params["application_id"]) != self.application_id:
            return _error(403, 50001, "Missing Access")
        if "guild_id" not in request.params:
            return self.global_commands
        guild_id = int(request.params["guild_id"])
        if guild_id not in self.guilds:
            return _error(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(guild_id, [])

    async def _get_commands(self, request: _Request) -> _Answer:
        commands = self._command_list(request)
        return commands if isinstance(commands, _Answer) else _Answer(200, commands)

    async def _put_commands(self, request: _Request) -> _Answer:
        current = self._command_list(request)
        if isinstance(current, _Answer):
            return current
        guild_id = int(request.params["guild_id"]) if "guild_id" in request.params else None
        existing = {(command["name"], command.get("type", 1)): command["id"] for command in current}
        synced = []
        for sent in request.json or []:
            kind = sent.get("type", 1)
            command = {
                "id": existing.get((sent["name"], kind)) or str(self.ids.next()),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "type": kind,
                "name": sent["name"],
                "name_localizations": sent.get("name_localizations"),
                "description": sent.get("description", ""),
                "description_localizations": sent.get("description_localizations"),
                "options": sent.get("options") or [],
                "default_member_permissions": sent.get("default_member_permissions"),
                "dm_permission": sent.get("dm_permission", True),
                "contexts": sent.get("contexts"),
                "integration_types": sent.get("integration_types") or [0],
                "nsfw": sent.get("nsfw", False),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            synced.append(command)
        if guild_id is None:
            self.global_commands = synced
        else:
            self.guild_commands[guild_id] = synced
        self.command_syncs.append((guild_id, time.monotonic()))
        return _Answer(200, synced)
