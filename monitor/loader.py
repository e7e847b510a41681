"""Reads a registry (one file, or a directory of files) and reports every problem at once,
each with its file, line and field path.

Parsing never raises anything but `RegistryInvalid`, whatever the files hold, so the
command line and the daemon's reload can show the errors and keep the last good registry.
A directory is one registry: every `*.yaml` in it, sorted by name; `defaults` in at most
one file; organisations from all files, each id in one file only (DESIGN).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from monitor.config import CLOCK_PATTERN, EMAIL_PATTERN, ID_PATTERN, Organization, Registry
from monitor.registry_rules import Problem, Severity, registry_problems

__all__ = [
    "ConfigIssue",
    "RegistryInvalid",
    "check_registry",
    "default_config_path",
    "load_registry",
    "registry_base",
    "registry_files",
    "registry_stamp",
]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 200_000  # after alias expansion: stops "billion laughs" documents
# libyaml's parser when PyYAML has it: a 10,000-channel registry loads several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[A-Za-z_$][\w$-]{0,63}")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a registry file: an error, or a warning that does not stop loading."""

    file: str
    line: int | None
    path: str  # "organizations[ozon].channels[bank-hotline].phone", or "" for the whole file
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        """One line, whatever the message held."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        message = " ".join(self.message.split())
        if self.severity == "warning":
            message = f"warning: {message}"
        if self.path:
            return f"{where}: {self.path}: {message}"
        return f"{where}: {message}"


class RegistryInvalid(Exception):  # noqa: N818 - reads as "the registry is invalid"
    """The registry cannot be used; `issues` says why, one line each (`warnings` too)."""

    def __init__(self, issues: list[ConfigIssue], warnings: list[ConfigIssue] | None = None):
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues
        self.warnings = warnings or []


def default_config_path() -> Path:
    return Path(os.environ.get("CONTACT_MONITOR_CONFIG") or "config/channels.yaml")


def registry_base(path: str | Path) -> Path:
    """The directory relative paths in the registry (CA bundle, history) are taken from:
    the directory of `path` as given (or `path` itself when it is a directory), made
    absolute but with symlinks NOT resolved.

    A Kubernetes ConfigMap mounts `channels.yaml -> ..data/channels.yaml` and swaps the
    `..data` link to a new timestamped directory on every update, deleting the old one; a
    resolved path would point into the deleted directory after the first update.
    """
    absolute = Path(os.path.abspath(path))
    return absolute if absolute.is_dir() else absolute.parent


def registry_files(path: str | Path) -> list[Path]:
    """The files of the registry at `path`: itself, or a directory's `*.yaml` and `*.yml`
    sorted by name (hidden files, such as editors' swap files, left out): a maintainer's
    `acme.yml` is never silently left unmonitored."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.iterdir()
        if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
    )


def registry_stamp(path: str | Path) -> tuple[Any, ...]:
    """Changes whenever a registry file is added, removed or written (for the reload watch)."""
    stamp: list[Any] = []
    for file in registry_files(path):
        try:
            stat = file.stat()
        except OSError:
            continue
        # Device and inode too: a file replaced by a rename, or a swapped `..data` link, is
        # a change even with the same size and mtime.
        stamp.append(
            (file.name, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        )
    return tuple(stamp)


def load_registry(path: str | Path) -> Registry:
    """The validated registry at `path` (a file or a directory), or `RegistryInvalid`
    listing every problem."""
    return check_registry(path)[0]


def check_registry(path: str | Path) -> tuple[Registry, list[ConfigIssue]]:
    """The registry at `path` and its warnings (same contact twice, replaced_by on an active
    channel); `RegistryInvalid` with every error, and the warnings, when it is not valid."""
    path = Path(path)
    directory = path.is_dir()
    docs: list[_Doc] = []
    issues: list[ConfigIssue] = []
    files = registry_files(path)
    if directory and not files:
        raise RegistryInvalid(
            [ConfigIssue(str(path), None, "", "no *.yaml or *.yml files in directory")]
        )
    for file in files:
        try:
            docs.append(_read_doc(file))
        except RegistryInvalid as invalid:
            issues += invalid.issues
    parts: list[Registry] = []
    for doc in docs:
        part = _validate_model(doc, _RegistryPart if directory else Registry)
        if part is None:
            issues += doc.model_issues
        else:
            parts.append(part)
    problems = registry_problems([(d.name, d.data) for d in docs], registry_base(path), directory)
    for problem in problems:
        issues.append(_issue(docs, problem, str(path)))
    errors = sorted((i for i in issues if i.severity == "error"), key=_order)
    warnings = sorted((i for i in issues if i.severity == "warning"), key=_order)
    if errors or len(parts) != len(files):
        raise RegistryInvalid(errors, warnings)
    return _merge(parts, path), warnings


def _order(issue: ConfigIssue) -> tuple[str, int]:
    return issue.file, issue.line or 0


class _RegistryPart(Registry):
    """One file of a directory registry: `version` and `organizations` may be elsewhere."""

    version: Literal[1] | None = None  # type: ignore[assignment]
    organizations: tuple[Organization, ...] = ()


def _merge(parts: list[Registry], path: Path) -> Registry:
    if len(parts) == 1 and type(parts[0]) is Registry:
        return parts[0]
    fields: dict[str, Any] = {}
    for part in parts:  # `defaults` (and any other top-level key) is in one file at most
        fields |= {name: getattr(part, name) for name in part.model_fields_set}
    fields["version"] = 1
    fields["organizations"] = tuple(org for part in parts for org in part.organizations)
    try:
        return Registry(**fields)
    except ValidationError as exc:  # a rule across files the parts could not see alone
        message = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
        raise RegistryInvalid([ConfigIssue(str(path), None, "", message)]) from None


# --- one file -------------------------------------------------------------------------


@dataclass
class _Doc:
    name: str
    data: Any
    lines: dict[PathKey, int]
    plain: dict[PathKey, tuple[str, Any]]  # plain scalars YAML read as non-strings
    model_issues: list[ConfigIssue] = field(default_factory=list)

    def issue(self, key: PathKey, message: str, severity: Severity = "error") -> ConfigIssue:
        line = _line_of(self.lines, _yaml_key(key, self.data))
        return ConfigIssue(self.name, line, format_path(key, self.data), message, severity)


def _issue(docs: list[_Doc], problem: Problem, fallback: str) -> ConfigIssue:
    if problem.doc is None or problem.doc >= len(docs):
        return ConfigIssue(fallback, None, "", problem.message, problem.severity)
    return docs[problem.doc].issue(problem.key, problem.message, problem.severity)


def _read_doc(path: Path) -> _Doc:
    name = str(path)
    text = _read_text(path, name)
    return _parse_yaml(text, name)


def _validate_model(doc: _Doc, model: type[Registry]) -> Registry | None:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        doc.model_issues = _pydantic_issues(exc, doc)
        return None


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


def _parse_yaml(text: str, name: str) -> _Doc:
    loader = _LOADER(text)
    doc = _Doc(name, None, {}, {})
    try:
        # One parse: the node tree gives the lines and the safety checks, then the data is
        # built from that same tree (parsing twice doubled the peak memory of a reload).
        root = loader.get_single_node()
        duplicates = _index_lines(root, doc)
        doc.data = loader.construct_document(root) if root is not None else None
        if duplicates:  # which of the two values was meant? Nothing else is worth checking.
            issues = [
                ConfigIssue(name, line, format_path(k, doc.data), "duplicate key")
                for k, line in duplicates
            ]
            raise RegistryInvalid(issues)
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
    if doc.data is None:
        raise RegistryInvalid([ConfigIssue(name, 1, "", "file is empty")])
    return doc


def _index_lines(root: yaml.Node | None, doc: _Doc) -> list[tuple[PathKey, int]]:
    """Line of every mapping key and sequence item, and the text of plain scalars YAML read
    as something other than a string; alias bombs rejected. Returns the duplicate keys."""
    duplicates: list[tuple[PathKey, int]] = []
    budget = MAX_NODES
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())] if root is not None else []
    while stack:
        node, key = stack.pop()
        budget -= 1
        if budget < 0:
            assert root is not None
            raise RegistryInvalid([ConfigIssue(doc.name, None, "", _too_many_nodes(root))])
        doc.lines.setdefault(key, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                child = (*key, str(key_node.value))
                if key_node.value in seen:
                    duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key_node.value)
                doc.lines[child] = key_node.start_mark.line + 1
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*key, i)) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.ScalarNode) and not node.style and node.tag != _STR_TAG:
            doc.plain[key] = (node.value, node.tag)
    return sorted(duplicates, key=lambda item: item[1])


def _too_many_nodes(root: yaml.Node) -> str:
    """Why a document passed `MAX_NODES`: aliases repeating nodes ("billion laughs"), or a
    file that is simply that large, which a registry directory splits. Counted only on
    this error path: a node is walked once however many aliases point to it."""
    distinct: set[int] = set()
    stack = [root]
    while stack and len(distinct) < MAX_NODES:
        node = stack.pop()
        if id(node) in distinct:
            continue
        distinct.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    if len(distinct) < MAX_NODES:
        return f"aliases expand the document to more than {MAX_NODES:,} nodes (an alias bomb)"
    return (
        f"the file has more than {MAX_NODES:,} YAML nodes: split it into several files "
        "of a registry directory (--config DIR)"
    )


def format_path(key: PathKey, data: Any = None) -> str:
    """`organizations[ozon].channels[bank-hotline].phone`: list items with an id are named by
    it (by index otherwise); odd keys quoted, so a path is one line."""
    out = ""
    node = data
    for part in key:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            ident = item.get("id") if isinstance(item, dict) else None
            named = isinstance(ident, str) and re.fullmatch(ID_PATTERN, ident)
            out += f"[{ident}]" if named else f"[{part}]"
            node = item
            continue
        node = node.get(part) if isinstance(node, dict) else None
        if _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _line_of(lines: dict[PathKey, int], key: PathKey) -> int | None:
    while key not in lines and key:
        key = key[:-1]
    return lines.get(key)


def _pydantic_issues(exc: ValidationError, doc: _Doc) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        key = _without_union_tags(tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            key = (*key, "kind")
        issues.append(doc.issue(key, _message(error, doc.plain.get(_yaml_key(key, doc.data)))))
    return issues


def _yaml_key(key: PathKey, data: Any) -> PathKey:
    """The key as the file spells it: `hours[0].from` is `hours.from` when the file gave one
    window as a mapping rather than a list of them."""
    out: list[str | int] = []
    node = data
    for part in key:
        if isinstance(part, int) and not isinstance(node, list):
            continue
        out.append(part)
        if isinstance(part, int):
            node = node[part] if 0 <= part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


_UNION_TAGS = {"phone", "email", "web", "chat", "social", "tcp"}


def _without_union_tags(loc: PathKey) -> PathKey:
    """Drop the `kind` tag pydantic inserts after `channels[i]` in discriminated unions."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        after_channel = i >= 2 and loc[i - 2] == "channels" and isinstance(loc[i - 1], int)
        if not (after_channel and part in _UNION_TAGS):
            out.append(part)
    return tuple(out)


_PATTERN_WORDS = {
    ID_PATTERN: "an id is 1-63 lower-case letters, digits, '.', '_' or '-' (got {input!r})",
    EMAIL_PATTERN: "not an e-mail address: {input!r}",
    CLOCK_PATTERN: "invalid time {input!r}: use HH:MM, 00:00 to 24:00",
}


def _message(error: Any, plain: tuple[str, Any] | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("missing", "union_tag_not_found"):
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {error['ctx']['tag']!r}: use one of {error['ctx']['expected_tags']}"
    if kind == "string_type" and plain is not None:
        return _unquoted(plain[0], error["input"])
    # pydantic says "tuple" and "instance of Expect": say it in YAML's words.
    if kind in ("tuple_type", "list_type", "set_type", "frozen_set_type"):
        hint = f": write [{error['input']}]" if isinstance(error["input"], str) else ""
        return f"expected a list, got {_yaml_kind(error['input'])}{hint}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of keys to values, got {_yaml_kind(error['input'])}"
    if kind == "string_pattern_mismatch":
        words = _PATTERN_WORDS.get(error.get("ctx", {}).get("pattern"))
        # A regex means nothing to a maintainer: say what was wrong, not the pattern.
        return (words or "{input!r} is not in the form this field takes").format(
            input=error["input"]
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("literal_error", "enum"):
        message += f" (got {error['input']!r})"
    return message


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unquoted(text: str, value: Any) -> str:
    """YAML 1.1 reads 18:00 as 1080 (base 60), 88005558982 as a number, no as false."""
    if isinstance(value, bool):
        what = f"as {str(value).lower()}"
    elif isinstance(value, int | float):
        what = f"as the number {value}"
    elif isinstance(value, date):
        what = "as a date"
    else:
        what = "as something other than text"
    quoted = f"0{text}" if re.fullmatch(r"\d:[0-5]\d", text) else text  # HH:MM for 9:00
    return f'quote it: YAML read {text} {what}; write "{quoted}"'
