"""The routes of notifications: channels (their secrets go to the OS keyring) and dead
letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, Route
from supervisor.api.wire import decode, id_param, json_response
from supervisor.notify import outbox
from supervisor.notify.outbox import Dispatcher
from supervisor.storage import queries


class Notify:
    """Serves the notification routes; the dispatcher delivers what they change."""

    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], float]) -> None:
        self.dispatcher = dispatcher
        self.clock = clock

    async def list_channels(self, request: web.Request) -> web.Response:
        return json_response([outbox.channel_out(row) for row in queries.list_channels()])

    async def put_channel(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await decode(request, sc.ChannelSet)
        loop = asyncio.get_running_loop()
        # the keyring may block (a DBus call, an unlock prompt): off the loop
        row = await loop.run_in_executor(
            None,
            lambda: outbox.add_channel(
                name, body.kind, body.config, body.policy, body.secret, self.clock()
            ),
        )
        self.dispatcher.poke()
        return json_response(outbox.channel_out(row))

    async def delete_channel(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await asyncio.get_running_loop().run_in_executor(None, outbox.remove_channel, name)
        return web.Response(status=204)

    async def test_channel(self, request: web.Request) -> web.Response:
        outcome = await self.dispatcher.test(request.match_info["name"])
        return json_response(sc.ChannelTest(result=outcome.result.value, reason=outcome.reason))

    async def list_dead(self, request: web.Request) -> web.Response:
        return json_response(outbox.dead_letters())

    async def retry_dead(self, request: web.Request) -> web.Response:
        outbox.retry_dead(id_param(request, "Delivery"), self.clock())
        self.dispatcher.poke()
        return web.Response(status=204)


ROUTES = (
    Route("get", "/api/v1/notify/channels", Notify.list_channels, "Notification channels",
          ADMIN, response=list[sc.ChannelOut]),
    Route("put", "/api/v1/notify/channels/{name}", Notify.put_channel,
          "Create or replace a channel", ADMIN, body=sc.ChannelSet, response=sc.ChannelOut),
    Route("delete", "/api/v1/notify/channels/{name}", Notify.delete_channel,
          "Remove a channel and its secret", ADMIN),
    Route("post", "/api/v1/notify/channels/{name}/test", Notify.test_channel,
          "Send a test message now", ADMIN, response=sc.ChannelTest),
    Route("get", "/api/v1/notify/dead", Notify.list_dead,
          "Dead letters: deliveries that gave up", ADMIN, response=list[sc.DeadLetter]),
    Route("post", "/api/v1/notify/dead/{id}/retry", Notify.retry_dead, "Retry a dead letter",
          ADMIN),
)  # fmt: skip
