"""``stratavore events`` (what happened, and the deliveries that gave up) and ``notify`` (the
channels events are delivered to)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from supervisor.api.client import ApiClient
from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.output import (
    ExitStatus,
    Json,
    UsageError,
    parse_ts,
    print_json,
    render_table,
)
from supervisor.cli.remote import connect

FOLLOW_INTERVAL_S = 1.0


# --- events -----------------------------------------------------------------------------
def cmd_events(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.action == "dead":
        return print_dead(api.get("/api/v1/notify/dead"), args.json)
    if args.action == "retry":
        if args.id is None:
            raise UsageError(
                "events retry takes the ID of a dead letter (`events dead` lists them)"
            )
        api.request("POST", f"/api/v1/notify/dead/{args.id}/retry")
        print(f"delivery {args.id} is queued again")
        return ExitStatus.OK
    if args.id is not None:
        raise UsageError(f"unexpected argument {args.id} (did you mean `events retry {args.id}`?)")
    if args.since is None:
        events = api.get("/api/v1/events", last=args.last)
    else:
        events = api.get("/api/v1/events", since=args.since, limit=args.last)
    if args.json and not args.follow:
        print_json(events)
        return ExitStatus.OK
    print_events(events, args.json)
    while args.follow:
        time.sleep(FOLLOW_INTERVAL_S)
        since = events[-1]["id"] if events else (args.since or 0)
        new = api.get("/api/v1/events", since=since, limit=1000)
        if new:
            print_events(new, args.json, header=False)
            events = new
    return ExitStatus.OK


def events_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument(
        "action",
        nargs="?",
        choices=("list", "dead", "retry"),
        default="list",
        help="list (default), dead: deliveries that gave up, retry ID: try one again",
    )
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="the dead letter to retry")
    p.add_argument("--since", type=int, metavar="ID", help="only events after this id")
    p.add_argument(
        "--last", type=int, default=100, metavar="N", help="at most N events (default 100)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")


def print_events(events: list[Json], as_json: bool, header: bool = True) -> None:
    if as_json:  # following: one object per line, so a reader can stream them
        for event in events:
            print(json.dumps(event), flush=True)
        return
    if not events:
        if header:
            print("no events", flush=True)
        return
    rows = [
        [
            e["id"],
            parse_ts(e["ts"]).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            e["severity"],
            e["type"],
            e["title"],
        ]
        for e in events
    ]
    table = render_table(
        ["ID", "TIME", "SEVERITY", "TYPE", "TITLE"], rows, right={"ID"}, fit={"TITLE"}
    )
    print(table if header else "\n".join(table.splitlines()[1:]), flush=True)


def print_dead(dead: list[Json], as_json: bool) -> int:
    if as_json:
        print_json(dead)
    elif not dead:
        print("no dead letters")
    else:
        rows = [[d["id"], d["channel"], d["event_id"], d["attempts"], d["title"], d["error"]]
                for d in dead]  # fmt: skip
        headers = ["ID", "CHANNEL", "EVENT", "TRIES", "TITLE", "ERROR"]
        print(render_table(headers, rows, right={"ID", "EVENT", "TRIES"}, fit={"TITLE", "ERROR"}))
    return ExitStatus.OK


# --- notification channels --------------------------------------------------------------
def cmd_notify(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.action == "channels":
        channels = api.get("/api/v1/notify/channels")
        if args.json:
            print_json(channels)
        elif not channels:
            print("no channels (`stratavore notify add webhook NAME --url URL` adds one)")
        else:
            rows = [[c["name"], c["kind"], channel_target(c), ", ".join(c["policy"]["types"])]
                    for c in channels]  # fmt: skip
            print(render_table(["NAME", "KIND", "TARGET", "EVENTS"], rows, fit={"EVENTS"}))
        return ExitStatus.OK
    if args.action == "add":
        return notify_add(api, args)
    names = args.names
    if args.action == "rm":
        if len(names) != 1:
            raise UsageError("notify rm takes one channel NAME")
        api.request("DELETE", f"/api/v1/notify/channels/{names[0]}")
        print(f"removed channel {names[0]} and its secret")
        return ExitStatus.OK
    # test: the named channels, or all of them
    names = names or [c["name"] for c in api.get("/api/v1/notify/channels")]
    if not names:
        raise UsageError("there are no channels to test; `stratavore notify add` adds one")
    worst = ExitStatus.OK
    for name in names:
        result = api.post(f"/api/v1/notify/channels/{name}/test")
        print(
            f"{name}: {result['result']}" + (f" ({result['reason']})" if result["reason"] else "")
        )
        if result["result"] != "delivered":
            worst = ExitStatus.ERROR
    return worst


def notify_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("action", choices=("channels", "add", "rm", "test"))
    p.add_argument("names", nargs="*", metavar="ARG", help="add: KIND NAME; rm, test: NAME")
    p.add_argument("--chat-id", metavar="ID", help="telegram: the chat to post to")
    p.add_argument("--server", metavar="URL", help="ntfy: the server (default https://ntfy.sh)")
    p.add_argument("--topic", metavar="TOPIC", help="ntfy: the topic")
    p.add_argument("--url", metavar="URL", help="webhook: where to POST")
    p.add_argument(
        "--secret",
        action="store_true",
        help="ntfy/webhook: read an access token / signing secret from a prompt or stdin",
    )
    p.add_argument("--events", metavar="TYPES", help="event types, e.g. 'runner.failed,budget.*'")
    p.add_argument("--min-severity", choices=("debug", "info", "warning", "error", "critical"))
    p.add_argument("--quiet-hours", metavar="HH:MM-HH:MM", help="hold non-errors in these hours")


def channel_target(channel: Json) -> str:
    config = channel["config"]
    if channel["kind"] == "telegram":
        return f"chat {config.get('chat_id')}"
    if channel["kind"] == "ntfy":
        return f"{config.get('server', 'https://ntfy.sh')}/{config.get('topic')}"
    return str(config.get("url", "-"))


def notify_add(api: ApiClient, args: argparse.Namespace) -> int:
    """``notify add KIND NAME [settings]``; a secret comes from a prompt or stdin only."""
    if len(args.names) != 2:
        raise UsageError("notify add takes KIND and NAME, e.g. `notify add webhook ops --url URL`")
    kind, name = args.names
    config = {key: value for key, value in (
        ("chat_id", args.chat_id), ("server", args.server), ("topic", args.topic),
        ("url", args.url),
    ) if value is not None}  # fmt: skip
    rules: dict[str, Any] = {}
    if args.events:
        rules["types"] = [t.strip() for t in args.events.split(",") if t.strip()]
    if args.min_severity:
        rules["min_severity"] = args.min_severity
    if args.quiet_hours:
        rules["quiet_hours"] = args.quiet_hours
    secret = read_secret(kind) if kind == "telegram" or args.secret else None
    body = {"kind": kind, "config": config, "policy": rules or None, "secret": secret}
    channel = api.request("PUT", f"/api/v1/notify/channels/{name}", body=body)
    stored = " (its secret is in the OS keyring)" if secret else ""
    print(f"channel {channel['name']}: {channel['kind']} to {channel_target(channel)}{stored}")
    return ExitStatus.OK


def read_secret(kind: str) -> str:
    """The channel's secret from a hidden prompt, or the first line of stdin: never argv."""
    what = "bot token" if kind == "telegram" else "secret"
    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass(f"{kind} {what}: ")
    else:
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise UsageError(f"no {what} given (type it at the prompt, or pipe it on stdin)")
    return secret


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "events": (cmd_events, events_arguments),
    "notify": (cmd_notify, notify_arguments),
}
