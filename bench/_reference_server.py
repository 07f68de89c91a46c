"""The reference for the heartbeat benchmark: a trivial aiohttp POST handler returning
``{"ok":true}``, on the same kind of loop as ``stratavore daemon`` (plain asyncio, no access
log, one loopback port). It prints its port on stdout, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

OK = b'{"ok":true}'


async def heartbeat(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=OK, content_type="application/json")


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/api/v1/runners/{id}/heartbeat", heartbeat)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=True)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
