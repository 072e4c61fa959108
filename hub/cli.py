"""`kefu`: run the hub, train and check the bot, manage agents (`python -m hub` is the same)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.cli_agents import add_commands as add_agent_commands
from hub.features.automations.rules import AutomationError
from hub.ops.files import private_dir
from hub.ops.settings import Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    settings = load_settings(args.config)
    private_dir(settings.data_dir)  # made owner-only before anything writes into it
    if getattr(args, "bot", None):
        overrides["bot"] = settings.bot.model_copy(update={"path": Path(args.bot)})
    return settings.model_copy(update=overrides) if overrides else settings


async def _migrate(settings: Settings) -> None:
    from hub.store import Database, migrate

    db = Database(settings.database_url)
    try:
        await migrate(db)
    finally:
        await db.close()


async def _demo_admin(settings: Settings) -> None:
    """On an empty database, create an admin and print the password this once."""
    from hub.core.auth import hash_password
    from hub.store import Database, Store

    db = Database(settings.database_url)
    try:
        store = Store(db)
        if await store.count_agents() == 0:
            password = secrets.token_urlsafe(12)
            await store.create_agent(
                "admin@example.com", "Demo Admin", hash_password(password), role="admin"
            )
            print(
                "\n  Demo admin created (shown only this once):\n"
                f"    email:    admin@example.com\n    password: {password}\n",
                flush=True,
            )
    finally:
        await db.close()


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.ops.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_format)
    from hub.app import create_app  # after: it logs as it loads
    from hub.bot import train_classifier

    asyncio.run(_migrate(settings))
    classifier = train_classifier(settings)
    asyncio.run(_demo_admin(settings))
    app = create_app(settings, classifier=classifier)
    print(f"Kefu Hub on http://{args.host}:{args.port}  (bot: {settings.bot.path})", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        log_config=None,  # uvicorn's loggers, the access log too, go through configure_logging
        # X-Forwarded-For is believed from `trusted_proxies` only, inside the app
        # (hub/ops/proxies.py):
        # not from uvicorn's default (127.0.0.1, FORWARDED_ALLOW_IPS)
        proxy_headers=False,
        ws_max_size=1_000_000,
        # on SIGTERM: requests under way get this long, then Hub.stop as long again for the
        # messages still being handled
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace)),
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    asyncio.run(_migrate(_settings(args)))
    print("database schema is up to date")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hub.bot import ensure_classifier, model_dir

    settings = _settings(args)
    classifier, trained = ensure_classifier(settings, force=args.force)
    where = model_dir(settings)
    if trained:
        seconds = classifier.metadata["training_seconds"]
        print(f"trained {len(classifier.intents)} intents in {seconds:.1f} s -> {where}")
    else:
        print(f"{where} is up to date (same NLU data and settings); --force retrains")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check the whole bot folder: NLU data, flows (schema, regexes, templates, slots, goto
    targets, intents, actions), actions.py, the conversation tests and the automation rules
    (schema, regexes, times, channels, intents); every problem printed
    as `path:line:column: what is wrong`. Exit 1 when there is any. Warnings (an ask waiting
    for an entity nothing extracts, NLU data warnings) are printed as `path:line:column:
    warning: what` and don't fail the check."""
    from flows.checks import as_warning, check_entities
    from flows.convtest import ConversationTestError, load_tests
    from hub.bot import read_bot
    from hub.features.automations.rules import AutomationError, load_bot_automations

    settings = _settings(args)
    files = read_bot(settings)
    errors = list(files.errors)
    automations = []
    try:
        automations = load_bot_automations(settings, files.data.intents if files.data else None)
    except AutomationError as e:
        errors += e.errors
    tests = []
    try:
        tests = load_tests(settings.bot.path / "tests")
    except ConversationTestError as e:
        errors += e.errors
    # warnings (path:line:column: warning: what) don't fail the check
    warnings = [as_warning(w) for w in files.data.warnings] if files.data else []
    warnings += check_entities(files.flows, files.data)
    for error in errors + warnings:
        print(error)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    intents = len(files.data.intents) if files.data else 0
    actions = files.actions.names() if files.actions else set()
    print(
        f"ok: {len(files.flows)} flows, {intents} intents, "
        f"{len(actions) if actions is not None else 'server'} actions, "
        f"{len(tests)} conversation tests, {len(automations)} automations"
        + (f", {len(warnings)} warning(s)" if warnings else "")
    )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Run the bot's conversation tests (`<bot>/tests/*.yml`, format in flows/convtest.py,
    runner in hub/testing/convtest.py) against a hub in memory: SQLite in a temporary folder
    and only the in-memory channel, whatever the config names; the NLU model is the saved one
    when up to date (as `kefu train` leaves it).
    `-k TEXT` runs only the tests whose name contains TEXT (ignoring case).

    Exit status: 0 when every test passed (and at least one ran); 1 when a test failed, or when
    there was no test to run (none in the folder, or none matching -k); 2 when a test, flow or
    NLU file is invalid (every error printed as `path:line:column: what is wrong`) or the
    configuration is."""
    from flows import FlowError
    from flows.convtest import ConversationTestError, load_tests
    from hub.bot import train_classifier
    from hub.testing.convtest import format_result, run_tests, summary
    from nlu import NluDataError

    settings = _settings(args)
    folder = settings.bot.path / "tests"
    try:
        tests = load_tests(folder)
    except ConversationTestError as e:
        for error in e.errors:
            print(error)
        print(f"{len(e.errors)} error(s)", file=sys.stderr)
        return 2
    if args.k:
        tests = [t for t in tests if args.k.lower() in t.name.lower()]
    if not tests:
        matching = f" matching -k {args.k!r}" if args.k else ""
        print(f"no conversation tests in {folder}{matching}", file=sys.stderr)
        return 1
    color = sys.stdout.isatty()
    try:
        classifier = train_classifier(settings)
        results = asyncio.run(
            run_tests(
                settings, tests, classifier, on_result=lambda r: print(format_result(r, color))
            )
        )
    except (FlowError, NluDataError) as e:
        for error in e.errors:
            print(error)
        print(f"{len(e.errors)} error(s) in the bot's files", file=sys.stderr)
        return 2
    print(summary(results))
    return 0 if all(r.passed for r in results) else 1


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to the bot in the terminal; beside each answer, what the bot understood (intent,
    confidence, entities) and the flow step that said it."""
    from hub.testing import TestBot

    settings = _settings(args)

    async def chat() -> None:
        async with TestBot.running(settings) as bot:
            print("Talk to the bot (Ctrl-D to leave). /human asks for a person.")
            seen = 0
            while True:
                try:
                    line = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    return
                if not line.strip():
                    continue
                await bot.say(line)
                store = bot.hub.store
                messages = await store.messages(await bot.conversation_id(), seen, 1000)
                for message in messages:
                    seen = max(seen, message.id or 0)
                    print(_chat_line(message.sender_type, message.text, message.payload))
                conversation = await store.get_conversation(await bot.conversation_id())
                waiting = [f for f in conversation.flow_state.get("frames", []) if f]
                if conversation.status != "bot":
                    print(f"        · conversation {conversation.status}: a human has it")
                elif waiting:
                    print(f"        · waiting in flow {waiting[-1]['flow']}")

    asyncio.run(chat())
    return 0


def _chat_line(sender: str, text: str, payload: dict[str, Any]) -> str:
    """One message as `kefu chat` shows it, with what the hub knows about it."""
    if sender == "contact":
        nlu = payload.get("nlu") or {}
        intent = nlu.get("intent") or "(none: out of scope or unsure)"
        entities = ", ".join(f"{e.get('entity')}={e.get('value')}" for e in nlu.get("entities", []))
        extra = f", {entities}" if entities else ""
        line = f"        · intent {intent} {nlu.get('confidence', 0):.2f}{extra}"
        turn = payload.get("turn")
        if turn:  # the arbiter's decision (hub/core/arbiter.py) and why
            line += f"\n        · {turn.get('decision')}: {turn.get('reason')}"
        return line
    lines = [f"{sender}> {text}"]
    for button in payload.get("buttons", []):
        lines.append(f"        [{button['title']}] -> {button['payload']}")
    step = payload.get("bot") or {}
    if "flow" in step:
        lines.append(f"        · flow {step['flow']} › {step.get('step')}")
    elif "knowledge" in step:
        lines.append(f"        · knowledge {step['knowledge']} ({step.get('score')})")
    return "\n".join(lines)


def cmd_backup(args: argparse.Namespace) -> int:
    from hub.ops.backup import BackupError, backup

    try:
        path = backup(_settings(args), Path(args.output) if args.output else None)
    except BackupError as e:
        print(f"backup failed: {e}", file=sys.stderr)
        return 1
    print(f"backup written to {path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from hub.ops.backup import BackupError, restore

    try:
        print(restore(_settings(args), Path(args.file), force=args.force))
    except BackupError as e:
        print(f"restore failed: {e}", file=sys.stderr)
        return 1
    return 0


def _when(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T08:00+08:00"
        ) from None


def cmd_nlu_review(args: argparse.Namespace) -> int:
    """The examples designers labeled, as Rasa NLU YAML to commit into the bot folder (see
    hub/features/nlu_review/review.py); `--unlabeled` adds the messages still waiting, as
    comments."""
    from hub.features.nlu_review.review import export
    from hub.features.reports.summary import BadWindow
    from hub.messages import utcnow

    settings = _settings(args)
    asyncio.run(_migrate(settings))
    try:
        text = asyncio.run(
            export(settings, args.since, args.until, unlabeled=args.unlabeled, now=utcnow())
        )
    except BadWindow as e:
        print(f"kefu nlu review: {e}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


BENCHMARKS = {
    "nlu": "bench/nlu_bench.py",
    "rest": "bench/rest_bench.py",
    "knowledge": "bench/knowledge_bench.py",
    "load": "bench/load_bench.py",
    "dialogues": "bench/dialogues_bench.py",
}


def cmd_bench(args: argparse.Namespace) -> int:
    import runpy

    rest = list(args.rest)
    parts = [rest.pop(0)] if rest and rest[0] in (*BENCHMARKS, "all") else ["all"]
    if parts == ["all"]:
        parts = list(BENCHMARKS)
    for part in parts:
        script = Path(BENCHMARKS[part])
        if not script.exists():
            print(f"kefu bench runs from the repository root ({script})", file=sys.stderr)
            return 2
        sys.argv = [str(script), *rest]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as e:
            if e.code:
                return int(e.code) if isinstance(e.code, int) else 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kefu", description="Kefu Hub customer-service hub")
    p.add_argument("--config", help="config file (default: $KEFU_CONFIG or ./config.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, help: str, bot: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(func=func)
        sp.add_argument("--config", default=argparse.SUPPRESS, help="config file")
        if bot:
            sp.add_argument("--bot", help="bot folder (overrides bot.path)")
        return sp

    run = command("run", cmd_run, "migrate, train if needed, and serve")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    command("migrate", cmd_migrate, "apply database migrations", bot=False)
    train = command("train", cmd_train, "train the bot's NLU model if its data or settings changed")
    train.add_argument("--force", action="store_true", help="train even when up to date")
    command("check", cmd_check, "validate the bot folder; exit 1 on any error")
    test = command("test", cmd_test, "run the bot's conversation tests; exit 0 only if all pass")
    test.add_argument("-k", metavar="TEXT", help="only the tests whose name contains TEXT")
    command("chat", cmd_chat, "talk to the bot in the terminal")
    add_agent_commands(sub)  # kefu agent create|passwd|list|deactivate
    backup = command("backup", cmd_backup, "archive the database and media", bot=False)
    backup.add_argument("--output", metavar="FILE", help="default: data/backups/kefu-<time>.tar.gz")
    restore = command("restore", cmd_restore, "restore a `kefu backup` archive", bot=False)
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--force", action="store_true", help="replace a database in use")
    nlu = sub.add_parser("nlu", help="the bot's NLU training data")
    nlu_sub = nlu.add_subparsers(dest="nlu_command", required=True)
    review = nlu_sub.add_parser(
        "review", help="print the labeled examples as Rasa NLU YAML, to commit into the bot"
    )
    review.set_defaults(func=cmd_nlu_review)
    review.add_argument("--config", default=argparse.SUPPRESS)
    review.add_argument("--output", metavar="FILE", help="write the YAML here (default: stdout)")
    review.add_argument(
        "--unlabeled",
        action="store_true",
        help="add the unrecognized messages nobody labeled, as comments",
    )
    review.add_argument(
        "--since", type=_when, help="examples labeled since; messages of conversations since"
    )
    review.add_argument("--until", type=_when, help="the same, before this time")
    bench_help = (
        "run the benchmarks: `kefu bench [nlu|rest|knowledge|load|dialogues] [its options]`"
    )
    bench = sub.add_parser("bench", help=bench_help, description=bench_help, add_help=False)
    bench.set_defaults(func=cmd_bench)  # every option, --help too, goes to the benchmark
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    p = parser()
    args, extra = p.parse_known_args(argv)
    if args.command == "bench":
        args.rest = extra  # e.g. `kefu bench --duration 5`
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except SettingsError as e:
        print(f"configuration error:\n{e}", file=sys.stderr)
        return 2
    except AutomationError as e:  # at start (kefu run): the bot's automation rules
        print("\n".join(e.errors), file=sys.stderr)
        print(f"{len(e.errors)} error(s) in the automation rules", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
