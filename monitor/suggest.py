"""`drift --suggest`: the registry change that would settle the current drift findings.

The registry files are edited as YAML documents, not re-dumped from the model: ruamel.yaml's
round-trip mode keeps comments, key order, quoting and indentation, so the change reads as
a small unified diff a maintainer can review (`patch -p0` applies it) or `--write` saves.

- `unregistered_published`: a new channel with `published_on` the sources that show it and
  a `notes` line with the evidence (source, URL, the text seen, the date);
- `active_missing`: the source leaves the channel's `published_on`;
- `deprecated_published` and `source_unreachable`: nothing in the registry would settle
  them (the page must change, or be readable); they are listed as notes instead.
"""

from __future__ import annotations

import datetime
import difflib
import io
import os
import re
import tempfile
import time
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from monitor.config import Registry
from monitor.drift import SourceKey
from monitor.loader import RegistryInvalid, load_registry, registry_files
from monitor.model import Finding, ProbeResult

__all__ = ["Suggestion", "suggest_changes", "write_changes"]


@dataclass
class Suggestion:
    """The edited text of each registry file that changes, and what no edit can settle."""

    files: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)
    unsettled: list[str] = field(default_factory=list)  # one sentence per finding

    def diff(self) -> str:
        """A unified diff of every changed file, paths as given (apply with `patch -p0`)."""
        out = []
        for path, (old, new) in self.files.items():
            lines = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), str(path), str(path)
            )
            out.append("".join(lines))
        return "".join(out)


class _Document:
    """One registry file as an editable round-trip YAML document."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8-sig")
        self.yaml = YAML()  # round-trip
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never fold a long line the maintainer wrote on one
        _, sequence_indent, offset = load_yaml_guess_indent(self.text)
        self.yaml.indent(mapping=2, sequence=sequence_indent or 2, offset=offset or 0)
        self.data = self.yaml.load(self.text)
        self.changed = False

    def organizations(self) -> dict[str, CommentedMap]:
        orgs = self.data.get("organizations") if isinstance(self.data, dict) else None
        return {o["id"]: o for o in orgs or [] if isinstance(o, dict) and "id" in o}

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()


def suggest_changes(
    path: Path,
    registry: Registry,
    findings: list[Finding],
    scans: Mapping[SourceKey, ProbeResult],
) -> Suggestion:
    """The edits of the registry at `path` (a file or a directory) that settle `findings`."""
    suggestion = Suggestion()
    try:
        documents = [_Document(p) for p in registry_files(path)]
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        suggestion.unsettled.append(f"cannot edit the registry: {exc}")
        return suggestion
    where = {org: doc for doc in documents for org in doc.organizations()}
    urls = {(o.id, s.id): s.url for o in registry.organizations for s in o.sources}
    zone = zoneinfo.ZoneInfo(registry.defaults.timezone)
    new: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        if finding.type == "unregistered_published" and finding.org in where:
            new.setdefault((finding.org, finding.contact or ""), []).append(finding)
        elif finding.type == "active_missing" and finding.org in where:
            _leave_source(where[finding.org], finding)
        else:
            suggestion.unsettled.append(_why_unsettled(finding, urls))
    for (org, contact), seen in new.items():
        evidence = [
            _evidence(f, urls.get((f.org, f.source)), scans.get((f.org, f.source)), zone)
            for f in seen
        ]
        channel = _new_channel(where[org].organizations()[org], contact, seen, evidence)
        if channel is None:
            suggestion.unsettled.append(_why_unsettled(seen[0], urls))
        else:
            _add_channel(where[org], org, channel)
    for doc in documents:
        if doc.changed:
            suggestion.files[doc.path] = (doc.text, doc.dump())
    return suggestion


def write_changes(suggestion: Suggestion, path: Path) -> None:
    """Save the edited files; if the result would not validate, put the old ones back and
    raise `RegistryInvalid` (the registry on disk is never left broken)."""
    for file, (_, new) in suggestion.files.items():
        _replace(file, new)
    try:
        load_registry(path)
    except RegistryInvalid:
        for file, (old, _) in suggestion.files.items():
            _replace(file, old)
        raise


def _replace(file: Path, text: str) -> None:
    """Write through a temporary file and a rename: a running daemon never reads half a file."""
    file = file.resolve()  # a symlinked registry keeps its link; the file it names changes
    mode = file.stat().st_mode & 0o777
    handle, temp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _why_unsettled(finding: Finding, urls: Mapping[SourceKey, str]) -> str:
    url = urls.get((finding.org, finding.source), "?")
    if finding.type == "deprecated_published":
        return (
            f"{finding.org}/{finding.channel}: the deprecated {finding.contact} is still shown "
            f"on {finding.source} ({url}) as {finding.evidence!r}: the page must change; "
            "nothing to change in the registry"
        )
    if finding.type == "source_unreachable":
        return (
            f"{finding.org}/{finding.source} ({url}) could not be read ({finding.evidence}): "
            "nothing to suggest until it can"
        )
    return f"{finding.org}/{finding.source}: {finding.type} {finding.contact}: no change found"


def _evidence(
    finding: Finding, url: str | None, scan: ProbeResult | None, zone: zoneinfo.ZoneInfo
) -> str:
    when = datetime.datetime.fromtimestamp(scan.timestamp if scan else time.time(), zone).date()
    return f"seen on {finding.source} ({url}) on {when.isoformat()} as {finding.evidence!r}"


def _leave_source(doc: _Document, finding: Finding) -> None:
    org = doc.organizations()[finding.org]
    for channel in org.get("channels") or []:
        if not isinstance(channel, dict) or channel.get("id") != finding.channel:
            continue
        published = channel.get("published_on")
        if isinstance(published, list) and finding.source in published:
            published.remove(finding.source)
            if not published:
                del channel["published_on"]
            doc.changed = True


def _new_channel(
    org: CommentedMap, contact: str, seen: list[Finding], evidence: list[str]
) -> CommentedMap | None:
    taken = {c.get("id") for c in org.get("channels") or [] if isinstance(c, dict)}
    channel = CommentedMap()
    if "@" in contact:
        channel["id"] = _unique_id("email-" + contact, taken)
        channel["kind"] = "email"
        channel["email"] = contact
    else:
        number, _, extension = contact.partition(";ext=")
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException:
            return None
        parsed.extension = extension or None
        channel["id"] = _unique_id("phone-" + contact, taken)
        channel["kind"] = "phone"
        international = phonenumbers.PhoneNumberFormat.INTERNATIONAL
        # Quoted, as a maintainer writes numbers: a bare one may read as an integer.
        channel["phone"] = DoubleQuotedScalarString(
            phonenumbers.format_number(parsed, international)
        )
    sources = CommentedSeq(dict.fromkeys(f.source for f in seen))
    sources.fa.set_flow_style()
    channel["published_on"] = sources
    channel["notes"] = "; ".join(evidence)
    return channel


def _unique_id(wanted: str, taken: set[Any]) -> str:
    """A registry id (ID_PATTERN) from a contact: `phone-74952152994`, `email-sales-acme.test`."""
    plain = wanted.lower().replace("+", "").replace(";ext=", "-ext-")
    base = re.sub(r"[^a-z0-9._-]+", "-", plain).strip("-._")[:60]
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}-{n}", n + 1
    return ident


def _add_channel(doc: _Document, org_id: str, channel: CommentedMap) -> None:
    org = doc.organizations()[org_id]
    channels = org.get("channels")
    if not isinstance(channels, list):
        channels = org["channels"] = CommentedSeq()
    channels.append(channel)
    doc.changed = True
