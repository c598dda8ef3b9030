"""The `llm-gateway` command: serve, check-config, prices check, and account management."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy.accounts.cli import add_commands as add_account_commands
from proxy.accounts.cli import run as run_account_command
from proxy.config import ConfigError, GatewayConfig, load_config
from proxy.price_table import PriceTable, unpriced_routes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    _config_arg(serve)
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.add_argument(
        "--workers",
        default="1",
        help="processes serving the port: a number, or auto (one per core); default 1",
    )
    serve.add_argument(
        "--allow-per-process-state",
        action="store_true",
        help="with several workers and [state] backend = memory: accept that every worker "
        "enforces each rate limit and budget on its own",
    )
    check = commands.add_parser("check-config", help="validate a config and summarise it")
    _config_arg(check)
    prices = commands.add_parser("prices", help="the built-in price table").add_subparsers(
        dest="action", required=True
    )
    compare = prices.add_parser(
        "check", help="print how a price file differs from the built-in table (exit 1 if it does)"
    )
    compare.add_argument("file", help="a price file in the format of proxy/data/prices.toml")
    add_account_commands(commands, _config_arg)
    args = parser.parse_args(argv)
    if args.command == "prices":
        return check_prices(args.file)
    if not args.config:
        parser.error("give --config PATH or set GATEWAY_CONFIG")
    if args.command == "check-config":
        return check_config(args.config)
    if args.command in ("users", "keys", "credentials"):
        config = _load(args.config)
        return 1 if config is None else run_account_command(args, config)
    return serve_command(
        args.config, args.host, args.port, args.workers, args.allow_per_process_state
    )


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("GATEWAY_CONFIG"),
        help="path to gateway.toml (default: $GATEWAY_CONFIG)",
    )


def _load(path: str, host: str | None = None, port: int | None = None) -> GatewayConfig | None:
    try:
        return load_config(path, host=host, port=port)
    except ConfigError as error:
        print(f"{path}: {len(error.problems)} error(s):", file=sys.stderr)
        for problem in error.problems:
            print(f"  error: {problem}", file=sys.stderr)
        return None


def check_config(path: str) -> int:
    config = _load(path)
    if config is None:
        return 1
    print(f"{path}: OK")
    print(f"providers ({len(config.providers)}):")
    for p in config.providers.values():
        state = "enabled" if p.enabled else "DISABLED"
        where = f" {p.base_url}" if p.base_url else ""
        print(f"  {p.name}: type={p.type}{where} [{state}]")
    print(f"aliases ({len(config.aliases)}):")
    for alias in config.aliases.values():
        print(f"  {alias.alias} (strategy={alias.strategy}):")
        for r in alias.routes:
            usable = (
                "" if config.providers[r.provider].enabled else "  [skipped: provider disabled]"
            )
            print(f"    -> {r.provider}/{r.model}{usable}")
    print(f"keys: {len(config.keys)} static")
    for warning in (*config.warnings, *unpriced_routes(config)):
        print(f"warning: {warning}")
    return 0


def check_prices(path: str) -> int:
    """Nothing is fetched: the operator brings the file (from a provider's page, a
    colleague, a newer release) and reads what would change."""
    try:
        other = PriceTable.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {path}: {error}", file=sys.stderr)
        return 2
    builtin = PriceTable.builtin()
    differences = builtin.differences(other)
    print(f"built-in table (updated {builtin.updated}) vs {path} (updated {other.updated}):")
    for line in differences:
        print(f"  {line}")
    if not differences:
        print("  no differences")
    return 1 if differences else 0


def serve_command(
    path: str,
    host: str | None,
    port: int | None,
    workers: str = "1",
    allow_per_process_state: bool = False,
) -> int:
    config = _load(path, host, port)
    if config is None:
        return 1
    from proxy.workers import metrics_directory, remove_metrics_directory, worker_count

    try:
        count = worker_count(workers)
    except ValueError:
        print(
            f"error: --workers must be a positive number or auto, not {workers!r}", file=sys.stderr
        )
        return 1
    if count > 1 and config.state.backend == "memory" and not allow_per_process_state:
        print(
            f'error: {count} workers with [state] backend = "memory" would each enforce '
            "every rate limit and budget on their own (and cache apart); set [state] "
            'backend = "redis", or pass --allow-per-process-state to accept that',
            file=sys.stderr,
        )
        return 1
    # Multiprocess metrics are chosen when prometheus_client is first imported: before
    # the server (and its metrics) are.
    directory = metrics_directory() if count > 1 else None
    from proxy.logs import configure_logging
    from proxy.server import serve

    configure_logging(config.logging.format, config.logging.level)
    try:
        return serve(config, count)
    finally:
        if directory is not None:
            remove_metrics_directory(directory)


if __name__ == "__main__":
    sys.exit(main())
