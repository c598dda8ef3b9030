"""gateway.toml validation: every problem reported at once, with file and key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from proxy.config import DEV_KEY, ConfigError, load_config

SHIPPED = Path(__file__).parent.parent / "gateway.toml"


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "g.toml"
    path.write_text(text)
    return load_config(path, env=env or {}, **kw)  # type: ignore[arg-type]


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_shipped_config_serves_the_demo_alias_without_any_key() -> None:
    config = load_config(SHIPPED, env={})
    assert not config.providers["openai"].enabled
    assert config.providers["demo"].enabled
    assert [r.provider for r in config.usable_routes(config.aliases["fast"])] == ["demo"]
    assert any("OPENAI_API_KEY" in w for w in config.warnings)
    assert config.keys[0].sha256 == hashlib.sha256(DEV_KEY.encode()).hexdigest()


def test_shipped_config_enables_openai_when_its_key_is_set() -> None:
    config = load_config(SHIPPED, env={"OPENAI_API_KEY": "sk-x"})
    assert config.providers["openai"].enabled
    assert config.providers["openai"].api_key == "sk-x"
    assert "sk-x" not in repr(config)


def test_every_error_is_listed_with_its_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
[server]
port = "eighty"
colour = "blue"

[providers.a]
type = "carrier-pigeon"

[providers.b]
type = "openai_compatible"

[[models]]
alias = "x"
strategy = "random"
routes = [{ provider = "nope", model = "" }]

[retry]
attempts_per_route = -1
""",
    )
    text = "\n".join(found)
    for expected in (
        "server.port: must be a whole number",
        "server.colour: unknown key",
        "providers.a.type: must be one of",
        "providers.b.base_url: is required",
        "models[0].strategy: must be one of",
        "models[0].routes[0].provider: 'nope' is not a configured provider",
        "models[0].routes[0].model: is required",
        "retry.attempts_per_route: must be at least 0",
    ):
        assert expected in text, expected
    assert all(p.startswith(str(tmp_path / "g.toml")) for p in found)


def test_invalid_toml_and_missing_file_are_reported(tmp_path: Path) -> None:
    assert "not valid TOML" in problems(tmp_path, "[server\n")[0]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.toml")
    assert "file not found" in caught.value.problems[0]


def test_key_sources(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"llmg_secret").hexdigest()
    config = load(
        tmp_path,
        f"""
[[keys]]
name = "from-env"
key_env = "K1"
[[keys]]
name = "from-hash"
key_sha256 = "{digest.upper()}"
[[keys]]
name = "unset"
key_env = "K2"
""",
        env={"K1": "llmg_secret"},
    )
    assert [k.name for k in config.keys] == ["from-env", "from-hash"]
    assert {k.sha256 for k in config.keys} == {digest}
    assert any("K2" in w for w in config.warnings)
    assert "must be 64 hex" in problems(tmp_path, '[[keys]]\nname = "x"\nkey_sha256 = "abc"\n')[0]
    assert "exactly one" in problems(tmp_path, '[[keys]]\nname = "x"\n')[0]


def test_dev_key_only_on_loopback(tmp_path: Path) -> None:
    text = '[[keys]]\nname = "dev"\ndev_only = true\n'
    assert len(load(tmp_path, text).keys) == 1
    assert load(tmp_path, text, host="0.0.0.0").keys == ()
    exposed = load(tmp_path, '[server]\nhost = "10.0.0.5"\n' + text)
    assert exposed.keys == () and any("disabled" in w for w in exposed.warnings)


def test_alias_with_every_provider_disabled_is_a_warning(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[providers.o]\ntype = "openai"\n[[models]]\nalias = "a"\n'
        'routes = [{ provider = "o", model = "m" }]\n',
    )
    assert any("every route's provider is disabled" in w for w in config.warnings)


def test_defaults_per_provider_type(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[providers.a]\ntype = "anthropic"\n[providers.d]\ntype = "deepseek"\n',
        env={"ANTHROPIC_API_KEY": "x", "DEEPSEEK_API_KEY": "y"},
    )
    assert config.providers["a"].base_url == "https://api.anthropic.com/v1"
    assert config.providers["a"].api_version == "2023-06-01"
    assert config.providers["d"].api_key == "y"


def test_storage_on_postgresql_needs_a_url_without_its_password(tmp_path: Path) -> None:
    found = problems(tmp_path, '[storage]\nbackend = "postgresql"\n')
    assert any("storage.url: must be a postgresql:// URL" in p for p in found), found
    found = problems(
        tmp_path, '[storage]\nbackend = "postgresql"\nurl = "postgresql://gw:hunter2@db/gw"\n'
    )
    assert any("password_env" in p for p in found), found
    found = problems(
        tmp_path, '[storage]\nbackend = "postgresql"\nurl = "postgresql://gw@db/gw?password=x"\n'
    )
    assert any("password_env" in p for p in found), found
    config = load(
        tmp_path,
        '[storage]\nbackend = "postgresql"\nurl = "postgresql://gw@db/gw"\n'
        'password_env = "PGPASS"\n',
        env={"PGPASS": "s3cret-pg"},
    )
    assert config.storage.password == "s3cret-pg"
    assert "s3cret-pg" not in repr(config.storage)
