"""The daemon's own HTTPS (`--web-config` `tls_server_config`): the certificate and key are
read again when their files change (checked every few seconds and on SIGHUP), and each new
TLS handshake gets the newest good pair, as exporter-toolkit reads them per handshake. A
pair that fails to load is logged and the previous one stays; an expired certificate at
start is a warning, not a refusal (Prometheus would say what is wrong at its scrape)."""

from __future__ import annotations

import os
import ssl
import time

import structlog

__all__ = ["ServerTls"]

log = structlog.get_logger("monitor.server_tls")
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class ServerTls:
    """`context` is what the listener uses; its SNI callback (run for every ClientHello,
    with or without a server name) hands the handshake to the newest loaded context."""

    def __init__(self, certfile: str, keyfile: str, min_version: str = "TLS12") -> None:
        self.certfile, self.keyfile = certfile, keyfile
        self.min_version = _VERSIONS.get(min_version, ssl.TLSVersion.TLSv1_2)
        self._stamp = self._stamps()
        self.current = self._build()  # raises at start: `load_web_config` checked it already
        self.context = self._build()
        self.context.sni_callback = self._choose
        self.reloads = 0
        self.warn_if_expired()

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, _: object) -> None:
        connection.context = self.current

    def _stamps(self) -> tuple[tuple[int, ...] | None, ...]:
        out = []
        for path in (self.certfile, self.keyfile):
            try:
                stat = os.stat(path)
                out.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
            except OSError:
                out.append(None)
        return tuple(out)

    def check(self, trigger: str) -> bool:
        """Load the pair again if either file changed (or always, for `sighup`); keep the
        old pair if the new one does not load. Returns whether a new pair is in use."""
        stamp = self._stamps()
        if stamp == self._stamp and trigger != "sighup":
            return False
        self._stamp = stamp
        try:
            fresh = self._build()
        except (OSError, ssl.SSLError) as exc:
            log.warning("web_tls_reload_failed", trigger=trigger, error=str(exc))
            return False
        self.current = fresh
        self.reloads += 1
        log.info("web_tls_reloaded", trigger=trigger, cert_file=self.certfile)
        self.warn_if_expired()
        return True

    def warn_if_expired(self) -> None:
        """A warning naming the file when the certificate's notAfter is past."""
        try:
            decoded = ssl._ssl._test_decode_cert(self.certfile)  # type: ignore[attr-defined]
            not_after = ssl.cert_time_to_seconds(decoded["notAfter"])
        except (OSError, ssl.SSLError, KeyError, ValueError):
            return
        if not_after < time.time():
            log.warning(
                "web_tls_certificate_expired",
                cert_file=self.certfile,
                not_after=decoded["notAfter"],
            )
