"""`llm-gateway users ...` and `llm-gateway keys ...`: account management from the shell."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from proxy.accounts.credentials import Credential, CredentialStore, MasterKeyError, cipher
from proxy.accounts.probe import probe
from proxy.accounts.store import AccountStore, KeyRecord, User
from proxy.config import GatewayConfig
from proxy.errors import GatewayError, InvalidRequest
from proxy.pricing import usd
from proxy.storage.connect import open_database


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    config_arg: Callable[[argparse.ArgumentParser], None],
) -> None:
    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--budget-usd", type=_usd, help="monthly budget in USD")
    users.add_parser("list", help="list users")
    budget = users.add_parser("set-budget", help="set a user's monthly budget")
    budget.add_argument("name")
    budget.add_argument("budget_usd", type=_usd_or_none, help="USD, or 'none'")
    for parser in users.choices.values():
        config_arg(parser)

    keys = commands.add_parser("keys", help="manage gateway keys").add_subparsers(
        dest="action", required=True
    )
    new = keys.add_parser("create", help="create a key; its secret is printed once")
    new.add_argument("--user", required=True)
    new.add_argument("--name", required=True)
    new.add_argument("--budget-usd", type=_usd, help="the key's own monthly budget")
    new.add_argument("--rpm", type=int, help="requests per minute")
    new.add_argument("--tpm", type=int, help="tokens per minute")
    new.add_argument("--models", help="comma-separated aliases this key may use")
    new.add_argument("--expires", type=_date, help="YYYY-MM-DD (UTC) or an ISO timestamp")
    new.add_argument("--admin", action="store_true", help="may use the admin API")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--user")
    revoke = keys.add_parser("revoke", help="revoke a key (effective within a second)")
    revoke.add_argument("id", type=int)
    for parser in keys.choices.values():
        config_arg(parser)

    creds = commands.add_parser(
        "credentials", help="users' own provider keys (encrypted at rest)"
    ).add_subparsers(dest="action", required=True)
    put = creds.add_parser("set", help="store a user's key for a provider (read from stdin)")
    put.add_argument("--user", required=True)
    put.add_argument("--provider", required=True, help="a [providers.NAME] of the config")
    shown = creds.add_parser("list", help="list credentials (masked)")
    shown.add_argument("--user")
    gone = creds.add_parser("delete", help="delete a credential")
    gone.add_argument("id", type=int)
    test = creds.add_parser("test", help="one minimal request to the provider with the key")
    test.add_argument("id", type=int)
    for parser in creds.choices.values():
        config_arg(parser)


def run(args: argparse.Namespace, config: GatewayConfig) -> int:
    try:
        return asyncio.run(_run(args, config))
    except GatewayError as error:
        print(f"error: {error.message}", file=sys.stderr)
    except MasterKeyError as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


async def _run(args: argparse.Namespace, config: GatewayConfig) -> int:
    db = await open_database(config.storage)
    try:
        if args.command == "credentials":
            master = config.credentials
            store = CredentialStore(db, cipher(master.master_key), master.master_key_env)
            return await _CREDENTIAL_ACTIONS[args.action](store, args, config, AccountStore(db))
        action: Callable[[AccountStore, argparse.Namespace], Awaitable[None]] = _ACTIONS[
            (args.command, args.action)
        ]
        await action(AccountStore(db), args)
    finally:
        await db.close()
    return 0


async def _credential_set(
    store: CredentialStore, args: argparse.Namespace, config: GatewayConfig, users: AccountStore
) -> int:
    await users.user(args.user)
    if args.provider not in config.providers:
        raise InvalidRequest(f"no provider named {args.provider!r} in {config.path}")
    # From stdin, so the key never lands in shell history or the process list.
    secret = sys.stdin.readline().strip()
    print_credential(await store.put(args.user, args.provider, secret))
    return 0


async def _credential_list(
    store: CredentialStore, args: argparse.Namespace, config: GatewayConfig, users: AccountStore
) -> int:
    for credential in await store.list(args.user):
        print_credential(credential)
    return 0


async def _credential_delete(
    store: CredentialStore, args: argparse.Namespace, config: GatewayConfig, users: AccountStore
) -> int:
    print_credential(await store.delete(args.id))
    return 0


async def _credential_test(
    store: CredentialStore, args: argparse.Namespace, config: GatewayConfig, users: AccountStore
) -> int:
    credential, secret = await store.secret(args.id)
    result = await probe(config, credential.provider, secret)
    status = "" if result.status is None else f" (HTTP {result.status})"
    print(f"{'ok' if result.ok else 'failed'}{status}: {result.message}")
    return 0 if result.ok else 1


_CREDENTIAL_ACTIONS = {
    "set": _credential_set,
    "list": _credential_list,
    "delete": _credential_delete,
    "test": _credential_test,
}


def print_credential(credential: Credential) -> None:
    print(
        f"credential {credential.id}  {credential.user}  {credential.provider}  {credential.masked}"
    )


async def _user_create(store: AccountStore, args: argparse.Namespace) -> None:
    print_user(await store.create_user(args.name, args.budget_usd))


async def _user_list(store: AccountStore, args: argparse.Namespace) -> None:
    for user in await store.users():
        print_user(user)


async def _user_budget(store: AccountStore, args: argparse.Namespace) -> None:
    print_user(await store.set_user_budget(args.name, args.budget_usd))


async def _key_create(store: AccountStore, args: argparse.Namespace) -> None:
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    created = await store.create_key(
        args.user,
        args.name,
        budget_usd=args.budget_usd,
        rpm=args.rpm,
        tpm=args.tpm,
        models=models,
        expires_at=args.expires,
        admin=args.admin,
    )
    print_key(created.record)
    print(f"secret: {created.secret}")
    print("Store it now: it is shown only once and cannot be recovered.", file=sys.stderr)


async def _key_list(store: AccountStore, args: argparse.Namespace) -> None:
    for key in await store.keys(args.user):
        print_key(key)


async def _key_revoke(store: AccountStore, args: argparse.Namespace) -> None:
    print_key(await store.revoke_key(args.id))


_ACTIONS = {
    ("users", "create"): _user_create,
    ("users", "list"): _user_list,
    ("users", "set-budget"): _user_budget,
    ("keys", "create"): _key_create,
    ("keys", "list"): _key_list,
    ("keys", "revoke"): _key_revoke,
}


def print_user(user: User) -> None:
    budget = "none" if user.monthly_budget_nano is None else f"{usd(user.monthly_budget_nano)} USD"
    print(f"user {user.name}  budget={budget}")


def print_key(key: KeyRecord) -> None:
    state = (
        "active"
        if key.usable(dt.datetime.now(dt.UTC).timestamp())
        else ("revoked" if not key.active else "expired")
    )
    parts = [f"key {key.id}  {key.user}/{key.name}  {key.prefix}...  {state}"]
    if key.monthly_budget_nano is not None:
        parts.append(f"budget={usd(key.monthly_budget_nano)} USD")
    for label, value in (("rpm", key.rpm), ("tpm", key.tpm)):
        if value is not None:
            parts.append(f"{label}={value}")
    if key.models:
        parts.append(f"models={','.join(key.models)}")
    if key.expires_at is not None:
        parts.append(f"expires={dt.datetime.fromtimestamp(key.expires_at, dt.UTC):%Y-%m-%dT%H:%MZ}")
    if key.admin:
        parts.append("admin")
    print("  ".join(parts))


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _usd_or_none(text: str) -> Decimal | None:
    return None if text.lower() == "none" else _usd(text)


def _date(text: str) -> float:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
