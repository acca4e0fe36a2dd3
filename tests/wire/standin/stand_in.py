"""`DiscordStandIn`: the mixins composed into one local Discord, its aiohttp app and route table; `serve()`."""

from __future__ import annotations

import contextlib

from aiohttp import web

from tests.fakes.loopback import serve_fake
from tests.wire.standin.constants import API_PREFIX, ATTACHMENTS_PATH, GATEWAY_PATH, RESUME_GATEWAY_PATH
from tests.wire.standin.faults import Faults
from tests.wire.standin.gateway import Gateway
from tests.wire.standin.messages import Messages
from tests.wire.standin.plumbing import Handler
from tests.wire.standin.rest import RestFrontDoor
from tests.wire.standin.routes_application import ApplicationRoutes
from tests.wire.standin.routes_channels import ChannelRoutes
from tests.wire.standin.routes_interactions import InteractionRoutes
from tests.wire.standin.users import ActingAsUsers


class DiscordStandIn(
    ActingAsUsers,
    ApplicationRoutes,
    InteractionRoutes,
    ChannelRoutes,
    Messages,
    Gateway,
    RestFrontDoor,
    Faults,
):
    """All state of one local Discord; `app` serves it. See the package docstring."""

    def release_hangs(self) -> None:
        """Let every request held by `slow()` answer now (called when serving stops)."""
        self._held.release_all()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(GATEWAY_PATH, self._gateway)
        app.router.add_get(RESUME_GATEWAY_PATH, self._gateway)
        app.router.add_get(ATTACHMENTS_PATH + "/{channel_id}/{attachment_id}/{filename}", self._attachment)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        app.on_shutdown.append(self._close_connections)
        return app

    def _build_handlers(self) -> dict[tuple[str, str], Handler]:
        return {**self._application_routes(), **self._interaction_routes(), **self._channel_routes()}

    async def _close_connections(self, _app: web.Application) -> None:
        for connection in list(self._connections):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"the stand-in is shutting down")

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        wanted = int(request.match_info["attachment_id"])
        if wanted in self.uploads:
            upload = self.uploads[wanted]
            return web.Response(body=upload.data, content_type=upload.content_type)
        for message in self.messages.values():
            for attachment in message.attachments:
                if attachment.id == wanted:
                    return web.Response(body=attachment.data, content_type=attachment.content_type)
        raise web.HTTPNotFound()


def serve(standin: DiscordStandIn) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve the stand-in on a free loopback port; yields its base URL (`http://127.0.0.1:PORT`)."""
    return serve_fake(standin)
