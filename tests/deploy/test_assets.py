"""The deploy/ assets are checked by the tools that will read them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from proxy.metrics import Metrics

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
VENV_BIN = Path(__file__).parent.parent.parent / ".venv" / "bin" / "llm-gateway"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is installed by `make test` (Makefile target `tools`)"
    return path


def exported_metrics() -> set[str]:
    """Every sample name the gateway exports, read from a real registry, not a list."""
    metrics = Metrics(per_key_labels=True)
    metrics.watch_log_writer(lambda: (0, 0, 0, 0, 0))
    # Touch labelled metrics once so their samples exist.
    metrics.requests.labels("chat", "a", "p", "2xx", "k").inc()
    for histogram in (
        metrics.duration.labels("a", "p", "false"),
        metrics.ttft.labels("a", "p"),
        metrics.attempt_duration.labels("p", "ok"),
        metrics.overhead,
    ):
        histogram.observe(0.1)
    for counter, labels in (
        (metrics.upstream_errors, ("p", "timeout")),
        (metrics.fallbacks, ("a",)),
        (metrics.tokens, ("a", "p", "prompt")),
        (metrics.cost, ("a", "p")),
        (metrics.cache, ("hit",)),
        (metrics.reloads, ("ok",)),
        (metrics.budget_alerts, ("1",)),
    ):
        counter.labels(*labels).inc()
    metrics.circuit.labels("p").set(0)
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def test_systemd_unit_verifies() -> None:
    unit = (DEPLOY / "llm-gateway.service").read_text()
    for setting in (
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=llm-gateway",
        "EnvironmentFile=",
        "Restart=on-failure",
        "LimitNOFILE=65536",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestrictAddressFamilies=",
        "CapabilityBoundingSet=\n",
        "User=llm-gateway",
    ):
        assert setting in unit, setting
    # verify checks that ExecStart exists: point it at this checkout's entry point.
    local = unit.replace("/opt/llm-gateway/.venv/bin/llm-gateway", str(VENV_BIN))
    scratch = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    try:
        (scratch / "llm-gateway.service").write_text(local)
        result = subprocess.run(
            [tool("systemd-analyze"), "verify", str(scratch / "llm-gateway.service")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(scratch)
    assert result.returncode == 0, result.stderr
    assert "llm-gateway.service" not in result.stderr, result.stderr


def test_prometheus_rules_and_config_pass_promtool() -> None:
    promtool = tool("promtool")
    for args in (
        ["check", "rules", str(DEPLOY / "alerts.yml")],
        ["check", "config", str(DEPLOY / "prometheus.yml")],
    ):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    rules = (DEPLOY / "alerts.yml").read_text()
    for alert in (
        "GatewayDown",
        "HighProviderErrorRate",
        "CircuitOpen",
        "HighP99Latency",
        "BudgetThresholdCrossed",
        "LogRowsDropped",
    ):
        assert f"alert: {alert}" in rules


def test_dashboard_and_rules_name_only_exported_metrics() -> None:
    exported = exported_metrics()
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += re.findall(
        r"expr: \|?\s*\n?((?:.+\n)+?)(?=\s+for:|\s+labels:)", (DEPLOY / "alerts.yml").read_text()
    )
    named = {name for e in expressions for name in re.findall(r"\bgateway_[a-z_]+", e)}
    assert named, "no expressions found"
    assert named <= exported, named - exported
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "request rate",
        "error rate",
        "latency",
        "first token",
        "tokens",
        "cost",
        "cache",
        "fallbacks",
        "circuit",
        "in-flight",
        "log queue",
    ):
        assert topic in titles, topic


def test_nginx_example_keeps_streams_unbuffered() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    for directive in (
        "proxy_buffering off;",
        "proxy_cache off;",
        "proxy_http_version 1.1;",
        "server 127.0.0.1:8080;",
        "proxy_read_timeout 600s;",
        "ssl_certificate",
    ):
        assert directive in text, directive


def check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN), "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_the_production_config_has_no_dev_key_and_keeps_metrics_and_docs_private() -> None:
    from proxy.config import load_config

    env = {"GATEWAY_ADMIN_KEY": "llmg_x" * 8, "OPENAI_API_KEY": "sk-x" * 8}
    config = load_config(DEPLOY / "gateway.toml", env=env)
    assert not any(key.dev_only for key in config.keys)
    assert config.metrics.port != 0 and config.metrics.host == "127.0.0.1"
    assert config.server.docs is False and config.server.host == "127.0.0.1"
    checked = check_config(DEPLOY / "gateway.toml", env)
    assert checked.returncode == 0 and "DANGER" not in checked.stdout, checked.stdout


def test_check_config_warns_loudly_about_a_dev_key_beside_a_real_provider() -> None:
    shipped = DEPLOY.parent / "gateway.toml"
    with_key = check_config(shipped, {"OPENAI_API_KEY": "sk-real-looking-key"})
    without = check_config(shipped, {})
    assert with_key.returncode == 0 and without.returncode == 0
    assert "DANGER" in with_key.stdout and "dev-only key" in with_key.stdout
    assert "DANGER" not in without.stdout  # only the offline mock provider is enabled
