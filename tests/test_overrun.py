"""A probe still running when its next run is due: one log event naming the channel."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from conftest import wait_for
from servers import RawTcpServer


def test_overrun_logged_once_per_channel_when_probes_queue_behind_each_other(
    tmp_path: Path, start_daemon: Any, silent_server: RawTcpServer
):
    """Four 1 s probes of one silent host, one at a time, cannot keep a 1 s interval: each
    channel's overrun is logged once, by name, and APScheduler's own line is not."""
    url = f"http://127.0.0.1:{silent_server.port}/"
    config = tmp_path / "r.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"interval": "1s", "timeout": "1s", "per_host_concurrency": 1},
                "organizations": [
                    {
                        "id": "acme",
                        "channels": [
                            {"id": f"site-{i}", "kind": "web", "url": url} for i in range(4)
                        ],
                    }
                ],
            }
        )
    )
    daemon = start_daemon(config)
    wait_for(lambda: "probe_overran" in daemon.logs(), "an overrun", timeout=20)
    time.sleep(5)  # several more rounds that overrun as well
    events = [json.loads(line) for line in daemon.logs().splitlines() if line.startswith("{")]
    overruns = Counter(e.get("channel") for e in events if e["event"] == "probe_overran")
    assert overruns
    assert set(overruns) <= {f"site-{i}" for i in range(4)}
    assert set(overruns.values()) == {1}
    assert all(e["level"] == "warning" for e in events if e["event"] == "probe_overran")
    assert "maximum number of running instances" not in daemon.logs()
