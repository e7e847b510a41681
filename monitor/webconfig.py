"""`--web-config FILE`: TLS and basic auth for every endpoint, in the file format Prometheus
exporters use (exporter-toolkit): `tls_server_config` and `basic_auth_users` (bcrypt)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
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
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


def load_web_config(path: Path) -> WebConfig:
    """The web config in `path`, or `WebConfigInvalid` saying what is wrong."""
    try:
        data = _File.model_validate(yaml.safe_load(path.read_text()) or {})
    except OSError as exc:
        raise WebConfigInvalid(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise WebConfigInvalid(f"{path}: {exc}") from None
    config = WebConfig(users={u: h.encode() for u, h in data.basic_auth_users.items()})
    for user, hashed in config.users.items():
        if not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise WebConfigInvalid(f"{path}: basic_auth_users.{user}: not a bcrypt hash")
    if data.tls_server_config:
        base = path.parent
        config.ssl_certfile = str(base / data.tls_server_config.cert_file)
        config.ssl_keyfile = str(base / data.tls_server_config.key_file)
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                config.ssl_certfile, config.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigInvalid(f"{path}: tls_server_config: {exc}") from None
    return config


class BasicAuth:
    """ASGI middleware: every request needs one of the users; bcrypt runs once per
    distinct credential (successes are cached by digest), so scrapes stay cheap."""

    def __init__(self, app: App, users: dict[str, bytes]) -> None:
        self.app = app
        self.users = users
        self._good: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A push carries its own bearer token (monitor.push), checked per channel.
        pushing = scope.get("path", "").startswith("/api/v1/push/")
        if scope["type"] != "http" or pushing or self._allowed(scope):
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

    def _allowed(self, scope: Scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        digest = hashlib.sha256(user + b"\0" + password).digest()
        if digest in self._good:
            return True
        hashed = self.users.get(user.decode("utf-8", "replace"))
        if hashed is None or not bcrypt.checkpw(password, hashed):
            return False
        self._good.add(digest)
        return True
