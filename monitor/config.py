"""The registry's typed model: what a registry file may say, with its defaults.

Models are frozen and reject unknown keys. Rules that need more than one field
(unique ids, references, numbers valid for the region) live in `monitor.loader`,
so each error can name the exact place in the file.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import zoneinfo
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import phonenumbers
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "BrowserConfig",
    "Channel",
    "Defaults",
    "EmailChannel",
    "Expect",
    "HoursWindow",
    "Organization",
    "PhoneChannel",
    "Registry",
    "Source",
    "TcpChannel",
    "WebChannel",
    "parse_duration",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"


def parse_duration(value: Any) -> float:
    """Seconds from `30s`, `5m`, `1h30m`, `250ms` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(_DURATION_PATTERN, value.strip()):
        seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(value))
    else:
        raise ValueError(f"invalid duration {value!r}: use a number with a unit, like 30s, 5m, 1h")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION_PATTERN, "examples": ["30s", "5m", "1h"]},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "seconds, or a number with a unit: ms, s, m, h, d",
        }
    ),
]
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id")]
Port = Annotated[int, Field(ge=1, le=65535)]
Threshold = Annotated[int, Field(ge=1, le=100)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- business hours -----------------------------------------------------------------

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {"daily": "mon-sun", "weekdays": "mon-fri", "weekends": "sat-sun"}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@functools.cache  # a few distinct strings, read for every channel at every scrape
def parse_days(spec: str) -> frozenset[int]:
    """Weekday numbers (Monday 0) from `mon-fri`, `mon,wed,fri`, `sat-sun`, `weekdays`."""
    days: set[int] = set()
    for part in _DAY_ALIASES.get(spec.strip().lower(), spec.strip().lower()).split(","):
        first, _, last = part.strip().partition("-")
        if first not in _WEEKDAYS or (last and last not in _WEEKDAYS):
            raise ValueError(f"invalid days {spec!r}: use e.g. mon-fri, sat-sun, mon,wed,fri")
        start, end = _WEEKDAYS.index(first), _WEEKDAYS.index(last or first)
        days.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return frozenset(days)


@functools.cache
def clock_minutes(value: str) -> int:
    """Minutes after midnight from `HH:MM` (`24:00` allowed as the end of a day)."""
    if not _CLOCK.match(value):
        raise ValueError(f"invalid time {value!r}: use HH:MM, 00:00 to 24:00")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class HoursWindow(StrictModel):
    """Open on `days` from `from` to `to`, in the registry's timezone."""

    days: str = "mon-sun"
    from_: str = Field("00:00", alias="from", pattern=_CLOCK.pattern)
    to: str = Field("24:00", pattern=_CLOCK.pattern)

    @field_validator("days")
    @classmethod
    def _days_parse(cls, value: str) -> str:
        parse_days(value)
        return value

    @model_validator(mode="after")
    def _from_before_to(self) -> HoursWindow:
        if clock_minutes(self.from_) >= clock_minutes(self.to):
            raise ValueError(f"'from' {self.from_} must be before 'to' {self.to}")
        return self


def _hours_windows(value: Any) -> Any:
    if value == "24/7":
        return ()
    if isinstance(value, dict):
        return (value,)
    if isinstance(value, str):
        raise ValueError(f"invalid hours {value!r}: use 24/7 or {{days, from, to}} windows")
    return value


_WINDOW_SCHEMA = HoursWindow.model_json_schema()
Hours = Annotated[
    tuple[HoursWindow, ...],
    BeforeValidator(_hours_windows),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "24/7"},
                _WINDOW_SCHEMA,
                {"type": "array", "items": _WINDOW_SCHEMA},
            ],
            "description": "24/7, or open windows in the registry's timezone",
        }
    ),
]


# --- channels -----------------------------------------------------------------------


def _check_regex(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("a regular expression is a string")
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _check_http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a URL is a string like https://example.org/contacts")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    return value


HttpUrl = Annotated[str, BeforeValidator(_check_http_url)]


def _check_channel_url(value: Any) -> str:
    """http(s) for a page, ws(s) for a WebSocket endpoint (a chat backend)."""
    if isinstance(value, str) and value[:6].lower().startswith(("ws://", "wss://")):
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError(f"{value!r} is not a ws(s) URL with a host")
        return value
    return _check_http_url(value)


ChannelUrl = Annotated[str, BeforeValidator(_check_channel_url)]
# `render: browser`: headless Chromium loads the page and it is judged on what it shows.
Render = Literal["browser"] | None
Headers = dict[Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")], str]
Regex = Annotated[str | None, BeforeValidator(_check_regex)]


class Expect(StrictModel):
    """What a healthy web/chat/social channel answers."""

    status: tuple[Annotated[int, Field(ge=100, le=599)], ...] = (200,)
    body_regex: Regex = None
    body_not_regex: Regex = None
    max_latency: Duration | None = None
    cert_min_days: Annotated[int, Field(ge=0)] | None = None
    max_redirects: Annotated[int, Field(ge=0, le=30)] = 5
    max_body_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 1024 * 1024
    # WebSocket channels (ws:// and wss://): a message sent after the handshake, and the
    # pattern a message received within the timeout must match.
    send: str | None = None
    receive_regex: Regex = None
    subprotocol: str | None = None  # asked for in the handshake; the server must choose it


class ChannelBase(StrictModel):
    id: Id
    name: str | None = None
    service: str = "general"
    status: Literal["active", "deprecated"] = "active"
    hours: Hours = ()  # no windows: always open (24/7)
    published_on: tuple[Id, ...] = ()  # sources that must show this contact
    deprecated_since: date | None = None
    replaced_by: Id | None = None  # the channel customers should use instead
    interval: Duration | None = None
    timeout: Duration | None = None
    failure_threshold: Threshold | None = None  # consecutive failures before "down"
    success_threshold: Threshold | None = None  # consecutive successes before "up" again
    notes: str | None = None

    @property
    def contact(self) -> str:
        """The contact as written in the registry: number, address, URL or host:port."""
        raise NotImplementedError


class PhoneChannel(ChannelBase):
    kind: Literal["phone"]
    phone: str
    region: str | None = None  # overrides defaults.region for a number without +code

    @property
    def contact(self) -> str:
        return self.phone


def _smtp_mode(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false.
    return "off" if value is False else value


class EmailChannel(ChannelBase):
    kind: Literal["email"]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    smtp: Annotated[Literal["off", "connect", "starttls"], BeforeValidator(_smtp_mode)] = "off"
    smtp_port: Port = 25

    @property
    def contact(self) -> str:
        return self.email.lower()

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


class WebChannel(ChannelBase):
    kind: Literal["web", "chat", "social"]
    url: ChannelUrl
    expect: Expect = Expect()
    render: Render = None
    headers: Headers = {}  # request headers, merged over the defaults'

    @property
    def is_websocket(self) -> bool:
        return self.url[:6].lower().startswith(("ws://", "wss://"))

    @model_validator(mode="after")
    def _fits_scheme(self) -> WebChannel:
        if self.is_websocket and self.render is not None:
            raise ValueError("render: browser loads pages; a ws(s):// URL is probed as WebSocket")
        if not self.is_websocket and (
            self.expect.send is not None
            or self.expect.receive_regex is not None
            or self.expect.subprotocol is not None
        ):
            raise ValueError(
                "expect.send, receive_regex and subprotocol need a ws:// or wss:// URL"
            )
        return self

    @property
    def contact(self) -> str:
        return self.url


class TcpChannel(ChannelBase):
    kind: Literal["tcp"]
    host: str
    port: Port
    tls: bool = False

    @property
    def contact(self) -> str:
        return f"{self.host}:{self.port}"


Channel = Annotated[
    PhoneChannel | EmailChannel | WebChannel | TcpChannel, Field(discriminator="kind")
]


# --- sources, organisations, defaults ------------------------------------------------


class Source(StrictModel):
    """An official page where contacts are published."""

    id: Id
    url: HttpUrl
    name: str | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    region: str | None = None
    max_body_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 5 * 1024 * 1024
    render: Render = None


Objective = Annotated[float, Field(gt=0, lt=1, description="availability objective, e.g. 0.999")]


class Organization(StrictModel):
    id: Id
    name: str | None = None
    objectives: dict[str, Objective] = {}  # service -> objective, over defaults'
    sources: tuple[Source, ...] = ()
    channels: tuple[Channel, ...] = ()


class Resolver(StrictModel):
    nameservers: tuple[str, ...] = Field(min_length=1)
    port: Port = 53

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"nameserver {address!r} is not an IP address") from None
        return value


class HistoryConfig(StrictModel):
    path: str = "history.sqlite3"  # relative to the registry file's folder
    retention: Duration = 90 * 86400.0


class Tls(StrictModel):
    ca_file: str | None = None  # extra PEM bundle trusted besides the system's


class BrowserConfig(StrictModel):
    """The one headless Chromium that renders `render: browser` pages."""

    concurrency: Annotated[int, Field(ge=1, le=64)] = 2  # pages open at once
    # Summed PSS of the browser's processes above which it is restarted (killed at twice).
    max_memory_mb: Annotated[int, Field(ge=64, le=65536)] = 1024
    screenshots: Annotated[int, Field(ge=0, le=10000)] = 100  # failed checks' kept on disk
    # Folder for them, relative to the registry's; unset: `screenshots` beside the history.
    screenshot_dir: str | None = None


class Defaults(StrictModel):
    interval: Duration = 60.0
    source_interval: Duration = 1800.0
    timeout: Duration = 10.0
    region: str = "RU"
    timezone: str = "Europe/Moscow"
    resolver: Resolver | None = None
    tls: Tls = Tls()
    concurrency: Annotated[int, Field(ge=1, le=10000)] = 64  # probes in flight at once
    per_host_concurrency: Annotated[int, Field(ge=1, le=1000)] = 4  # ... against one host
    failure_threshold: Threshold = 2
    success_threshold: Threshold = 1
    availability_objective: Objective = 0.999  # per service and month, for SLO alerts
    history: HistoryConfig = HistoryConfig()
    browser: BrowserConfig = BrowserConfig()
    # Follow redirects into loopback/private/link-local addresses from a public target.
    allow_private_redirects: bool = False

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}: use an ISO 3166 code such as RU")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}: use an IANA name") from None
        return value


class Registry(StrictModel):
    """The whole registry file."""

    version: Literal[1]
    defaults: Defaults = Defaults()
    organizations: tuple[Organization, ...]
