"""/readyz and push channels: a channel waiting for its first push does not hold readiness
back, and the answer says so instead of looking like a measured result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import wait_for
from servers import HttpServer, page

TOKEN = "readyz-push-token"


def test_readyz_counts_push_channel_as_waiting_when_never_pushed(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("READYZ_PUSH_TOKEN", TOKEN)
    http_server.routes["/"] = page("ok")
    pushed = {
        "id": "line",
        "kind": "phone",
        "phone": "+74951234567",
        "check": "push",
        "push": {"token_env": "READYZ_PUSH_TOKEN"},
    }
    site = {"id": "site", "kind": "web", "url": http_server.url("/")}
    config = tmp_path / "r.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"interval": "1s", "timeout": "1s"},
                "organizations": [{"id": "acme", "channels": [site, pushed]}],
            }
        )
    )
    daemon = start_daemon(config)
    ready = wait_for(lambda: (r := daemon.get("/readyz")).status_code == 200 and r.json(), "ready")
    assert ready == {"status": "ready", "probed": 1, "total": 2, "waiting_for_push": 1}

    response = httpx.post(
        daemon.url + "/api/v1/push/acme/line",
        json={"success": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 202, response.text
    after = daemon.get("/readyz").json()
    assert (after["probed"], after["waiting_for_push"]) == (2, 0)
