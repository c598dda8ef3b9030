"""gateway.toml snippets for tests: a dev key, fast retries, and the routes a test needs."""

from __future__ import annotations

import hashlib

BASE = """
[server]
host = "127.0.0.1"
max_request_body_mb = {body_mb}

[[keys]]
name = "dev"
dev_only = true

[retry]
attempts_per_route = {attempts}
initial_backoff_ms = 1
multiplier = 2.0
max_backoff_ms = {max_backoff_ms}
deadline_s = {deadline_s}

[circuit_breaker]
failure_threshold = {threshold}
cooldown_s = {cooldown_s}
"""


def provider(name: str, url: str, *, kind: str = "openai_compatible", **extra: object) -> str:
    lines = [f"[providers.{name}]", f'type = "{kind}"', f'base_url = "{url}/v1"']
    lines += [f"{key} = {_toml(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def alias(name: str, *routes: tuple[str, str], strategy: str = "ordered") -> str:
    listed = ", ".join(f'{{ provider = "{p}", model = "{m}" }}' for p, m in routes)
    return f'[[models]]\nalias = "{name}"\nstrategy = "{strategy}"\nroutes = [{listed}]\n'


def gateway_toml(
    *sections: str,
    attempts: int = 1,
    max_backoff_ms: int = 50,
    deadline_s: float = 20,
    threshold: int = 5,
    cooldown_s: float = 30,
    body_mb: float = 8,
) -> str:
    base = BASE.format(
        attempts=attempts,
        max_backoff_ms=max_backoff_ms,
        deadline_s=deadline_s,
        threshold=threshold,
        cooldown_s=cooldown_s,
        body_mb=body_mb,
    )
    return base + "\n".join(sections)


MOCK = '[providers.demo]\ntype = "mock"\n'


def admin_key(secret: str, name: str = "ops") -> str:
    """A static admin key: only its sha256 is in the file, as in production."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return f'[[keys]]\nname = "{name}"\nkey_sha256 = "{digest}"\nadmin = true\n'


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def shared_state_toml(upstream_url: str, admin_secret: str, storage: str, state: str) -> str:
    """The gateway the several-process tests run: an admin key, an OpenAI route `mini`,
    the given [storage] lines and [state] section."""
    return f"""
[server]
host = "127.0.0.1"
{admin_key(admin_secret)}
[providers.openai]
type = "openai"
base_url = "{upstream_url}/v1"
api_key_env = "K"
[[models]]
alias = "mini"
routes = [{{ provider = "openai", model = "gpt-4o-mini" }}]
[storage]
{storage}
flush_interval_ms = 10
{state}
"""
