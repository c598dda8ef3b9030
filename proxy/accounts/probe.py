"""Testing a stored credential: one minimal real request to the provider's configured URL.

The target is always the `base_url` of the provider in gateway.toml, never a URL that
came with the request, so the test cannot be turned against internal addresses.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from proxy.config import GatewayConfig
from proxy.errors import InvalidRequest, UpstreamFailure
from proxy.providers import ADAPTERS, TRANSPORTS
from proxy.scrubber import Scrubber
from proxy.transport import HTTPTransport


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    status: int | None
    message: str


async def probe(config: GatewayConfig, provider_name: str, secret: str) -> ProbeResult:
    provider = config.providers.get(provider_name)
    if provider is None:
        raise InvalidRequest(f"no provider named {provider_name!r} in the config", param="provider")
    model = next(
        (r.model for a in config.aliases.values() for r in a.routes if r.provider == provider_name),
        None,
    )
    if model is None:
        raise InvalidRequest(f"no alias routes to {provider_name!r}: nothing to test with")
    settings = dataclasses.replace(provider, api_key=secret, total_timeout_s=30)
    adapter = ADAPTERS[settings.type](settings)
    transport = TRANSPORTS.get(settings.type, HTTPTransport)(settings)
    request = adapter.chat_request(
        {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1},
        model,
        stream=False,
        request_id="credential-test",
    )
    # The provider's answer is shown to the caller: it must not echo the key back.
    scrubber = Scrubber()
    scrubber.set_source("probe", [secret])
    try:
        response = await transport.send(request, asyncio.get_running_loop().time() + 30)
        body = await response.read()
        if response.status == 200:
            return ProbeResult(True, 200, f"{provider_name} accepted the key ({model})")
        error = adapter.error(response.status, body, response.headers)
        return ProbeResult(False, response.status, scrubber.scrub(error.detail.message))
    except UpstreamFailure as failure:
        return ProbeResult(False, None, scrubber.scrub(failure.reason))
    finally:
        await transport.aclose()
