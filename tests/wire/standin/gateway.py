"""`Gateway`: the websocket: HELLO, heartbeats, IDENTIFY and READY, RESUME and its replay, events dispatched."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.wire.standin.constants import (
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    OP_DISPATCH,
    OP_HEARTBEAT,
    OP_HEARTBEAT_ACK,
    OP_HELLO,
    OP_IDENTIFY,
    OP_INVALID_SESSION,
    OP_PRESENCE,
    OP_REQUEST_MEMBERS,
    OP_RESUME,
    RESUME_BACKLOG,
    iso,
)
from tests.wire.standin.plumbing import _Connection, _Session
from tests.wire.standin.records import StoredMessage
from tests.wire.standin.state import StandInState
from tests.wire.standin.world import StandInGuild

log = logging.getLogger(__name__)


class Gateway(StandInState):
    """The gateway a bot connects to, and `_dispatch()`, which sends it events (kept for a RESUME)."""

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = _Connection(ws, request)
        self._connections.add(connection)
        self._note("connect", request.path_qs)
        try:
            await connection.send({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._gateway_message(connection, json.loads(message.data))
        finally:
            connection.closed.set()
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
            self._note("close", f"code {ws.close_code}")
            await self._notify()
        return ws

    async def _gateway_message(self, connection: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await connection.send({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data or {})
        elif op == OP_RESUME:
            await self._resume(connection, data or {})
        elif op in (OP_PRESENCE, OP_REQUEST_MEMBERS, 4):
            if connection.session is None:
                await connection.ws.close(code=4003, message=b"Not authenticated.")
        else:
            await connection.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token and data.get("token") != f"Bot {self.token}":
            self._note("identify", "refused: authentication failed")
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & INTENT_MESSAGE_CONTENT and not self.message_content_enabled:
            self._note("identify", "refused: disallowed intents")
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard, count = data.get("shard") or [0, 1]
        if count != self.shard_count or not 0 <= shard < count:
            self._note("identify", f"refused: shard {[shard, count]} of {self.shard_count}")
            await connection.ws.close(code=4010, message=b"Invalid shard.")
            return
        old = self._sessions.get(shard)
        if old is not None and old.connection is not None and old.connection is not connection:
            await old.connection.ws.close(code=4005, message=b"Already authenticated.")
        session = _Session(id=secrets.token_hex(16), intents=intents, shard=shard, connection=connection)
        connection.session = session
        self._sessions[shard] = session
        self._note("identify", f"intents {intents}, shard {shard} of {count}")
        guilds = [guild for guild_id, guild in self.guilds.items() if (guild_id >> 22) % count == shard]
        ready = {
            "v": 10,
            "user": {**self.bot.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ['["wire-standin",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch("READY", ready, session=session)
        for guild in guilds:
            await self._dispatch("GUILD_CREATE", self._guild_create(guild), session=session)
        await self._notify()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = next((s for s in self._sessions.values() if s.id == data.get("session_id")), None)
        if (
            session is None
            or not session.resumable
            or data.get("session_id") != session.id
            or data.get("token") not in (self.token, f"Bot {self.token}")
        ):
            self._note("invalid_session", "unknown session")
            await connection.send({"op": OP_INVALID_SESSION, "d": False})
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.ws.close(code=4000, message=b"Resumed elsewhere.")
        session.connection = None
        connection.session = session
        replayed = int(data.get("seq") or 0)
        self._note("resume", f"from seq {replayed}")
        # Replay until caught up (events may arrive meanwhile), and only then go live, so order holds.
        while missed := [frame for frame in session.backlog if frame["s"] > replayed]:
            for frame in missed:
                if not await connection.send(frame):
                    return
                replayed = frame["s"]
                hook = session.on_sent.pop(replayed, None)
                if hook is not None:
                    hook()
        session.connection = connection
        await self._dispatch("RESUMED", {"_trace": ['["wire-standin",{"micros":0}]']}, session=session)
        self._note("resumed", f"session {session.id}")
        await self._notify()

    async def _dispatch(
        self,
        event: str,
        data: Any,
        *,
        on_sent: Callable[[], None] | None = None,
        session: _Session | None = None,
    ) -> bool:
        """Send an event to the session of the shard its server is on (or `session`), kept for a RESUME.

        False if that shard is not connected now.
        """
        if session is None:
            guild_id = data.get("guild_id") if isinstance(data, dict) else None
            session = self._session_for(int(guild_id) if guild_id is not None else None)
        if session is None:
            log.info("gateway: %s dropped, no bot session", event)
            return False
        session.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(frame)
        del session.backlog[:-RESUME_BACKLOG]
        connection = session.connection
        if connection is not None and await connection.send(frame):
            if on_sent is not None:
                on_sent()
            return True
        if on_sent is not None:
            session.on_sent[frame["s"]] = on_sent
        return False

    def _guild_create(self, guild: StandInGuild) -> dict[str, Any]:
        channels = [c.payload() for c in guild.channels.values() if not c.is_thread]
        threads = [c.payload() for c in guild.channels.values() if c.is_thread]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "features": [],
            "roles": [role.payload() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "joined_at": iso(guild.joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [guild.member_payload(self.bot)],
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "lazy": True,
        }

    def _message_event(self, message: StoredMessage) -> dict[str, Any]:
        payload = message.payload(self._attachment_base())
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
            guild = self.guilds[message.guild_id]
            author_id = int(message.author["id"])
            if message.webhook_id is None and author_id in guild.members:
                payload["member"] = guild.member_payload(self.users[author_id], with_user=False)
        session = self._session_for(message.guild_id)
        # Without the Message Content intent, others' messages arrive without their content.
        if (
            session is not None
            and not session.intents & INTENT_MESSAGE_CONTENT
            and message.author["id"] != str(self.bot.id)
            and not any(user["id"] == str(self.bot.id) for user in message.mentions)
        ):
            payload.update(content="", embeds=[], attachments=[], components=[])
        return payload

    async def _dispatch_message(
        self, event: str, message: StoredMessage, *, referenced: StoredMessage | None = None
    ) -> None:
        session = self._session_for(message.guild_id)
        if message.ephemeral or session is None or not session.intents & INTENT_GUILD_MESSAGES:
            return
        payload = self._message_event(message)
        if referenced is not None:
            payload["referenced_message"] = referenced.payload(self._attachment_base())
        await self._dispatch(event, payload)

    async def _dispatch_delete(self, message: StoredMessage) -> None:
        session = self._session_for(message.guild_id)
        if message.ephemeral or session is None or not session.intents & INTENT_GUILD_MESSAGES:
            return
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._dispatch("MESSAGE_DELETE", data)
