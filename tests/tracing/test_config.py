"""[tracing]: off by default, validated like every section, its header secret kept secret."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from proxy.config import ConfigError, TracingConfig, load_config
from proxy.config.sections import OTEL_MODULES

SHIPPED = Path(__file__).parent.parent.parent / "gateway.toml"


def load(tmp_path: Path, tracing: str, env: dict[str, str] | None = None) -> TracingConfig:
    path = tmp_path / "g.toml"
    path.write_text(f"[tracing]\n{tracing}\n")
    return load_config(path, env=env or {}).tracing


def problems(tmp_path: Path, tracing: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, tracing, env)
    return caught.value.problems


def test_off_by_default_and_in_the_shipped_config(tmp_path: Path) -> None:
    assert load(tmp_path, "") == TracingConfig()
    assert TracingConfig().enabled is False
    assert TracingConfig().endpoint == "http://127.0.0.1:4318/v1/traces"
    assert load_config(SHIPPED, env={}).tracing.enabled is False


def test_enabled_with_export_headers_from_the_environment(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        'enabled = true\nendpoint = "https://otlp.example/v1/traces"\n'
        'service_name = "gw-eu"\nsample_ratio = 0.25\nheaders_env = "OTLP_HEADERS"',
        env={"OTLP_HEADERS": "authorization=Bearer%20tok-123, x-tenant = blue"},
    )
    assert config.enabled and config.sample_ratio == 0.25 and config.service_name == "gw-eu"
    assert config.headers == {"authorization": "Bearer tok-123", "x-tenant": "blue"}
    assert "tok-123" not in repr(config)


def test_every_problem_is_reported_and_no_secret_is_echoed(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        'enabled = true\nendpoint = "grpc://collector:4317"\nservice_name = ""\n'
        'sample_ratio = 1.5\nheaders_env = "OTLP_HEADERS"\nexporter = "zipkin"',
        env={"OTLP_HEADERS": "token-without-a-name-s3cr3t"},
    )
    text = "\n".join(found)
    assert "tracing.endpoint: must start with http:// or https://" in text
    assert "tracing.service_name: must not be empty" in text
    assert "tracing.sample_ratio: must be at most 1" in text
    assert "tracing.exporter: unknown key" in text
    assert "tracing.headers_env: OTLP_HEADERS must hold key=value pairs" in text
    assert "s3cr3t" not in text


def test_a_named_header_variable_must_be_set_when_on(tmp_path: Path) -> None:
    found = problems(tmp_path, 'enabled = true\nheaders_env = "OTLP_HEADERS"')
    assert found == [
        f"{tmp_path / 'g.toml'}: tracing.headers_env: names OTLP_HEADERS, which is not set"
    ]
    assert load(tmp_path, 'enabled = false\nheaders_env = "OTLP_HEADERS"').headers == {}


def test_without_the_otel_packages_enabling_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in OTEL_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    (problem,) = problems(tmp_path, "enabled = true")
    assert "tracing.enabled" in problem
    assert "otel extra" in problem and "requirements-otel.lock" in problem
    assert load(tmp_path, "enabled = false").enabled is False  # off needs nothing
