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
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
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

from monitor.patterns import PatternInvalid, compile_pattern
from monitor.redact import mask_password

__all__ = [
    "BrowserConfig",
    "Channel",
    "Defaults",
    "EmailChannel",
    "Expect",
    "HoursWindow",
    "MaintenanceWindow",
    "Organization",
    "PhoneChannel",
    "PushCheck",
    "Registry",
    "SipCheck",
    "SipDefaults",
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
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"  # the loader words a mismatch as "not an e-mail"
Id = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id")]
Port = Annotated[int, Field(ge=1, le=65535)]
Threshold = Annotated[int, Field(ge=1, le=100)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- business hours -----------------------------------------------------------------

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {"daily": "mon-sun", "weekdays": "mon-fri", "weekends": "sat-sun"}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
CLOCK_PATTERN = _CLOCK.pattern  # the loader words a mismatch as "use HH:MM"


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
            raise ValueError(
                f"'from' {self.from_} must be before 'to' {self.to}: hours past midnight are "
                f"two windows, {self.from_}-24:00 and 00:00-{self.to} on the next days"
            )
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


# --- maintenance windows -------------------------------------------------------------


def _clock_text(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 18:00 as the number 1080 (base 60).
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'quote it: YAML read this time as the number {value}; write "HH:MM"')
    if isinstance(value, str):
        clock_minutes(value)  # the error in words, before the schema's pattern
    return value


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no UTC offset: write it like 2026-12-01T01:00:00+03:00"
        )
    return value


Clock = Annotated[str | None, BeforeValidator(_clock_text), Field(pattern=_CLOCK.pattern)]


class MaintenanceWindow(StrictModel):
    """Planned work: weekly `{days, from, to}` in the registry's timezone (a `to` earlier
    than `from` runs past midnight), or one one-off `{start, end}` span in ISO 8601 with
    its UTC offset. Inside one, alerts stay quiet and uptime leaves the time out."""

    days: str | None = None
    from_: Clock = Field(None, alias="from")
    to: Clock = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("days")
    @classmethod
    def _days_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_days(value)
        return value

    @field_validator("start", "end", mode="wrap")
    @classmethod
    def _with_offset(cls, value: Any, handler: Any) -> datetime | None:
        return _aware(handler(value))

    @model_validator(mode="after")
    def _one_shape(self) -> MaintenanceWindow:
        weekly = (self.days, self.from_, self.to)
        span = (self.start, self.end)
        if any(v is not None for v in weekly) and any(v is not None for v in span):
            raise ValueError(
                "a maintenance window is weekly {days, from, to} or one-off {start, end}, not both"
            )
        if any(v is not None for v in span):
            if self.start is None or self.end is None:
                raise ValueError("a one-off maintenance window needs both start and end")
            if self.start >= self.end:
                raise ValueError(
                    f"start {self.start.isoformat()} must be before end {self.end.isoformat()}"
                )
        elif self.from_ is None or self.to is None:
            raise ValueError(
                "a maintenance window needs from and to (weekly, with optional days) "
                "or start and end (one-off)"
            )
        elif self.from_ == self.to:
            raise ValueError(f"'from' and 'to' are both {self.from_}: the window is empty")
        return self

    @property
    def weekly(self) -> bool:
        return self.start is None


Maintenance = tuple[MaintenanceWindow, ...]


# --- channels -----------------------------------------------------------------------


def _check_regex(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("a regular expression is a string")
    if value is not None:
        try:
            compile_pattern(value)
        except PatternInvalid as exc:
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
    _check_host(parts.hostname)
    _check_port(value)
    return value


def _check_port(url: str) -> None:
    """The URL's port, when it names one, is one a server can listen on: 1-65535 (RFC 6335
    §6; port 0 means "any" to the socket API and reaches nothing)."""
    try:
        port = urlsplit(url).port
    except ValueError:
        raise ValueError(f"{url!r} has a port outside 1-65535") from None
    if port == 0:
        raise ValueError(f"{url!r} has port 0: use a port from 1 to 65535")


def _check_host(host: str) -> None:
    """A host name must be one httpx can connect to: non-ASCII names must be valid
    IDNA2008 (RFC 5891), so that a probe never ends in the catch-all reason `error`."""
    literal = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        httpx.URL(f"http://{literal.rstrip('.')}/")
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"host {host!r} is not a valid host name: {exc}") from None


def _check_proxy_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a proxy is a URL like http://proxy.internal:3128")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"proxy {value!r} is not an http(s) URL with a host")
    _check_port(value)
    return value


HttpUrl = Annotated[str, BeforeValidator(_check_http_url)]


def _check_channel_url(value: Any) -> str:
    """http(s) for a page, ws(s) for a WebSocket endpoint (a chat backend)."""
    if isinstance(value, str) and value[:6].lower().startswith(("ws://", "wss://")):
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError(f"{value!r} is not a ws(s) URL with a host")
        _check_host(parts.hostname)
        _check_port(value)
        return value
    return _check_http_url(value)


ChannelUrl = Annotated[str, BeforeValidator(_check_channel_url)]
# `render: browser`: headless Chromium loads the page and it is judged on what it shows.
Render = Literal["browser"] | None
Regex = Annotated[str | None, BeforeValidator(_check_regex)]
ProxyUrl = Annotated[str | None, BeforeValidator(_check_proxy_url)]


def _check_header_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a header value is a string")
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("a header value must not contain line breaks or NUL (header injection)")
    return value


# Header names are RFC 9110 tokens; values carry no line breaks or NULs.
HeaderMap = dict[
    Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")],
    Annotated[str, BeforeValidator(_check_header_value)],
]


class Expect(StrictModel):
    """What a healthy web/chat/social channel answers."""

    status: tuple[Annotated[int, Field(ge=100, le=599)], ...] = (200,)
    body_regex: Regex = None
    body_not_regex: Regex = None
    max_latency: Duration | None = None
    cert_min_days: Annotated[int, Field(ge=0)] | None = None
    max_redirects: Annotated[int, Field(ge=0, le=30)] = 5
    max_body_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 1024 * 1024
    location_regex: Regex = None  # the checked answer's Location (with follow_redirects: false)
    # WebSocket channels (ws:// and wss://): a message sent after the handshake, and the
    # pattern a message received within the timeout must match.
    send: str | None = None
    receive_regex: Regex = None
    subprotocol: str | None = None  # asked for in the handshake; the server must choose it

    @field_validator("status")
    @classmethod
    def _some_status(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError(
                "an empty list accepts no answer at all: list the HTTP statuses that mean "
                "the channel works, e.g. [200], or leave status out for 200"
            )
        return value


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class PushCheck(StrictModel):
    """An outside tester pushes results; the token is read from the environment variable
    `token_env` at every push, never from the registry."""

    token_env: Annotated[str, Field(pattern=ENV_NAME)]
    expect_every: Duration | None = None  # no push for this long: failure `push_missing`


class SipCheck(StrictModel):
    """`call`: an INVITE to the number through the trunk; `options`: an OPTIONS to the trunk."""

    mode: Literal["call", "options"] = "call"
    max_calls_per_day: Annotated[int, Field(ge=0, le=100000)] | None = None  # over defaults'


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
    # push: an outside tester reports this channel's state to /api/v1/push/{org}/{channel}
    check: Literal["probe", "push"] = "probe"
    push: PushCheck | None = None
    maintenance: Maintenance = ()  # besides the organisation's and the defaults'

    @property
    def contact(self) -> str:
        """The contact as written in the registry: number, address, URL or host:port."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _push_configured(self) -> ChannelBase:
        if self.check == "push" and self.push is None:
            raise ValueError("check: push needs push: {token_env: NAME}")
        if self.check != "push" and self.push is not None:
            raise ValueError(f"push: is set but check is {self.check!r}; use check: push")
        return self


class PhoneChannel(ChannelBase):
    kind: Literal["phone"]
    phone: str
    region: str | None = None  # overrides defaults.region for a number without +code
    # numbering: the number exists in the plan, nothing dialled; sip: a test call or OPTIONS
    check: Literal["numbering", "sip", "push"] = "numbering"  # type: ignore[assignment]
    sip: SipCheck = SipCheck()

    @property
    def contact(self) -> str:
        return self.phone


def _smtp_mode(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false.
    return "off" if value is False else value


class EmailChannel(ChannelBase):
    kind: Literal["email"]
    email: Annotated[str, Field(pattern=EMAIL_PATTERN)]
    smtp: Annotated[Literal["off", "connect", "starttls"], BeforeValidator(_smtp_mode)] = "off"
    smtp_port: Port = 25

    @field_validator("email")
    @classmethod
    def _domain_is_a_host_name(cls, value: str) -> str:
        _check_host(value.rpartition("@")[2])
        return value

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
    headers: HeaderMap = {}  # merged over defaults.http.headers
    proxy: ProxyUrl = None  # over defaults.http.proxy
    follow_redirects: bool = True  # false: the first answer (e.g. a 301) is the one checked
    render: Render = None

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
        """The URL, its password masked: the contact is shown everywhere, the URL is not."""
        return mask_password(self.url)


class TcpChannel(ChannelBase):
    kind: Literal["tcp"]
    host: str
    port: Port
    tls: bool = False

    @field_validator("host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        name, colon, port = value.rpartition(":")
        if colon and port.isdigit() and ":" not in name:  # "127.0.0.1:80", not an IPv6
            raise ValueError(f"host {value!r} holds a port: write host: {name} and port: {port}")
        _check_host(value)
        return value

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
    maintenance: Maintenance = ()  # for every channel of the organisation
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


class SipAuth(StrictModel):
    username: str = Field(min_length=1, max_length=256)
    password_env: Annotated[str, Field(pattern=ENV_NAME)]  # the secret stays in the environment


class SipDefaults(StrictModel):
    """The SIP trunk test calls and OPTIONS go through."""

    trunk: Annotated[str, Field(pattern=r"^sips?:[^\s]+$")]  # sip:host:port;transport=udp|tcp|tls
    from_: Annotated[str, Field(alias="from", pattern=r"^sips?:[^\s@]+@[^\s]+$")] = (
        "sip:monitor@localhost"
    )
    auth: SipAuth | None = None
    max_calls_per_day: Annotated[int, Field(ge=0, le=100000)] = 48  # per channel
    max_concurrent_calls: Annotated[int, Field(ge=1, le=64)] = 4  # SIPp processes at once

    @field_validator("trunk")
    @classmethod
    def _transport(cls, value: str) -> str:
        transport = re.search(r";transport=([^;]*)", value)
        if transport and transport.group(1).lower() not in ("udp", "tcp", "tls"):
            raise ValueError(f"transport {transport.group(1)!r}: use udp, tcp or tls")
        return value


class HttpDefaults(StrictModel):
    """What every HTTP probe and page fetch sends, and through which proxy."""

    headers: HeaderMap = {"User-Agent": "Mozilla/5.0 (compatible; contact-monitor)"}
    proxy: ProxyUrl = None  # unset: HTTP_PROXY / HTTPS_PROXY / NO_PROXY apply


class SmtpDefaults(StrictModel):
    helo_name: str | None = None  # EHLO/HELO name; unset: the machine's FQDN


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
    sip: SipDefaults | None = None
    browser: BrowserConfig = BrowserConfig()
    maintenance: Maintenance = ()  # for every channel of the registry
    # Follow redirects into loopback/private/link-local addresses from a public target.
    allow_private_redirects: bool = False
    http: HttpDefaults = HttpDefaults()
    smtp: SmtpDefaults = SmtpDefaults()

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
