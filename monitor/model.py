"""Plain data that flows from probers to state, output and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Contacts",
    "Finding",
    "FindingType",
    "ProbeFailure",
    "ProbeResult",
    "PublishedEmail",
    "PublishedPhone",
]


@dataclass(frozen=True)
class PublishedPhone:
    """A phone number as a page shows it."""

    e164: str  # canonical number, "+78005558982"
    extension: str | None  # "76077" for "доб. 76077", else None
    raw: str  # the text as found, for evidence
    number_type: str  # "toll_free", "mobile", "fixed_line", ...
    visible: bool = True  # False: in the page but hidden from visitors (not published)


@dataclass(frozen=True)
class PublishedEmail:
    """An e-mail address as a page shows it."""

    address: str  # lower-cased
    raw: str  # the text as found
    visible: bool = True  # False: in the page but hidden from visitors (not published)


@dataclass(frozen=True)
class Contacts:
    """Everything a page publishes: each phone and e-mail once, links for presence checks."""

    phones: tuple[PublishedPhone, ...] = ()
    emails: tuple[PublishedEmail, ...] = ()
    links: frozenset[str] = frozenset()  # normalised absolute URLs of the page's anchors
    # In the page but not shown (hidden attribute, display:none, <template>, <noscript>):
    # not published, listed so a maintainer can see why a contact was left out.
    hidden_phones: tuple[PublishedPhone, ...] = ()
    hidden_emails: tuple[PublishedEmail, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """`phones` and `emails` (DESIGN's contract); `hidden` only when the page hides some."""
        data: dict[str, Any] = {
            "phones": [_phone_json(p) for p in self.phones],
            "emails": [_email_json(e) for e in self.emails],
        }
        if self.hidden_phones or self.hidden_emails:
            data["hidden"] = {
                "phones": [_phone_json(p) for p in self.hidden_phones],
                "emails": [_email_json(e) for e in self.hidden_emails],
            }
        return data


def _phone_json(phone: PublishedPhone) -> dict[str, Any]:
    data: dict[str, Any] = {
        "e164": phone.e164,
        "extension": phone.extension,
        "raw": phone.raw,
        "number_type": phone.number_type,
    }
    return data if phone.visible else {**data, "visible": False}


def _email_json(email: PublishedEmail) -> dict[str, Any]:
    data: dict[str, Any] = {"address": email.address, "raw": email.raw}
    return data if email.visible else {**data, "visible": False}


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe of one channel or source."""

    # None: nothing was measured (a numbering check, a skipped test call): never up or down
    success: bool | None
    reason: str | None = None  # short machine-readable cause of failure, None on success
    message: str | None = None  # one human sentence about the failure
    duration_seconds: float = 0.0  # wall time of the whole probe
    details: dict[str, Any] = field(default_factory=dict)  # prober-specific facts, JSON-able
    timestamp: float = field(default_factory=time.time)  # when the probe finished (epoch s)
    contacts: Contacts | None = None  # what a source page publishes (source probes only)


class ProbeFailure(Exception):  # noqa: N818 - it is a result, not an error, for the guard
    """Raised inside a prober to end it with a failed result; never escapes a prober."""

    def __init__(self, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details


FindingType = Literal[
    "deprecated_published",
    "unregistered_published",
    "active_missing",
    "source_unreachable",
    "deprecated_reachable",  # from a test call (`monitor.call_findings`), not a page
]


@dataclass(frozen=True)
class Finding:
    """A difference between the registry and what an official page shows."""

    type: FindingType
    org: str
    source: str
    channel: str | None = None  # the registry channel concerned, if any
    contact: str | None = None  # canonical contact: E.164 number or lower-cased address
    evidence: str | None = None  # the raw text found on the page (or the failure, if unreachable)

    def sort_key(self) -> tuple[str, ...]:
        return (self.org, self.source, self.type, self.channel or "", self.contact or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "org": self.org,
            "channel": self.channel,
            "source": self.source,
            "contact": self.contact,
            "evidence": self.evidence,
        }
