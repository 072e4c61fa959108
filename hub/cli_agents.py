"""`kefu agent create|passwd|list|deactivate`: manage agents from the command line (the
database of `DATABASE_URL` / config.yaml, migrated first). A new password or deactivation
revokes the agent's login tokens at once (hub.store.sessions)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hub.ops.files import private_dir
from hub.ops.settings import load_settings

if TYPE_CHECKING:
    from hub.store import Store

MIN_PASSWORD = 8  # as the admin API asks


def _with_store(args: argparse.Namespace, work: Callable[[Store], Awaitable[int]]) -> int:
    """`work(store)` on the configured database, migrated first; its exit status."""
    from hub.store import Database, Store, migrate

    settings = load_settings(args.config)
    private_dir(settings.data_dir)  # as every kefu command: the data folder is owner-only

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            await migrate(db)
            return await work(Store(db))
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_create(args: argparse.Namespace) -> int:
    from hub.core.auth import ROLES, hash_password

    if args.role not in ROLES:
        print(f"role must be one of {', '.join(ROLES)}", file=sys.stderr)
        return 2

    async def create(store: Store) -> int:
        if await store.agent_by_email(args.email):
            print(f"an agent with email {args.email} already exists", file=sys.stderr)
            return 1
        agent = await store.create_agent(
            args.email,
            args.name or args.email.split("@")[0],
            hash_password(args.password),
            role=args.role,
            teams=args.team or [],
        )
        print(f"agent {agent.id} created: {agent.email} ({agent.role})")
        return 0

    return _with_store(args, create)


def _new_password(given: str | None) -> str | None:
    """--password, else asked for twice on a terminal, else one line of stdin; None (said
    why) when it is unusable."""
    if given is None and sys.stdin.isatty():
        given = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != given:
            print("the two passwords differ", file=sys.stderr)
            return None
    elif given is None:
        given = sys.stdin.readline().rstrip("\r\n")
    if len(given) < MIN_PASSWORD:
        print(f"the password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return given


def cmd_passwd(args: argparse.Namespace) -> int:
    from hub.core.auth import hash_password

    password = _new_password(args.password)
    if password is None:
        return 2

    async def passwd(store: Store) -> int:
        agent = await store.agent_by_email(args.email)
        if agent is None or agent.id is None:
            print(f"no agent with email {args.email}", file=sys.stderr)
            return 1
        await store.update_agent(agent.id, password_hash=hash_password(password))
        await store.audit("cli", "agent.updated", agent_id=agent.id, changed=["password"])
        print(f"password of {agent.email} changed; their earlier logins are signed out")
        return 0

    return _with_store(args, passwd)


def cmd_list(args: argparse.Namespace) -> int:
    async def show(store: Store) -> int:
        rows = [("ID", "EMAIL", "NAME", "ROLE", "TEAMS", "ACTIVE")]
        for a in await store.list_agents():
            teams = ",".join(a.teams) or "-"
            rows.append((str(a.id), a.email, a.name, a.role, teams, "yes" if a.active else "no"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return 0

    return _with_store(args, show)


def cmd_deactivate(args: argparse.Namespace) -> int:
    from hub.store import LastAdminError

    async def deactivate(store: Store) -> int:
        agent = await store.agent_by_email(args.email)
        if agent is None or agent.id is None:
            print(f"no agent with email {args.email}", file=sys.stderr)
            return 1
        if not agent.active:
            print(f"{agent.email} is already deactivated")
            return 0
        try:
            await store.update_agent(agent.id, active=False)
        except LastAdminError as e:
            print(f"{e}: make another agent admin first", file=sys.stderr)
            return 1
        await store.audit("cli", "agent.updated", agent_id=agent.id, changed=["active"])
        print(f"{agent.email} deactivated; their logins are signed out")
        return 0

    return _with_store(args, deactivate)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`kefu agent ...` under the `kefu` parser's subcommands."""
    agent = sub.add_parser("agent", help="manage agents")
    commands = agent.add_subparsers(dest="agent_command", required=True)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        parser.set_defaults(func=func)
        parser.add_argument("--config", default=argparse.SUPPRESS, help="config file")
        return parser

    create = command("create", cmd_create, "create an agent")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name")
    create.add_argument("--role", default="agent", help="admin, agent or designer")
    create.add_argument("--team", action="append", help="team name (repeatable)")
    passwd = command(
        "passwd", cmd_passwd, "set an agent's password (their earlier logins are signed out)"
    )
    passwd.add_argument("--email", required=True)
    passwd.add_argument(
        "--password", help="the new password (default: asked on a terminal, else read from stdin)"
    )
    command("list", cmd_list, "list the agents: id, email, name, role, teams, active")
    deactivate = command(
        "deactivate", cmd_deactivate, "deactivate an agent (their logins stop working at once)"
    )
    deactivate.add_argument("--email", required=True)
