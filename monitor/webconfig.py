"""`--web-config FILE`: TLS and basic auth for every endpoint, in the file format Prometheus
exporters use (exporter-toolkit): `tls_server_config` and `basic_auth_users` (bcrypt)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["BasicAuth", "WebConfig", "WebConfigInvalid", "load_web_config"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebConfigInvalid(Exception):  # noqa: N818 - reads as "the web config is invalid"
    pass


class _Tls(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cert_file: str
    key_file: str
    min_version: str = "TLS12"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tls_server_config: _Tls | None = None
    basic_auth_users: dict[str, str] = {}


@dataclass
class WebConfig:
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_min_version: str = "TLS12"
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


def load_web_config(path: Path) -> WebConfig:
    """The web config in `path`, or `WebConfigInvalid` saying what is wrong."""
    try:
        data = _File.model_validate(yaml.safe_load(path.read_text()) or {})
    except OSError as exc:
        raise WebConfigInvalid(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise WebConfigInvalid(f"{path}: invalid YAML: {problem}") from None
    except ValidationError as exc:
        lines = [f"{path}: {_key(e['loc'])}{_problem(e)}" for e in exc.errors()]
        raise WebConfigInvalid("\n".join(lines)) from None
    config = WebConfig(users={u: h.encode() for u, h in data.basic_auth_users.items()})
    for user, hashed in config.users.items():
        if not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise WebConfigInvalid(f"{path}: basic_auth_users.{user}: not a bcrypt hash")
    if data.tls_server_config:
        base = path.parent
        config.ssl_certfile = str(base / data.tls_server_config.cert_file)
        config.ssl_keyfile = str(base / data.tls_server_config.key_file)
        config.ssl_min_version = data.tls_server_config.min_version
        for field, file in (("cert_file", config.ssl_certfile), ("key_file", config.ssl_keyfile)):
            if not Path(file).is_file():
                raise WebConfigInvalid(f"{path}: tls_server_config.{field}: no such file: {file}")
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                config.ssl_certfile, config.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigInvalid(f"{path}: tls_server_config: {exc}") from None
    return config


def _key(loc: tuple[str | int, ...]) -> str:
    """`tls_server_config.colour`, `basic_auth_users.admin`: where a problem is, as in
    `validate`'s lines; empty for the file as a whole."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return f"{text}: " if text else ""


def _problem(error: Any) -> str:
    """One problem in a maintainer's words, without pydantic's type names and links."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of keys to values, got {type(error['input']).__name__}"
    return str(error["msg"]).removeprefix("Value error, ")


class BasicAuth:
    """ASGI middleware: every request needs one of the users, checked the way Prometheus's
    exporter-toolkit checks them.

    - bcrypt runs in a worker thread (it releases the GIL), one check at a time, so a flood
      of wrong passwords takes at most one core and never the event loop that times probes;
    - the outcome of each (user, hash, password) is cached, good or bad (`CACHE_SIZE`
      entries, least recently used dropped), so a scraper pays bcrypt once;
    - an unknown user is checked against a dummy hash of the same cost, so it takes as long
      as a wrong password and names cannot be probed by timing.
    """

    CACHE_SIZE = 100

    def __init__(self, app: App, users: dict[str, bytes]) -> None:
        self.app = app
        self.users = users
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._one_at_a_time = asyncio.Lock()
        cost = max((_cost(h) for h in users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=cost))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A push carries its own bearer token (monitor.push), checked per channel.
        pushing = scope.get("path", "").startswith("/api/v1/push/")
        if scope["type"] != "http" or pushing or await self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b'Basic realm="contact-monitor"'),
                    (b"content-type", b"text/plain"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"Unauthorized\n"})

    async def _allowed(self, scope: Scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        hashed = self.users.get(user.decode("utf-8", "replace"))
        checked = hashed or self._dummy
        key = hashlib.sha256(b"\0".join((user, checked, password))).digest()
        known = self._cached(key)
        if known is not None:
            return known
        async with self._one_at_a_time:
            known = self._cached(key)  # another request may have checked it meanwhile
            if known is None:
                matches = await asyncio.to_thread(bcrypt.checkpw, password, checked)
                known = matches and hashed is not None
                self._cache[key] = known
                while len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
        return known

    def _cached(self, key: bytes) -> bool | None:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None


def _cost(hashed: bytes) -> int:
    """The cost (log2 rounds) of a `$2b$NN$...` hash."""
    try:
        return int(hashed.split(b"$")[2])
    except (IndexError, ValueError):
        return 10
