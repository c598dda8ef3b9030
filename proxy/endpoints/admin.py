"""POST /api/admin/reload: re-read gateway.toml on demand (admin keys only)."""

from __future__ import annotations

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from proxy.asgi import send_error, send_response
from proxy.auth import authenticate
from proxy.errors import GatewayError, InvalidRequest, PermissionDenied
from proxy.gateway import Gateway

log = structlog.get_logger("proxy.admin")


class Reload:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        try:
            principal = authenticate(gateway.runtime.keys, scope)
            if not principal.admin:
                raise PermissionDenied(
                    "reloading the config needs an admin key", code="admin_required"
                )
            problems = gateway.reload(actor=principal.key_name)
            if problems:
                raise InvalidRequest(
                    "the new config is invalid; the running config is unchanged: "
                    + "; ".join(problems),
                    code="invalid_config",
                )
        except GatewayError as error:
            await send_error(send, error)
            return
        log.info("config_reload_requested", key=principal.key_name)
        aliases = sorted(gateway.runtime.router.aliases)
        await send_response(send, 200, orjson.dumps({"status": "reloaded", "aliases": aliases}))
