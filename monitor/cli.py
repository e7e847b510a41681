"""The `contact-monitor` command line: parses arguments and wires the pieces; no logic."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import phonenumbers

from monitor.charset import decode_page
from monitor.config import Defaults, Registry, Source, parse_duration
from monitor.daemon import Daemon, parse_listen
from monitor.extract import extract_contacts, looks_like_html
from monitor.history import History, HistoryUnavailable
from monitor.loader import (
    RegistryInvalid,
    check_registry,
    default_config_path,
    load_registry,
    registry_base,
)
from monitor.logs import configure_logging
from monitor.probers import probe_context, probe_source
from monitor.report import (
    check_json,
    check_table,
    contacts_table,
    findings_table,
    incidents_table,
)
from monitor.rounds import Round, UnknownChannel, run_round, select_channels
from monitor.sharding import shard_from
from monitor.suggest import suggest_changes, write_changes
from monitor.webconfig import WebConfigInvalid, load_web_config

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
MAX_LOCAL_FILE_BYTES = 64 * 1024 * 1024
# `www.example.org` or `example.org/contacts`: a web address without its scheme.
_FILE_SUFFIXES = {".html", ".htm", ".xhtml", ".txt", ".text", ".md"}
_HOST_LIKE = re.compile(r"(?i)(?:[a-z0-9-]+\.)+[a-z]{2,63}(?::\d+)?(?:/\S*)?")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except RegistryInvalid as invalid:
        for issue in sorted(invalid.issues + invalid.warnings, key=lambda i: (i.file, i.line or 0)):
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    except (UnknownChannel, _UsageError) as exc:
        for line in str(exc).splitlines() or [""]:  # one line per problem (web config)
            print(f"contact-monitor: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contact-monitor",
        description="Keeps published support contacts honest: probes, page scans, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="the daemon: scheduled probes, /metrics, API")
    _config_option(run)
    run.add_argument(
        "--listen",
        default="127.0.0.1:9099",
        metavar="HOST:PORT",
        help="address for /metrics and the API (default 127.0.0.1:9099)",
    )
    run.add_argument(
        "--web-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TLS and basic auth for every endpoint (Prometheus exporter web config format)",
    )
    run.add_argument(
        "--shard",
        default=None,
        metavar="INDEX/COUNT",
        help="probe only this shard's channels (also $CONTACT_MONITOR_SHARD, or a StatefulSet "
        "ordinal with $CONTACT_MONITOR_SHARDS)",
    )
    run.add_argument(
        "--location",
        default=os.environ.get("CONTACT_MONITOR_LOCATION"),
        metavar="NAME",
        help="add location=NAME to every probe result (also $CONTACT_MONITOR_LOCATION)",
    )
    run.add_argument(
        "--history-db",
        type=Path,
        default=None,
        metavar="PATH",
        help="SQLite history file (default: defaults.history.path of the registry)",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="debug adds one event per probe",
    )
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="load and validate the registry")
    _config_option(validate)
    validate.set_defaults(handler=_validate)

    check = commands.add_parser("check", help="probe every (or the named) channel once, now")
    _config_option(check)
    check.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="ID",
        help="probe only this channel (ID or ORG/ID); repeatable",
    )
    _format_option(check)
    check.set_defaults(handler=_check)

    extract = commands.add_parser("extract", help="contacts published on a URL or a local file")
    extract.add_argument("source", metavar="SOURCE", help="http(s) URL, or a path to HTML/text")
    extract.add_argument("--region", default="RU", help="region for numbers without +code")
    _format_option(extract)
    extract.set_defaults(handler=_extract)

    drift = commands.add_parser("drift", help="scan every source page and print the findings")
    _config_option(drift)
    _format_option(drift)
    drift.add_argument(
        "--suggest",
        action="store_true",
        help="print the registry change that would settle the findings, as a unified diff",
    )
    drift.add_argument(
        "--write", action="store_true", help="with --suggest: apply the change to the registry"
    )
    drift.set_defaults(handler=_drift)

    history = commands.add_parser("history", help="incidents recorded by the daemon")
    _config_option(history)
    history.add_argument("--channel", default=None, metavar="ID", help="ID or ORG/ID")
    history.add_argument(
        "--since", default="7d", metavar="DURATION", help="how far back, e.g. 24h, 7d (default 7d)"
    )
    history.add_argument(
        "--history-db",
        type=Path,
        default=None,
        metavar="PATH",
        help="SQLite history file (default: defaults.history.path)",
    )
    _format_option(history)
    history.set_defaults(handler=_history)

    demo = commands.add_parser(
        "demo", help="every state at once: loopback pages and servers, a generated registry"
    )
    demo.add_argument(
        "--listen",
        default="127.0.0.1:9099",
        metavar="HOST:PORT",
        help="address for the status page, /metrics and the API (default 127.0.0.1:9099)",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the registry, CA and history here (default: a temporary folder)",
    )
    demo.set_defaults(handler=_demo)

    schema = commands.add_parser("schema", help="print the JSON Schema of the registry file")
    schema.set_defaults(handler=_schema)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("contact-monitor")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="P",
        help="registry file, or a directory whose *.yaml files are one registry "
        "(default: $CONTACT_MONITOR_CONFIG, else config/channels.yaml)",
    )


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _registry(args: argparse.Namespace) -> tuple[Registry, Path]:
    path = args.config or default_config_path()
    return load_registry(path), registry_base(path)


def _run(args: argparse.Namespace) -> int:
    try:
        listen = parse_listen(args.listen)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    try:
        web = load_web_config(args.web_config) if args.web_config else None
        shard = shard_from(args.shard)
    except (WebConfigInvalid, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    if args.location is not None and not re.fullmatch(r"[\w.-]{1,64}", args.location):
        raise _UsageError(f"invalid --location {args.location!r}: letters, digits, . _ -")
    configure_logging(args.log_level)
    daemon = Daemon(
        args.config or default_config_path(), listen, args.history_db, web, shard, args.location
    )
    try:
        return asyncio.run(daemon.run())
    except OSError as exc:
        print(
            f"contact-monitor: cannot listen on {args.listen}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS


def _demo(args: argparse.Namespace) -> int:
    try:
        listen = parse_listen(args.listen)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    try:
        from monitor.demo import run_demo
    except ImportError as exc:  # trustme is the demo's, not the daemon's
        raise _UsageError(
            f"the demo needs {exc.name}: pip install 'contact-monitor[demo]'"
        ) from None
    configure_logging("info")
    try:
        return run_demo(listen, args.dir)
    except OSError as exc:
        print(f"contact-monitor: demo cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS


def _validate(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    registry, warnings = check_registry(path)
    for warning in warnings:  # worth a look, but the registry is usable: exit 0
        print(warning, file=sys.stderr)
    channels = sum(len(org.channels) for org in registry.organizations)
    sources = sum(len(org.sources) for org in registry.organizations)
    print(
        f"{path}: valid ({len(registry.organizations)} organizations, "
        f"{channels} channels, {sources} sources)"
    )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    registry, base = _registry(args)
    channels = select_channels(registry, args.channel)
    with _progress() as progress:
        round_ = asyncio.run(run_round(registry, base, channels, progress=progress))
    if args.channel:  # findings about channels that were not asked for are noise here
        wanted = {(org, c.id) for org, c in channels}
        round_.findings = [f for f in round_.findings if (f.org, f.channel) in wanted]
    _emit(args.format, check_json(round_), lambda: check_table(round_))
    return EXIT_PROBLEMS if _has_problems(round_) else EXIT_OK


def _has_problems(round_: Round) -> bool:
    # success None measured nothing (a numbering check, a skipped call): only an invalid
    # number is a problem there, never "not dialled". A failure inside a maintenance
    # window is planned work, and one outside the channel's hours is expected, as the
    # daemon's alerts take them.
    down = any(
        r.result.success is False
        for r in round_.results
        if r.channel.status == "active" and not r.in_maintenance and r.closed is None
    )
    invalid = any(r.result.details.get("number_valid") is False for r in round_.results)
    invalid |= any(r.result.reason == "deprecated_reachable" for r in round_.results)
    published = any(f.type == "deprecated_published" for f in round_.findings)
    return down or invalid or published


def _drift(args: argparse.Namespace) -> int:
    if args.write and not args.suggest:
        raise _UsageError("--write applies a suggestion: use it with --suggest")
    registry, base = _registry(args)
    with _progress() as progress:
        round_ = asyncio.run(run_round(registry, base, [], progress=progress))
    if args.suggest:
        _suggest(args, registry, round_)
        return EXIT_PROBLEMS if round_.findings else EXIT_OK
    _emit(
        args.format,
        {"findings": [f.to_json() for f in round_.findings]},
        lambda: findings_table(round_.findings),
    )
    return EXIT_PROBLEMS if round_.findings else EXIT_OK


def _suggest(args: argparse.Namespace, registry: Registry, round_: Round) -> None:
    path = args.config or default_config_path()
    suggestion = suggest_changes(path, registry, round_.findings, round_.scans)
    if args.write and suggestion.files:
        write_changes(suggestion, path)  # RegistryInvalid (exit 2) if it would not validate
    data = {
        "findings": [f.to_json() for f in round_.findings],
        "diff": suggestion.diff(),
        "unsettled": suggestion.unsettled,
        "written": sorted(str(p) for p in suggestion.files) if args.write else [],
    }
    if args.format == "json":
        _emit(args.format, data, suggestion.diff)
    else:  # stdout stays a clean diff for `patch -p0`; the rest goes to stderr
        sys.stdout.write(data["diff"])
        for line in suggestion.unsettled:
            print(f"unsettled: {line}", file=sys.stderr)
        if not suggestion.files:
            print("no registry change to suggest", file=sys.stderr)
        for file in data["written"]:
            print(f"wrote {file}", file=sys.stderr)


def _extract(args: argparse.Namespace) -> int:
    if args.region not in phonenumbers.SUPPORTED_REGIONS:  # the same words as `validate`
        raise _UsageError(f"unknown region {args.region!r}: use an ISO 3166 code such as RU")
    if args.source.startswith(("http://", "https://")):
        contacts = asyncio.run(_extract_url(args.source, args.region))
    else:
        contacts = _extract_file(Path(args.source), args.region)
    _emit(args.format, contacts.to_json(), lambda: contacts_table(contacts))
    return EXIT_OK


async def _extract_url(url: str, region: str) -> Any:
    try:
        source = Source(id="cli", url=url, region=region)
    except ValueError as exc:
        raise _UsageError(f"invalid URL {url!r}") from exc
    async with probe_context(Defaults(), Path.cwd()) as ctx:
        result = await probe_source(source, ctx)
    if not result.success or result.contacts is None:
        raise _UsageError(f"cannot read {url}: {result.reason}: {result.message}")
    if result.details.get("truncated"):
        read = result.details.get("body_bytes", 0)
        print(f"note: only the page's first {read} bytes were read", file=sys.stderr)
    return result.contacts


def _extract_file(path: Path, region: str) -> Any:
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_LOCAL_FILE_BYTES + 1)
    except OSError as exc:
        hint = ""
        looks_like_file = path.suffix.lower() in _FILE_SUFFIXES
        if not path.exists() and not looks_like_file and _HOST_LIKE.fullmatch(str(path)):
            hint = f"; for a web page, add https:// (https://{path})"
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}{hint}") from None
    if len(body) > MAX_LOCAL_FILE_BYTES:
        raise _UsageError(f"{path} is larger than {MAX_LOCAL_FILE_BYTES // 2**20} MiB")
    text = decode_page(body)
    is_html = path.suffix.lower() in (".html", ".htm", ".xhtml") or looks_like_html(text)
    return extract_contacts(text, region, html=is_html)


def _history(args: argparse.Namespace) -> int:
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    path = args.history_db
    org = channel = None
    timezone = "UTC"  # the registry's zone when there is a registry to read it from
    if path is None or args.channel:
        registry, base = _registry(args)
        path = path or base / registry.defaults.history.path
        timezone = registry.defaults.timezone
        if args.channel:
            org, channel = _history_channel(registry, args.channel)
    else:
        timezone = _registry_zone(args)

    if not Path(path).is_file():
        raise _UsageError(f"no history at {path}: has the daemon run with this registry?")
    try:
        history = History(Path(path), retention_seconds=float("inf"))
        try:
            incidents = history.incidents(org, channel, since=since, limit=10_000)
        finally:
            history.close()
    except HistoryUnavailable as exc:
        raise _UsageError(f"cannot read the history: {exc}") from None
    if channel is not None and not incidents and not _in_registry(registry, org, channel):
        raise _UsageError(f"no channel {args.channel!r} in the registry or in its history")
    _emit(
        args.format,
        {"incidents": [i.to_json() for i in incidents]},
        lambda: incidents_table(incidents, timezone),
    )
    return EXIT_OK


def _history_channel(registry: Registry, name: str) -> tuple[str | None, str]:
    """(org, channel id) for `history --channel`: the registry's channel, else the id as
    written (`ORG/ID` or `ID`), since a channel removed from the registry keeps its history."""
    try:
        org, found = select_channels(registry, [name])[0]
    except UnknownChannel:
        org_part, _, ident = name.rpartition("/")
        return org_part or None, ident
    return org, found.id


def _in_registry(registry: Registry, org: str | None, channel: str) -> bool:
    return any(
        c.id == channel and org in (None, o.id) for o in registry.organizations for c in o.channels
    )


def _registry_zone(args: argparse.Namespace) -> str:
    """The registry's timezone when the registry loads, else UTC (history needs no registry)."""
    try:
        return _registry(args)[0].defaults.timezone
    except RegistryInvalid:
        return "UTC"


def _schema(args: argparse.Namespace) -> int:

    print(json.dumps(registry_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def registry_schema() -> dict[str, Any]:
    schema = Registry.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "contact-monitor registry",
        **schema,
    }


def _emit(fmt: str, data: dict[str, Any], render_table: Callable[[], str]) -> None:
    if fmt == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(render_table())


class _progress:  # noqa: N801 - used as a context manager, reads as a function
    """A one-line counter on stderr while a long round runs, only on a terminal."""

    def __enter__(self) -> Callable[[int, int], None] | None:
        self.active = sys.stderr.isatty()
        return self._show if self.active else None

    def _show(self, done: int, total: int) -> None:
        print(f"\rprobing {done}/{total}", end="", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
