"""Small endpoints: the model list, health and readiness, and the not-found fallback."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from starlette.types import Receive, Scope, Send

from proxy.asgi import header, send_error, send_response
from proxy.auth import authenticate
from proxy.dialects.messages_response import anthropic_error
from proxy.errors import GatewayError, NotFound
from proxy.gateway import Gateway
from proxy.router import model_not_found


class ModelList:
    """GET /v1/models: the aliases the calling key may use, in OpenAI's list shape;
    GET /v1/models/{model}: one of them (`client.models.retrieve`), else 404.

    A request with an `anthropic-version` header (the anthropic SDK sends one always)
    gets Anthropic's shapes instead: `ModelInfo` objects in a page with `has_more`,
    `first_id` and `last_id`, and errors in Anthropic's envelope.
    """

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._created = int(time.time())
        self._created_at = datetime.fromtimestamp(self._created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self._gateway.runtime
        anthropic = header(scope, b"anthropic-version") is not None
        model = self._anthropic_model if anthropic else self._openai_model
        try:
            principal = authenticate(runtime.keys, scope)
            wanted = scope.get("path_params", {}).get("model")
            if wanted is not None:
                if wanted not in runtime.router.aliases or not principal.may_use(wanted):
                    raise model_not_found(wanted)  # what this key may not use does not exist
                await send_response(send, 200, orjson.dumps(model(wanted)))
                return
        except GatewayError as error:
            if anthropic:
                status, body = anthropic_error(error)
                await send_response(send, status, body)
            else:
                await send_error(send, error)
            return
        names = [name for name in runtime.router.aliases if principal.may_use(name)]
        page: dict[str, object] = {"object": "list", "data": [model(name) for name in names]}
        if anthropic:
            page = {
                "data": page["data"],
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        await send_response(send, 200, orjson.dumps(page))

    def _openai_model(self, name: str) -> dict[str, object]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": "llm-gateway"}

    def _anthropic_model(self, name: str) -> dict[str, object]:
        return {"type": "model", "id": name, "display_name": name, "created_at": self._created_at}


class Health:
    """GET /healthz: the process is alive."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}')


class Ready:
    """GET /readyz: config loaded, at least one route usable, not shutting down."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        if gateway.shutting_down:
            await send_response(send, 503, b'{"status":"shutting_down"}')
        elif not gateway.started or not gateway.runtime.ready():
            await send_response(send, 503, b'{"status":"no_usable_route"}')
        else:
            await send_response(send, 200, b'{"status":"ready"}')


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send_error(send, NotFound(f"no such endpoint: {scope['method']} {scope['path']}"))
