"""A budget is never overspent, whatever the request looks like.

Each attack sends 200 concurrent requests on a $0.01 budget to an upstream that bills the
most a real provider could (tests/support/billing.py). What the request log records as
spent must stay within the budget, and some requests must have been answered (so the
attack was real). Figures are printed for docs/reliability.md (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.billing import BillingUpstream
from tests.support.gateway import RunningGateway

ADMIN = "llmg_admin_for_budget_attacks"
BUDGET_NANO = 10_000_000  # $0.01
CONCURRENT = 200


@pytest.fixture
async def upstream() -> AsyncIterator[BillingUpstream]:
    fake = await BillingUpstream().start()
    yield fake
    await fake.stop()


async def start(
    gateway_factory: GatewayFactory, upstream: BillingUpstream, db: Path
) -> RunningGateway:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    providers = "\n".join(
        f'[providers.{kind}]\ntype = "{kind}"\nbase_url = "{upstream.url}/v1"\napi_key_env = "K"'
        for kind in ("openai", "deepseek", "mistral")
    )
    return await gateway_factory(
        f"""
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
{providers}
[[models]]
alias = "mini"
routes = [{{ provider = "openai", model = "gpt-4o-mini" }}]
[[models]]
alias = "deepseek"
routes = [{{ provider = "deepseek", model = "deepseek-chat" }}]
[[models]]
alias = "mistral"
routes = [{{ provider = "mistral", model = "mistral-small-latest" }}]
[storage]
database = "{db}"
flush_interval_ms = 10
""",
        env={"K": "sk-upstream-key"},
    )


async def key(http: httpx.AsyncClient, name: str, **settings: Any) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    user = await http.post("/api/users", headers=admin, json={"name": name, **settings})
    assert user.status_code == 201, user.text
    created = await http.post("/api/keys", headers=admin, json={"user": name, "name": "k"})
    return str(created.json()["secret"])


def spent(db: Path, user: str) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        total, answered = conn.execute(
            "SELECT COALESCE(SUM(cost_nano), 0), SUM(http_status = 200) FROM requests "
            "WHERE owner = ?",
            (user,),
        ).fetchone()
    return int(total), int(answered or 0)


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    header += struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    header += struct.pack(">I", zlib.crc32(header[12:]))
    return "data:image/png;base64," + base64.b64encode(header).decode()


CJK = "漢字仮名交じり文" * 250  # 2,000 characters, 6,000 bytes
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "d" * 40_000, "parameters": {"type": "object"}},
}
ATTACKS: dict[str, dict[str, Any]] = {
    "n_10": {
        "model": "mini",
        "n": 10,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "40kb_tool": {
        "model": "mini",
        "max_tokens": 10,
        "tools": [TOOL],
        "messages": [{"role": "user", "content": "hi"}],
    },
    "2000_cjk_chars": {
        "model": "mini",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": CJK}],
    },
    "no_max_tokens": {"model": "mini", "messages": [{"role": "user", "content": "hi"}]},
    "no_max_tokens_stream": {
        "model": "mini",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "image_url": {
        "model": "mini",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
                ],
            }
        ],
    },
    "image_data": {
        "model": "mini",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": png(4000, 3000)}},
                ],
            }
        ],
    },
    "deepseek_both_caps": {
        "model": "deepseek",
        "max_tokens": 1_000_000,
        "max_completion_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "mistral_both_caps": {
        "model": "mistral",
        "max_tokens": 1_000_000,
        "max_completion_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    },
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_concurrent_odd_requests_never_overspend_a_budget(
    gateway_factory: GatewayFactory, upstream: BillingUpstream, tmp_path: Path, attack: str
) -> None:
    db = tmp_path / "gw.db"
    gw = await start(gateway_factory, upstream, db)
    async with gw.http() as http:
        secret = await key(http, "team", monthly_budget_usd="0.01")
        await asyncio.sleep(0.7)  # the key table's refresh
        auth = {"Authorization": f"Bearer {secret}"}
        replies = await asyncio.gather(
            *(
                http.post("/v1/chat/completions", headers=auth, json=ATTACKS[attack])
                for _ in range(CONCURRENT)
            )
        )
    codes = sorted({r.status_code for r in replies})
    assert codes in ([200, 402], [200]), [
        r.text for r in replies if r.status_code not in (200, 402)
    ][:2]
    await asyncio.sleep(0.3)
    total, answered = spent(db, "team")
    print(f"\n{attack}: {answered} answered, spent {total} of {BUDGET_NANO} nano-dollars")
    assert answered >= 1
    assert total <= BUDGET_NANO
    if attack.startswith("no_max_tokens"):
        capped = next(r for r in replies if r.status_code == 200)
        assert int(capped.headers["x-gateway-max-tokens"]) <= 16_384


async def test_tpm_is_not_bypassed_by_leaving_out_max_tokens(
    gateway_factory: GatewayFactory, upstream: BillingUpstream, tmp_path: Path
) -> None:
    db = tmp_path / "gw.db"
    gw = await start(gateway_factory, upstream, db)
    async with gw.http() as http:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        await http.post("/api/users", headers=admin, json={"name": "team"})
        created = await http.post(
            "/api/keys", headers=admin, json={"user": "team", "name": "k", "tpm": 1000}
        )
        auth = {"Authorization": f"Bearer {created.json()['secret']}"}
        await asyncio.sleep(0.7)
        body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
        replies = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=auth, json=body) for _ in range(50))
        )
    assert sorted({r.status_code for r in replies}) == [200, 429]
    await asyncio.sleep(0.3)
    with sqlite3.connect(db) as conn:
        (tokens,) = conn.execute(
            "SELECT SUM(prompt_tokens + completion_tokens) FROM requests"
        ).fetchone()
    print(f"\nTPM 1000, 50 requests without max_tokens: {tokens} tokens billed in the minute")
    assert 0 < tokens <= 1000
