"""Rules across fields of a registry, read from the raw YAML data so that they run even when
the typed model rejected something else (every error in one run, not one round per fix).

Errors: unique ids (organisations across files too), `published_on`/`replaced_by` naming
existing ids, numbers valid for their region, the CA file present, `interval` not shorter
than `timeout`, `defaults` in one file at most. Warnings: one phone number or e-mail
address on two channels, `replaced_by` on an active channel, a secret's environment variable
(`push.token_env`, `defaults.sip.auth.password_env`) not set.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import phonenumbers

from monitor.config import ENV_NAME, parse_duration
from monitor.phones import canonical, e164

__all__ = ["Problem", "Severity", "registry_problems"]

Key = tuple[str | int, ...]
Severity = Literal["error", "warning"]  # a warning is printed, and the registry still loads
_DEFAULT_REGION = "RU"
_DEFAULT_INTERVAL, _DEFAULT_SOURCE_INTERVAL, _DEFAULT_TIMEOUT = 60.0, 1800.0, 10.0
ENV_NAME_PATTERN = re.compile(ENV_NAME)


@dataclass(frozen=True)
class Problem:
    """One problem: which file (index; None for the registry as a whole), where, what."""

    doc: int | None
    key: Key
    message: str
    severity: Severity = "error"


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _seconds(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError:
        return None  # the model reports the bad duration itself


def registry_problems(
    docs: Sequence[tuple[str, Any]], base: Path, directory: bool
) -> list[Problem]:
    """Every cross-field problem of the files `docs` ((name, data) each) of one registry."""
    problems: list[Problem] = []
    with_defaults = [i for i, (_, data) in enumerate(docs) if "defaults" in _map(data)]
    for i in with_defaults[1:]:
        first = docs[with_defaults[0]][0]
        problems.append(Problem(i, ("defaults",), f"defaults are already in {first}"))
    defaults: dict[str, Any] = {}
    if with_defaults:
        defaults = _map(_map(docs[with_defaults[0]][1]).get("defaults"))
        problems += _defaults_problems(with_defaults[0], defaults, base)
    if directory and docs and not any("version" in _map(data) for _, data in docs):
        problems.append(Problem(None, (), "no file says version: 1"))
    problems += _organizations_problems(docs, defaults, directory)
    return problems


def _defaults_problems(doc: int, defaults: dict[str, Any], base: Path) -> list[Problem]:
    problems = []
    variable = _map(_map(defaults.get("sip")).get("auth")).get("password_env")
    key = ("defaults", "sip", "auth", "password_env")
    consequence = "every test call fails with sip_auth_missing"
    problems += [Problem(doc, *rest) for rest in _unset(variable, key, consequence)]
    ca_file = _map(defaults.get("tls")).get("ca_file")
    if isinstance(ca_file, str) and ca_file and not (base / ca_file).is_file():
        problems.append(Problem(doc, ("defaults", "tls", "ca_file"), f"no such file: {ca_file}"))
    elif isinstance(ca_file, str) and ca_file:
        key = ("defaults", "tls", "ca_file")
        problems += [Problem(doc, key, message) for message in _ca_problems(base, ca_file)]
    timeout = _seconds(defaults.get("timeout"), _DEFAULT_TIMEOUT)
    for name, default in (
        ("interval", _DEFAULT_INTERVAL),
        ("source_interval", _DEFAULT_SOURCE_INTERVAL),
    ):
        interval = _seconds(defaults.get(name), default)
        if interval is not None and timeout is not None and interval < timeout:
            key = ("defaults", name if name in defaults else "timeout")
            problems.append(Problem(doc, key, _too_short(interval, timeout)))
    return problems


def _unset(variable: Any, key: Key, consequence: str) -> Iterator[tuple[Any, ...]]:
    """A warning when the environment variable that holds a secret is not set here (it is
    read at use, so the daemon's environment may still differ from `validate`'s)."""
    named = isinstance(variable, str) and ENV_NAME_PATTERN.match(variable)
    if named and not os.environ.get(variable):
        yield key, f"{variable} is not set in this environment: {consequence}", "warning"


def _ca_problems(base: Path, name: str) -> list[str]:
    """A CA bundle the SSL context would refuse (not PEM, no certificate, unreadable)."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(base / name))
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        return [f"cannot load {name} as a PEM CA bundle: {reason}"]
    return []


def _too_short(interval: float, timeout: float) -> str:
    return (
        f"interval {interval:g}s is shorter than timeout {timeout:g}s: "
        "a probe could still be running when the next one is due"
    )


def _organizations_problems(
    docs: Sequence[tuple[str, Any]], defaults: dict[str, Any], directory: bool
) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}  # organisation id -> file it was first seen in
    count = 0
    for doc, (_, data) in enumerate(docs):
        organizations = _map(data).get("organizations")
        if not directory and isinstance(organizations, list) and not organizations:
            problems.append(
                Problem(doc, ("organizations",), "at least one organization is required")
            )
        for i, org in enumerate(_list(organizations)):
            count += 1
            at: Key = ("organizations", i)
            ident = _map(org).get("id")
            if isinstance(ident, str) and ident in seen:
                first = seen[ident]
                where = "" if first == doc else f": also in {docs[first][0]}"
                problems.append(Problem(doc, (*at, "id"), f"duplicate id {ident!r}{where}"))
            elif isinstance(ident, str):
                seen[ident] = doc
            problems += [Problem(doc, key, *rest) for key, *rest in _org(_map(org), at, defaults)]
    if directory and docs and count == 0:
        problems.append(Problem(None, (), "no organization in any file"))
    return problems


def _duplicates(items: list[Any], prefix: Key) -> Iterator[tuple[Key, str]]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        ident = _map(item).get("id")
        if isinstance(ident, str) and ident in seen:
            yield (*prefix, i, "id"), f"duplicate id {ident!r}"
        if isinstance(ident, str):
            seen.add(ident)


def _ids(items: list[Any]) -> set[str]:
    return {i for i in (_map(item).get("id") for item in items) if isinstance(i, str)}


def _org(org: dict[str, Any], at: Key, defaults: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    sources, channels = _list(org.get("sources")), _list(org.get("channels"))
    yield from _duplicates(sources, (*at, "sources"))
    yield from _duplicates(channels, (*at, "channels"))
    source_ids, channel_ids = _ids(sources), _ids(channels)
    name = org.get("id")
    timeout = _seconds(defaults.get("timeout"), _DEFAULT_TIMEOUT)
    source_interval = _seconds(defaults.get("source_interval"), _DEFAULT_SOURCE_INTERVAL)
    for j, source in enumerate(sources):
        yield from _timing(_map(source), (*at, "sources", j), source_interval, timeout)
    interval = _seconds(defaults.get("interval"), _DEFAULT_INTERVAL)
    contacts: dict[str, str] = {}  # canonical phone or address -> first channel with it
    for j, raw in enumerate(channels):
        channel, here = _map(raw), (*at, "channels", j)
        for k, source in enumerate(_list(channel.get("published_on"))):
            if isinstance(source, str) and source not in source_ids:
                yield (*here, "published_on", k), f"no source {source!r} in {name}"
        yield from _replacement(channel, here, channel_ids, name)
        yield from _timing(channel, here, interval, timeout)
        if channel.get("check") == "sip" and not _map(defaults.get("sip")).get("trunk"):
            yield (*here, "check"), "check: sip needs defaults.sip.trunk"
        if channel.get("check") == "push":
            variable = _map(channel.get("push")).get("token_env")
            yield from _unset(variable, (*here, "push", "token_env"), "every push is refused (401)")
        region = channel.get("region") or defaults.get("region") or _DEFAULT_REGION
        contact, problem = _contact(channel, region, "region" in channel)
        if problem:
            yield (*here, problem[0]), problem[1]
        if contact and contact in contacts:
            what = "phone number" if channel.get("kind") == "phone" else "e-mail address"
            key = (*here, "phone" if channel.get("kind") == "phone" else "email")
            yield key, f"same {what} as channel {contacts[contact]!r}", "warning"
        elif contact:
            contacts[contact] = str(channel.get("id"))


def _replacement(
    channel: dict[str, Any], here: Key, channel_ids: set[str], org: Any
) -> Iterator[tuple[Any, ...]]:
    replaced_by = channel.get("replaced_by")
    if not isinstance(replaced_by, str):
        return
    if replaced_by not in channel_ids:
        yield (*here, "replaced_by"), f"no channel {replaced_by!r} in {org}"
    elif replaced_by == channel.get("id"):
        yield (*here, "replaced_by"), "a channel cannot replace itself"
    if channel.get("status", "active") == "active":
        message = "replaced_by on an active channel: is it status: deprecated?"
        yield (*here, "replaced_by"), message, "warning"


def _timing(
    item: dict[str, Any], here: Key, interval: float | None, timeout: float | None
) -> Iterator[tuple[Any, ...]]:
    if "interval" not in item and "timeout" not in item:
        return  # the defaults' own pair is checked once, at the defaults
    own_interval = _seconds(item.get("interval"), interval)
    own_timeout = _seconds(item.get("timeout"), timeout)
    if own_interval is not None and own_timeout is not None and own_interval < own_timeout:
        key = (*here, "interval" if "interval" in item else "timeout")
        yield key, _too_short(own_interval, own_timeout)


def _contact(
    channel: dict[str, Any], region: Any, own_region: bool
) -> tuple[str | None, tuple[str, str] | None]:
    """The canonical contact of a phone or e-mail channel, or the problem with its number."""
    kind = channel.get("kind")
    if kind == "email" and isinstance(channel.get("email"), str):
        return channel["email"].strip().lower(), None
    phone = channel.get("phone")
    if kind != "phone" or not isinstance(phone, str):
        return None, None
    if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
        if not own_region:
            return None, None  # a bad defaults.region is reported at the defaults
        return None, ("region", f"unknown region {region!r}: use an ISO 3166 code such as RU")
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as exc:
        hint = (
            ": write the number alone, with an extension as 'доб. 101' or 'ext. 101', and "
            "words such as '(бесплатно)' in notes"
            if any(c.isalpha() for c in phone)
            else ""
        )
        return None, ("phone", f"cannot read {phone!r} as a phone number ({exc._msg}){hint}")
    if not phonenumbers.is_valid_number(number):
        return None, ("phone", f"{phone!r} is not a valid number for region {region}")
    return canonical(e164(number), number.extension), None
