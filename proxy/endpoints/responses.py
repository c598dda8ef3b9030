"""POST /v1/responses, and the stored responses: GET and DELETE /v1/responses/{id},
GET /v1/responses/{id}/input_items.

A response is stored unless the request says `store: false` (the API's default is to
store), under its owner: the calling user, or the static key. `previous_response_id`
continues a stored conversation on any route; another owner's id is not found.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from proxy.asgi import send_error, send_response
from proxy.auth import Principal, authenticate
from proxy.dialects.base import ResponsesInbound
from proxy.dialects.responses import ResponsesDialect
from proxy.dialects.responses_response import new_id
from proxy.endpoints.answer import AnswerEndpoint
from proxy.endpoints.proxied import Call
from proxy.errors import GatewayError, InvalidRequest, NotFound
from proxy.gateway import Gateway
from proxy.observer import Observer
from proxy.storage.responses import ResponseStore

# Input item types and the prefixes of the ids the gateway gives them when stored.
_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def owner_of(principal: Principal) -> str:
    """Whose stored responses these are: a user's keys share them, a static key's are its own."""
    return f"user:{principal.owner}" if principal.owner is not None else principal.key_ref


class ResponsesEndpoint(AnswerEndpoint):
    def __init__(self, gateway: Gateway, observer: Observer) -> None:
        self._responses = ResponsesDialect()
        super().__init__(gateway, observer, self._responses)

    async def prepare(self, principal: Principal, parsed: Any) -> None:
        assert isinstance(parsed, ResponsesInbound)
        previous = parsed.body.get("previous_response_id")
        if previous is None:
            return
        if not isinstance(previous, str):
            raise InvalidRequest(
                "'previous_response_id' must be a string", param="previous_response_id"
            )
        store = self._store()
        history = None if store is None else await store.history(previous, owner_of(principal))
        if history is None:
            raise InvalidRequest(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        self._responses.continue_from(parsed, history)

    async def serve(self, call: Call, inbound: Any) -> None:
        await super().serve(call, inbound)
        store = self._store()
        if store is None or inbound.answer is None or inbound.body.get("store") is False:
            return
        items = [with_id(item) for item in inbound.items]
        previous = inbound.body.get("previous_response_id")
        store.save(owner_of(call.principal), previous, items, inbound.answer)

    def _store(self) -> ResponseStore | None:
        services = self._gateway.services
        return None if services is None else services.responses


def with_id(item: Any) -> Any:
    """A stored input item has an id (the input_items list requires one)."""
    if not isinstance(item, dict) or "id" in item:
        return item
    prefix = _ID_PREFIXES.get(item.get("type", "message"), "item")
    return {"id": new_id(prefix), **item}


class StoredResponses:
    """GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._answer(scope, send)
        except GatewayError as error:
            await send_error(send, error)

    async def _answer(self, scope: Scope, send: Send) -> None:
        principal = authenticate(self._gateway.runtime.keys, scope)
        services = self._gateway.services
        response_id = scope["path_params"]["response_id"]
        owner = owner_of(principal)
        if services is None:
            raise not_found(response_id)
        store = services.responses
        if scope["method"] == "DELETE":
            if not await store.delete(response_id, owner):
                raise not_found(response_id)
            deleted = {"id": response_id, "object": "response.deleted", "deleted": True}
            await send_response(send, 200, orjson.dumps(deleted))
            return
        stored = await store.get(response_id, owner)
        if stored is None:
            raise not_found(response_id)
        if scope["path"].endswith("/input_items"):
            await send_response(send, 200, orjson.dumps(page(stored.input, query(scope))))
        else:
            await send_response(send, 200, orjson.dumps(stored.response))


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")


def query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    pairs = (part.partition("=") for part in raw.split("&") if part)
    return {name: value for name, _, value in pairs}


def page(items: list[Any], params: dict[str, str]) -> dict[str, Any]:
    """A cursor page of input items, as the API lists them (newest first by default)."""
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be asc or desc", param="order")
    try:
        limit = int(params.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequest("'limit' must be an integer from 1 to 100", param="limit")
    ordered = list(reversed(items)) if order == "desc" else list(items)
    after = params.get("after")
    if after:
        ids = [item.get("id") if isinstance(item, dict) else None for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    data = ordered[:limit]
    first = data[0].get("id") if data else None
    last = data[-1].get("id") if data else None
    return {
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": len(ordered) > limit,
    }
