"""The app's lifespan: what start-up leaves behind for the request path."""

from __future__ import annotations

import gc

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml


async def test_startup_heap_is_frozen_while_serving(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(gateway_toml(MOCK, alias("m", ("demo", "echo"))))
    # Start-up's objects are out of the collector's sight while the gateway serves ...
    assert gc.get_freeze_count() > 10_000
    async with gateway.http() as http:
        assert (await http.get("/readyz")).status_code == 200
    await gateway.stop()
    # ... and back in it once it stops, so a process that goes on can collect them.
    assert gc.get_freeze_count() == 0
