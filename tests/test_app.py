"""The app's lifespan: what start-up leaves behind for the request path."""

from __future__ import annotations

import gc

from proxy.app import YOUNG_THRESHOLD
from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml


async def test_the_collector_is_tuned_for_serving_and_restored_at_stop(
    gateway_factory: GatewayFactory,
) -> None:
    before = gc.get_threshold()
    gateway = await gateway_factory(gateway_toml(MOCK, alias("m", ("demo", "echo"))))
    # Start-up's objects are out of the collector's sight while the gateway serves ...
    assert gc.get_freeze_count() > 10_000
    # ... and the young generation is collected ten times less often than by default.
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:]) and before[0] < YOUNG_THRESHOLD
    async with gateway.http() as http:
        assert (await http.get("/readyz")).status_code == 200
    await gateway.stop()
    # ... and back as they were once it stops, for a process that goes on.
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
