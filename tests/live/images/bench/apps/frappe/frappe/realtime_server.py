"""The realtime server (Frappe's ``node apps/frappe/socketio.js``), for the live tier: a
socket.io server (python-socketio's AsyncServer on aiohttp, Engine.IO 4, polling and websocket)
on the bench's ``socketio_port``.

Every namespace is accepted at the protocol level (Frappe: ``io.of(/^\\/.*$/)``) and then
authenticated as Frappe does it (frappe.realtime_auth). An authenticated socket joins the rooms
frappe_handlers.js puts it in (``user:<user>``, ``website``, and ``all`` for System Users).
Events Frappe publishes on the queue Redis channel ``events`` (``{event, message, room,
namespace}``) go to that room of ``/<namespace>``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import socketio
from aiohttp import web

import frappe
from frappe.realtime_auth import RefusedError, check_handshake, fetch_user_info


def request_headers(environ: dict) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return headers


class RealtimeServer(socketio.AsyncServer):
    def __init__(self, default_site: str | None) -> None:
        # cors: Frappe's server allows any origin (it checks Origin against Host itself).
        super().__init__(async_mode="aiohttp", namespaces="*", cors_allowed_origins="*")
        self.default_site = default_site

    async def _trigger_event(self, event, namespace, *args):
        # One handler for every namespace, as Frappe's regex namespace has.
        if event == "connect":
            return await self.authenticate(namespace, *args)
        if event in ("disconnect",):
            return None
        return self.not_handled

    async def authenticate(self, namespace, sid, environ, auth=None):
        headers = request_headers(environ)
        try:
            session = check_handshake(namespace, headers, self.default_site)
            info = await asyncio.get_running_loop().run_in_executor(
                None, fetch_user_info, headers.get("origin"), session
            )
        except RefusedError as refused:
            frappe.log(f"refused {namespace}: {refused}")
            raise socketio.exceptions.ConnectionRefusedError(str(refused)) from None
        rooms = [f"user:{info['user']}", "website"]
        if info.get("user_type") == "System User":
            rooms.append("all")
        for room in rooms:
            self.enter_room(sid, room, namespace=namespace)
        frappe.log(f"{info['user']} joined {namespace} ({', '.join(rooms)})")
        return True


async def relay_events(server: RealtimeServer) -> None:
    """Frappe's subscriber on the queue Redis: every message on ``events`` to its room."""
    import redis.asyncio

    conf = frappe.common_config()
    url = conf.get("redis_queue") or conf.get("redis_socketio")
    while True:
        try:
            client = redis.asyncio.from_url(url)
            pubsub = client.pubsub()
            await pubsub.subscribe("events")
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                message = json.loads(item["data"])
                await server.emit(
                    message["event"],
                    message.get("message"),
                    room=message.get("room"),
                    namespace="/" + message["namespace"],
                )
        except Exception as error:  # Redis gone for a moment: resubscribe, as node-redis does
            frappe.log(f"events subscription: {error!r}")
            await asyncio.sleep(1)


def main() -> int:
    if frappe.BROKEN == "port":
        frappe.log("broken build: the realtime server never listens")
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return 0
    conf = frappe.common_config()
    if not (conf.get("redis_queue") or conf.get("redis_socketio")):
        frappe.log("redis_queue missing in common_site_config.json")
        return 1
    port = int(conf.get("socketio_port", 9000))
    server = RealtimeServer(conf.get("default_site"))
    app = web.Application()
    server.attach(app)

    async def mark_version(request: web.Request, response: web.StreamResponse) -> None:
        # Which release answered (the tier's request loops count old and new versions).
        response.headers["X-Standin-Version"] = frappe.VERSION

    app.on_response_prepare.append(mark_version)

    async def start_relay(app: web.Application) -> None:
        app["relay"] = asyncio.create_task(relay_events(server))

    app.on_startup.append(start_relay)
    print("Realtime service listening on: ", port, flush=True)
    web.run_app(app, port=port, print=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
