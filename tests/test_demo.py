"""`contact-monitor demo` shows every state at once, offline, within 30 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from servers import free_port

from monitor.demo import DEMO_STATES

DEADLINE_SECONDS = 30.0


def _states_seen(base: str) -> dict[str, bool]:
    """Which of the demo's states the running daemon shows now."""
    channels = {c["channel"]: c for c in httpx.get(f"{base}/api/v1/channels").json()}
    findings = httpx.get(f"{base}/api/v1/findings").json()
    by_type = {(f["type"], f["channel"] or f["contact"]): f for f in findings}

    def down_for(channel: str, reason: str) -> bool:
        c = channels.get(channel, {})
        return c.get("up") is False and c.get("reason") == reason

    hotline = channels.get(DEMO_STATES["number valid, not dialled"], {})
    deprecated = by_type.get(("deprecated_published", DEMO_STATES["deprecated number published"]))
    return {
        "up": channels.get(DEMO_STATES["up"], {}).get("up") is True,
        "down": down_for(DEMO_STATES["down"], "http_status"),
        "slow": down_for(DEMO_STATES["slow"], "slow"),
        "certificate expiring": down_for(DEMO_STATES["certificate expiring"], "tls_expiring"),
        # Published as +7 800 234 70 00 while the registry writes 8 (800) 234-70-00.
        "deprecated number published": deprecated is not None
        and deprecated["evidence"] == "+7 800 234 70 00",
        "unregistered number": ("unregistered_published", DEMO_STATES["unregistered number"])
        in by_type,
        "vanished contact": ("active_missing", DEMO_STATES["vanished contact"]) in by_type,
        "maintenance": channels.get(DEMO_STATES["maintenance"], {}).get("in_maintenance") is True,
        # Checked against the numbering plan only: never reported down.
        "number valid, not dialled": hotline.get("success") is not False
        and hotline.get("details", {}).get("e164") == "+74952321000",
    }


def test_demo_reaches_every_state_within_30_seconds_when_started_offline(tmp_path: Path):
    """Up, down with a reason, slow, expiring certificate, deprecated number published,
    unregistered number, vanished contact, maintenance and a number only validated: all
    on the API and the status page within 30 s, from loopback servers alone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "demo.log").open("wb")
    args = [sys.executable, "-m", "monitor", "demo", "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen([*args, "--dir", str(tmp_path / "demo")], stdout=log, stderr=log)
    started = time.monotonic()
    seen: dict[str, Any] = {}
    try:
        while time.monotonic() - started < DEADLINE_SECONDS:
            try:
                seen = _states_seen(base)
            except httpx.TransportError:
                seen = {}
            if seen and all(seen.values()):
                break
            time.sleep(0.5)
        assert seen, "the demo never answered"
        assert all(seen.values()), {k: v for k, v in seen.items() if not v}
        page = httpx.get(f"{base}/").text
        assert "Example Shop (demo): support contact status" in page
        assert '<span class="badge maintenance">maintenance</span>' in page
        assert "Deprecated 8 (800) 234-70-00 still shown on contacts" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log.close()
    assert set(DEMO_STATES) == set(seen)
