"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and would break streaming)."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLIENT_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """Gives every request an id (keeping a well-formed client one) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        if given is not None and _CLIENT_ID.fullmatch(given):
            raw = given
        else:
            raw = secrets.token_hex(12).encode()
        scope.setdefault("state", {})["request_id"] = raw.decode()
        header = (b"x-request-id", raw)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
