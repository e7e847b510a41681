"""A password in a channel's URL is used by the probe and shown nowhere."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from servers import HttpServer, page
from test_daemon import write

from monitor.cli import main
from monitor.redact import mask_password

SECRET = "s3cretpass"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cret@host/", "http://user:***@host/"),
        ("https://user:p@ss:w@host:8443/a?b#c", "https://user:***@host:8443/a?b#c"),
        ("http://user:@[::1]:80/", "http://user:***@[::1]:80/"),
        ("wss://user@host/chat", "wss://user@host/chat"),  # no password: nothing to hide
        ("http://host/a@b:c", "http://host/a@b:c"),  # an @ in the path is not userinfo
        ("+7 800 555-35-35", "+7 800 555-35-35"),
    ],
)
def test_url_password_is_masked_when_url_is_shown(url: str, shown: str):
    assert mask_password(url) == shown


def test_check_output_hides_password_when_probe_uses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], http_server: HttpServer
):
    http_server.routes["/ok"] = page("hello")
    url = f"http://user:{SECRET}@127.0.0.1:{http_server.port}/ok"
    config = write(tmp_path / "r.yaml", [{"id": "site", "kind": "web", "url": url}])
    for fmt in ("json", "table"):
        main(["check", "--config", str(config), "--format", fmt])
        out = capsys.readouterr()
        assert SECRET not in out.out + out.err
    (result,) = json.loads(_check_json(config, capsys))["results"]
    assert result["success"], result
    (_, headers), *_ = http_server.received
    assert (
        headers["Authorization"] == "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    )  # the probe still sends the credentials


def _check_json(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["check", "--config", str(config), "--format", "json"])
    return capsys.readouterr().out


def test_daemon_hides_password_when_publishing_channel(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    http_server.routes["/ok"] = page("hello")
    url = f"http://user:{SECRET}@127.0.0.1:{http_server.port}/ok"
    config = write(tmp_path / "r.yaml", [{"id": "site", "kind": "web", "url": url}])
    daemon = start_daemon(config)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round")
    metrics = daemon.metrics_text()
    assert "user:***@127.0.0.1" in metrics
    for shown in (metrics, daemon.get("/api/v1/channels").text, daemon.get("/").text):
        assert SECRET not in shown
    assert SECRET not in daemon.logs()
