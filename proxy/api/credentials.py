"""Users' own provider keys over HTTP: stored encrypted, shown masked, tested in place."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from proxy.accounts.credentials import Credential, CredentialStore, cipher
from proxy.accounts.probe import probe
from proxy.api.routing import Context, Endpoint, Param
from proxy.errors import InvalidRequest, NotFound, PermissionDenied

# The test call goes to the provider's configured base URL only: a URL in the request
# would let a caller aim the gateway at internal addresses (SSRF), so it is refused.
FIELDS = {"provider", "api_key", "user"}
# A credential body holds one key and two names: 16 KiB is far more than enough, and keeps
# a caller from parking megabytes in the encrypted store.
MAX_BODY_BYTES = 16 * 1024


def store(ctx: Context) -> CredentialStore:
    config = ctx.runtime.config.credentials
    return CredentialStore(
        ctx.services.db,
        cipher(config.master_key),
        config.master_key_env,
        actor=ctx.principal.key_name,
    )


def view(credential: Credential) -> dict[str, Any]:
    return asdict(credential)


def _body(ctx: Context) -> dict[str, Any]:
    body = ctx.body or {}
    unknown = set(body) - FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(
            f"unknown field {name!r}; the provider's URL comes from the gateway's config",
            param=name,
        )
    return body


def _target_user(ctx: Context, body: dict[str, Any]) -> str:
    asked = body.get("user")
    if asked is not None and not isinstance(asked, str):
        raise InvalidRequest("'user' must be a string", param="user")
    if ctx.admin and asked:
        return asked
    if asked and asked != ctx.principal.owner:
        raise PermissionDenied(
            "a user's key manages only its own user's credentials", code="other_user"
        )
    if ctx.principal.owner is None:
        raise InvalidRequest("this key belongs to no user: pass 'user' (admin keys)", param="user")
    return ctx.principal.owner


async def _owned(ctx: Context, credential_id: int) -> Credential:
    credential = await store(ctx).get(credential_id)
    if not ctx.admin and credential.user != ctx.principal.owner:
        raise NotFound(f"no credential with id {credential_id}", param="id")
    return credential


async def list_credentials(ctx: Context) -> dict[str, Any]:
    user = ctx.params["user"] if ctx.admin else ctx.principal.owner
    if not ctx.admin and user is None:
        raise PermissionDenied("this key belongs to no user", code="no_user")
    return {"object": "list", "data": [view(c) for c in await store(ctx).list(user)]}


async def create_credential(ctx: Context) -> dict[str, Any]:
    body = _body(ctx)
    provider, secret = body.get("provider"), body.get("api_key")
    if not isinstance(provider, str) or provider not in ctx.runtime.config.providers:
        raise InvalidRequest("'provider' must name a configured provider", param="provider")
    if not isinstance(secret, str) or not secret:
        raise InvalidRequest("'api_key' is required", param="api_key")
    user = _target_user(ctx, body)
    await ctx.services.accounts.user(user)
    return view(await store(ctx).put(user, provider, secret))


async def replace_credential(ctx: Context) -> dict[str, Any]:
    body = _body(ctx)
    credential = await _owned(ctx, ctx.params["id"])
    secret = body.get("api_key")
    if not isinstance(secret, str) or not secret:
        raise InvalidRequest("'api_key' is required", param="api_key")
    return view(await store(ctx).put(credential.user, credential.provider, secret))


async def delete_credential(ctx: Context) -> dict[str, Any]:
    await _owned(ctx, ctx.params["id"])
    return view(await store(ctx).delete(ctx.params["id"]))


async def test_credential(ctx: Context) -> dict[str, Any]:
    _body(ctx)
    credential = await _owned(ctx, ctx.params["id"])
    _, secret = await store(ctx).secret(credential.id)
    result = await probe(ctx.runtime.config, credential.provider, secret)
    return {
        "id": credential.id,
        "provider": credential.provider,
        "ok": result.ok,
        "status": result.status,
        "message": result.message,
    }


ID = Param("id", int, location="path", required=True)
EXAMPLE = {
    "id": 1,
    "user": "team-a",
    "provider": "openai",
    "masked": "sk-p...9xQz",
    "created_at": 1795000000.0,
    "updated_at": 1795000000.0,
}
BODY = {
    "type": "object",
    "properties": {
        "provider": {"type": "string"},
        "api_key": {"type": "string"},
        "user": {"type": "string"},
    },
}

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/credentials",
        "Your stored provider keys (masked)",
        list_credentials,
        params=(Param("user", description="admin keys: one user's"),),
        example={"object": "list", "data": [EXAMPLE]},
    ),
    Endpoint(
        "POST",
        "/api/credentials",
        "Store your own key for a provider",
        create_credential,
        body={**BODY, "required": ["provider", "api_key"]},
        max_body_bytes=MAX_BODY_BYTES,
        status=201,
        example=EXAMPLE,
    ),
    Endpoint(
        "PUT",
        "/api/credentials/{id}",
        "Replace a stored key",
        replace_credential,
        params=(ID,),
        body={**BODY, "required": ["api_key"]},
        max_body_bytes=MAX_BODY_BYTES,
        example=EXAMPLE,
    ),
    Endpoint(
        "DELETE",
        "/api/credentials/{id}",
        "Delete a stored key",
        delete_credential,
        params=(ID,),
        example=EXAMPLE,
    ),
    Endpoint(
        "POST",
        "/api/credentials/{id}/test",
        "One minimal request to the provider's configured URL with the key",
        test_credential,
        params=(ID,),
        body={"type": "object"},
        max_body_bytes=MAX_BODY_BYTES,
        example={
            "id": 1,
            "provider": "openai",
            "ok": True,
            "status": 200,
            "message": "openai accepted the key (gpt-4o-mini)",
        },
    ),
]
