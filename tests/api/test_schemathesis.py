"""Schemathesis against /openapi.json: bad inputs of every shape get a 4xx envelope, never 500."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.threaded import threaded_gateway

ADMIN = "llmg_admin_key_for_schemathesis"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("schemathesis")
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    config = directory / "gateway.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.demo]
type = "mock"
[[models]]
alias = "m"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{directory / "st.db"}"
[cache]
enabled = false
""")
    with threaded_gateway(config) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    spec["servers"] = [{"url": base_url}]
    return schemathesis.openapi.from_dict(spec)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_endpoint_answers_in_the_envelope(case: Any, base_url: str) -> None:
    response = case.call(
        base_url=base_url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
    )
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, response.text
