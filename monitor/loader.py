"""Reads a registry file and reports every problem with its file, line and field path.

Parsing never raises anything but `RegistryInvalid`, whatever the file holds, so the
command line and the daemon's reload can show the errors and keep the last good registry.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import yaml
from pydantic import ValidationError

from monitor.config import ID_PATTERN, Registry

__all__ = [
    "ConfigIssue",
    "RegistryInvalid",
    "default_config_path",
    "load_registry",
    "registry_base",
]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 200_000  # after alias expansion: stops "billion laughs" documents
# libyaml's parser when PyYAML has it: a 10,000-channel registry loads several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[A-Za-z_$][\w$-]{0,63}")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a registry file."""

    file: str
    line: int | None
    path: str  # "organizations[0].channels[2].phone", or "" for the whole file
    message: str

    def __str__(self) -> str:
        """One line, whatever the message held."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        message = " ".join(self.message.split())
        if self.path:
            return f"{where}: {self.path}: {message}"
        return f"{where}: {message}"


class RegistryInvalid(Exception):  # noqa: N818 - reads as "the registry is invalid"
    """The registry file cannot be used; `issues` says why, one line each."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues


def default_config_path() -> Path:
    return Path(os.environ.get("CONTACT_MONITOR_CONFIG") or "config/channels.yaml")


def registry_base(path: str | Path) -> Path:
    """The directory relative paths in the registry (CA bundle, history) are taken from:
    the directory of `path` as given, made absolute but with symlinks NOT resolved.

    A Kubernetes ConfigMap mounts `channels.yaml -> ..data/channels.yaml` and swaps the
    `..data` link to a new timestamped directory on every update, deleting the old one; a
    resolved path would point into the deleted directory after the first update.
    """
    absolute = Path(os.path.abspath(path))
    return absolute if absolute.is_dir() else absolute.parent


def load_registry(path: str | Path) -> Registry:
    """The validated registry in `path`, or `RegistryInvalid` listing every problem."""
    name = str(path)
    text = _read_text(Path(path), name)
    lines, data = _parse_yaml(text, name)
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        raise RegistryInvalid(_pydantic_issues(exc, lines, name)) from None
    issues = [
        ConfigIssue(name, _line_of(lines, key), format_path(key), message)
        for key, message in semantic_problems(registry, Path(path).parent)
    ]
    if issues:
        raise RegistryInvalid(issues)
    return registry


def _read_text(path: Path, name: str) -> str:
    def fail(message: str) -> RegistryInvalid:
        return RegistryInvalid([ConfigIssue(name, None, "", message)])

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in raw:
        raise fail("file is binary, not YAML text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"file is not UTF-8 text (byte {exc.start})") from None


def _parse_yaml(text: str, name: str) -> tuple[dict[PathKey, int], Any]:
    loader = _LOADER(text)
    try:
        # One parse: the node tree gives the lines and the safety checks, then the data is
        # built from that same tree (parsing twice doubled the peak memory of a reload).
        root = loader.get_single_node()
        lines = _index_lines(root, name)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise RegistryInvalid([ConfigIssue(name, line, "", f"invalid YAML: {problem}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"invalid YAML: control character #x{code:04x} is not allowed"
        raise RegistryInvalid([ConfigIssue(name, line, "", problem)]) from None
    except yaml.YAMLError as exc:
        raise RegistryInvalid([ConfigIssue(name, None, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise RegistryInvalid([ConfigIssue(name, None, "", "YAML nested too deeply")]) from None
    finally:
        loader.dispose()
    if data is None:
        raise RegistryInvalid([ConfigIssue(name, 1, "", "file is empty")])
    return lines, data


def _index_lines(root: yaml.Node | None, name: str) -> dict[PathKey, int]:
    """Line of every mapping key and sequence item; rejects duplicate keys and alias bombs."""
    lines: dict[PathKey, int] = {}
    budget = [MAX_NODES]
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())] if root is not None else []
    while stack:
        node, key = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            message = f"document expands to more than {MAX_NODES} nodes (an alias bomb?)"
            raise RegistryInvalid([ConfigIssue(name, None, "", message)])
        lines.setdefault(key, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                child = (*key, str(key_node.value))
                if key_node.value in seen:
                    raise RegistryInvalid(
                        [
                            ConfigIssue(
                                name,
                                key_node.start_mark.line + 1,
                                format_path(child),
                                "duplicate key",
                            )
                        ]
                    )
                seen.add(key_node.value)
                lines[child] = key_node.start_mark.line + 1
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*key, i)) for i, item in enumerate(node.value))
    return lines


def format_path(key: PathKey) -> str:
    """`organizations[0].channels[2].phone`; odd keys quoted, so a path is one line."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _line_of(lines: dict[PathKey, int], key: PathKey) -> int | None:
    while key not in lines and key:
        key = key[:-1]
    return lines.get(key)


def _pydantic_issues(
    exc: ValidationError, lines: dict[PathKey, int], name: str
) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        key = _without_union_tags(tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            key = (*key, "kind")
        issues.append(ConfigIssue(name, _line_of(lines, key), format_path(key), _message(error)))
    return issues


_UNION_TAGS = {"phone", "email", "web", "chat", "social", "tcp"}


def _without_union_tags(loc: PathKey) -> PathKey:
    """Drop the `kind` tag pydantic inserts after `channels[i]` in discriminated unions."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        after_channel = i >= 2 and loc[i - 2] == "channels" and isinstance(loc[i - 1], int)
        if not (after_channel and part in _UNION_TAGS):
            out.append(part)
    return tuple(out)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("missing", "union_tag_not_found"):
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {error['ctx']['tag']!r}: use one of {error['ctx']['expected_tags']}"
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == ID_PATTERN:
        return f"an id is 1-63 lower-case letters, digits, '.', '_' or '-' (got {error['input']!r})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("literal_error", "string_pattern_mismatch", "enum"):
        message += f" (got {error['input']!r})"
    return message


def semantic_problems(registry: Registry, base: Path) -> list[tuple[PathKey, str]]:
    """Rules across fields: unique ids, references, numbers valid for their region, files."""
    problems: list[tuple[PathKey, str]] = []
    ca_file = registry.defaults.tls.ca_file
    if ca_file and not (base / ca_file).is_file():
        problems.append((("defaults", "tls", "ca_file"), f"no such file: {ca_file}"))
    elif ca_file:
        problems += _ca_problems(base / ca_file, ca_file)
    if not registry.organizations:
        problems.append((("organizations",), "at least one organization is required"))
    problems += _duplicates([org.id for org in registry.organizations], ("organizations",))
    for i, org in enumerate(registry.organizations):
        problems += _organization_problems(org, ("organizations", i), registry.defaults.region)
        problems += _sip_problems(org, ("organizations", i), registry.defaults.sip is not None)
    return problems


def _sip_problems(org: Any, at: PathKey, has_trunk: bool) -> list[tuple[PathKey, str]]:
    """A SIP check needs a trunk to go through."""
    return [
        ((*at, "channels", j, "check"), "check: sip needs defaults.sip.trunk")
        for j, channel in enumerate(org.channels)
        if getattr(channel, "check", None) == "sip" and not has_trunk
    ]


def _ca_problems(path: Path, name: str) -> list[tuple[PathKey, str]]:
    """A CA bundle the SSL context would refuse (not PEM, no certificate, unreadable)."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        return [
            (("defaults", "tls", "ca_file"), f"cannot load {name} as a PEM CA bundle: {reason}")
        ]
    return []


def _duplicates(ids: list[str], prefix: PathKey) -> list[tuple[PathKey, str]]:
    seen: set[str] = set()
    problems: list[tuple[PathKey, str]] = []
    for i, ident in enumerate(ids):
        if ident in seen:
            problems.append(((*prefix, i, "id"), f"duplicate id {ident!r}"))
        seen.add(ident)
    return problems


def _organization_problems(org: Any, at: PathKey, region: str) -> list[tuple[PathKey, str]]:
    problems = _duplicates([s.id for s in org.sources], (*at, "sources"))
    problems += _duplicates([c.id for c in org.channels], (*at, "channels"))
    sources = {s.id for s in org.sources}
    channels = {c.id for c in org.channels}
    for j, channel in enumerate(org.channels):
        here = (*at, "channels", j)
        for k, source in enumerate(channel.published_on):
            if source not in sources:
                problems.append(((*here, "published_on", k), f"no source {source!r} in {org.id}"))
        if channel.replaced_by is not None and channel.replaced_by not in channels:
            problems.append(
                ((*here, "replaced_by"), f"no channel {channel.replaced_by!r} in {org.id}")
            )
        if channel.replaced_by == channel.id:
            problems.append(((*here, "replaced_by"), "a channel cannot replace itself"))
        if channel.kind == "phone":
            problems += _phone_problems(channel, here, region)
    return problems


def _phone_problems(channel: Any, at: PathKey, default_region: str) -> list[tuple[PathKey, str]]:
    region = channel.region or default_region
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return [((*at, "region"), f"unknown region {region!r}: use an ISO 3166 code such as RU")]
    try:
        number = phonenumbers.parse(channel.phone, region)
    except phonenumbers.NumberParseException as exc:
        return [((*at, "phone"), f"cannot read {channel.phone!r} as a phone number: {exc._msg}")]
    if not phonenumbers.is_valid_number(number):
        return [((*at, "phone"), f"{channel.phone!r} is not a valid number for region {region}")]
    return []
