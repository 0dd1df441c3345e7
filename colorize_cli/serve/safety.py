"""The rules every request of `colorize serve` passes before a route sees it (docs/serve.md,
"Safety"): the Host header must name this server (DNS rebinding), a state-changing request from a
browser page of another origin is refused, a body larger than the limit is cut off, and every
answer carries headers that keep the page from being framed or fed foreign scripts.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Everything the page loads comes from the server itself: no CDN, no inline script.
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def allowed_hosts(host: str) -> frozenset[str]:
    """The names a request's Host header may give for a server bound to `host`: the bound name
    and this machine's loopback names; a wildcard bind adds the machine's own names."""
    names = {host.lower().strip("[]"), *LOCAL_NAMES}
    if host in WILDCARDS:
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name.lower())
            with contextlib.suppress(OSError):
                names.update(info[4][0] for info in socket.getaddrinfo(name, None))
    return frozenset(names)


def host_name(header: str) -> str:
    """The name of a Host header without its port: "[::1]:8000" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class BodyTooLarge(Exception):
    """Raised by the request's `receive` past the limit; app.py answers it with a 413."""


class Safety:
    """ASGI middleware: Host and Origin checks, the request size limit, the security headers.
    A refusal is JSON `{"error": "..."}`, like every error of the API."""

    def __init__(self, app: App, hosts: frozenset[str], max_body_bytes: int) -> None:
        self.app, self.hosts, self.max_body_bytes = app, hosts, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        host = headers.get("host", "")
        if host_name(host).rstrip(".") not in self.hosts:
            await _refuse(send, 403, f"Host {host[:100]!r} refused: open the page as localhost")
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}":
                await _refuse(send, 403, f"cross-origin request from {origin[:100]!r} refused")
                return
            if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                await _refuse(send, 403, "cross-site request refused")
                return
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            await _refuse(send, 413, self._too_large())
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge(self._too_large())
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        try:
            await self.app(scope, counted, with_headers)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"request larger than {self.max_body_bytes / 2**20:g} MiB (--max-upload-mb)"


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
