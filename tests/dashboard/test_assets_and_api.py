"""What the dashboard is served with, when it is served, and the API it reads."""

from __future__ import annotations

from pathlib import Path

from proxy.config import load_config
from tests.conftest import GatewayFactory
from tests.dashboard.conftest import ADMIN, Seeded

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(seeded: Seeded) -> None:
    async with seeded.gateway.http() as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        for asset in ("/dashboard/app.js", "/dashboard/app.css"):
            first = await http.get(asset)
            assert first.status_code == 200 and first.content
            again = await http.get(asset, headers={"if-none-match": first.headers["etag"]})
            assert again.status_code == 304 and not again.content
        # Nothing inline: the policy forbids it, so the page must not depend on it.
        assert "<script>" not in page.text and "style=" not in page.text


async def test_off_when_asked_and_by_default_off_loopback(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = await gateway_factory('[server]\nhost = "127.0.0.1"\ndashboard = false\n')
    async with gw.http() as http:
        assert (await http.get("/dashboard")).status_code == 404
    public = tmp_path / "public.toml"
    public.write_text('[server]\nhost = "0.0.0.0"\n')
    assert not load_config(public, env={}).server.dashboard
    public.write_text('[server]\nhost = "0.0.0.0"\ndashboard = true\n')
    assert load_config(public, env={}).server.dashboard


async def test_breakdowns_add_up_to_the_summary(seeded: Seeded) -> None:
    user = {"Authorization": f"Bearer {seeded.user_key}"}
    async with seeded.gateway.http() as http:
        summary = (await http.get("/api/usage/summary", headers=user)).json()
        for by in ("model", "provider", "key", "tenant", "agent"):
            rows = (await http.get(f"/api/usage/breakdown?by={by}", headers=user)).json()["data"]
            assert sum(r["requests"] for r in rows) == summary["requests"] == 7, (by, rows)
        models = (await http.get("/api/usage/breakdown?by=model", headers=user)).json()["data"]
        assert {r["name"]: r["errors"] for r in models} == {"m": 0, "broken": 1}
        refused = await http.get("/api/usage/breakdown?by=colour", headers=user)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "by"


async def test_debug_bodies_are_for_admins_only(seeded: Seeded) -> None:
    user = {"Authorization": f"Bearer {seeded.user_key}"}
    async with seeded.gateway.http() as http:
        rows = (await http.get("/api/usage/requests", headers=user)).json()["data"]
        one = rows[0]["request_id"]
        mine = (await http.get(f"/api/usage/requests/{one}", headers=user)).json()
        theirs = (await http.get(f"/api/usage/requests/{one}", headers=ADMIN_AUTH)).json()
    assert mine["request_id"] == theirs["request_id"] == one
    assert mine["debug"] is None
    assert "hello" in theirs["debug"]["request_body"]  # kept, and shown to the operator
    assert seeded.user_key not in str(theirs["debug"])  # with the caller's key redacted


async def test_the_builtin_price_table_is_listed(seeded: Seeded) -> None:
    async with seeded.gateway.http() as http:
        table = (await http.get("/api/pricing", headers=ADMIN_AUTH)).json()
        anthropic = (await http.get("/api/pricing?provider=anthropic", headers=ADMIN_AUTH)).json()
    assert table["data"][0]["alias"] in ("m", "broken")
    builtin = {(e["provider_type"], e["model"]): e for e in table["builtin"]}
    assert ("openai", "gpt-4o-mini") in builtin
    assert builtin[("openai", "gpt-4o-mini")]["input_price"] == "0.15"
    assert anthropic["builtin"] and {e["provider_type"] for e in anthropic["builtin"]} == {
        "anthropic"
    }
    assert any("long_context" in e or "service_tiers" in e for e in table["builtin"])


async def test_reload_is_in_the_openapi_document(seeded: Seeded) -> None:
    async with seeded.gateway.http() as http:
        spec = (await http.get("/openapi.json")).json()
        reloaded = await http.post("/api/admin/reload", headers=ADMIN_AUTH)
    operation = spec["paths"]["/api/admin/reload"]["post"]
    assert operation["tags"] == ["admin"]
    assert reloaded.status_code == 200 and reloaded.json()["status"] == "reloaded"
    assert set(reloaded.json()) == set(
        operation["responses"]["200"]["content"]["application/json"]["example"]
    )


async def test_health_per_route_from_the_last_hour(seeded: Seeded) -> None:
    async with seeded.gateway.http() as http:
        providers = (await http.get("/api/providers", headers=ADMIN_AUTH)).json()["data"]
    by_name = {p["name"]: p for p in providers}
    assert by_name["up"]["recent_routes"] == [
        {
            "model": "gpt-4o-mini",
            "requests": 6,
            "error_rate": 0.0,
            "p50_latency_ms": by_name["up"]["recent_routes"][0]["p50_latency_ms"],
            "p95_latency_ms": by_name["up"]["recent_routes"][0]["p95_latency_ms"],
        }
    ]
    route = by_name["up"]["recent_routes"][0]
    assert 0 < route["p50_latency_ms"] <= route["p95_latency_ms"] <= 50  # loopback: fast
    # The roll-ups and the raw log agree on the provider's figures.
    assert by_name["up"]["recent"]["p95_latency_ms"] == route["p95_latency_ms"]
    assert by_name["down"]["recent_routes"] == []  # it never answered


async def test_a_key_sees_only_the_routes_it_may_use(seeded: Seeded) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with seeded.gateway.http() as http:
        created = await http.post(
            "/api/keys",
            headers=admin,
            json={"user": "team", "name": "narrow", "models": ["broken"]},
        )
        narrow = {"Authorization": f"Bearer {created.json()['secret']}"}
        await seeded.gateway.gateway.services.keys.refresh()
        providers = (await http.get("/api/providers", headers=narrow)).json()["data"]
    assert all(p["recent_routes"] == [] for p in providers)  # "m" answered, not "broken"
