"""The command line, run as a real process: check-config and serve's refusal to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env or {"PATH": "/usr/bin"},
    )


def test_check_config_summarises_the_shipped_file() -> None:
    result = run("check-config", "--config", "gateway.toml")
    assert result.returncode == 0, result.stderr
    assert "fast (strategy=ordered)" in result.stdout
    assert "openai/gpt-4o-mini  [skipped: provider disabled]" in result.stdout
    assert "warning:" in result.stdout and "OPENAI_API_KEY" in result.stdout


def test_check_config_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = -1\n[retry]\nmultiplier = "x"\n')
    result = run("check-config", "--config", str(bad))
    assert result.returncode == 1
    assert "server.port: must be at least 0" in result.stderr
    assert "retry.multiplier: must be a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_invalid_config_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[models]]\nalias = 3\n")
    result = run("serve", "--config", str(bad))
    assert result.returncode == 1
    assert "models[0].alias: must be a string" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_path_from_environment() -> None:
    result = run("check-config", env={"PATH": "/usr/bin", "GATEWAY_CONFIG": "gateway.toml"})
    assert result.returncode == 0
