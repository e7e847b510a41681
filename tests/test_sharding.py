"""Sharding by rendezvous hashing: every channel owned by exactly one replica, little moves
when the count changes, and three real replicas scraped by one Prometheus cover each channel
exactly once."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import wait_for

from monitor.sharding import Shard, owner, parse_shard, shard_from

KEYS = [f"org-{i % 13}/channel-{i}" for i in range(10_000)]


@pytest.mark.parametrize("count", range(1, 9))
def test_every_channel_owned_by_exactly_one_replica_when_count_is_n(count: int):
    """For N = 1..8, each of 10,000 channels is owned by one and only one of N replicas."""
    shards = [Shard(i, count) for i in range(count)]
    owners = [sum(s.owns(key) for s in shards) for key in KEYS]
    assert set(owners) == {1}
    per_shard = Counter(owner(key, count) for key in KEYS)
    assert min(per_shard.values()) > 10_000 / count * 0.85  # and spread about evenly


def test_about_a_fifth_moves_when_going_from_4_to_5_replicas():
    """Adding a fifth replica moves 15-25 % of the channels, all of them to the new one."""
    moved = [key for key in KEYS if owner(key, 4) != owner(key, 5)]
    assert 0.15 <= len(moved) / len(KEYS) <= 0.25
    assert {owner(key, 5) for key in moved} == {4}


def test_shard_read_from_option_environment_and_pod_name():
    """--shard wins, then $CONTACT_MONITOR_SHARD, then the StatefulSet ordinal."""
    assert shard_from("1/3", {"CONTACT_MONITOR_SHARD": "2/3"}) == Shard(1, 3)
    assert shard_from(None, {"CONTACT_MONITOR_SHARD": "2/3"}) == Shard(2, 3)
    assert shard_from(
        None, {"CONTACT_MONITOR_SHARDS": "4", "HOSTNAME": "contact-monitor-3"}
    ) == Shard(3, 4)
    assert shard_from(None, {}) == Shard(0, 1)


@pytest.mark.parametrize("text", ["3/3", "a/3", "1", "-1/2", "1/0"])
def test_invalid_shard_rejected_when_parsed(text: str):
    """INDEX must be a whole number below COUNT."""
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_one_series_per_channel_when_three_replicas_are_scraped_by_prometheus(
    tmp_path: Path, start_daemon: Any, start_prometheus: Any
):
    """Three real daemons (--shard 0/3, 1/3, 2/3) on one registry, one real Prometheus:
    exactly one probe-result series per channel, and info for all from each. (The lines
    are only checked against the numbering plan, so the result series is the last-run
    timestamp: such a line has no contact_probe_success.)"""
    channels = [
        {
            "id": f"line-{i}",
            "kind": "phone",
            "phone": f"8 800 555-{i // 100 + 10:02d}-{i % 100:02d}",
        }
        for i in range(40)
    ]
    config = tmp_path / "channels.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"interval": "1s", "timeout": "1s"},
                "organizations": [{"id": "acme", "channels": channels}],
            }
        )
    )
    replicas = [
        start_daemon(
            config,
            # each replica its own history, as each pod its own volume (the file is locked)
            extra_args=[
                *("--shard", f"{i}/3", "--location", "lab"),
                *("--history-db", str(tmp_path / f"history-{i}.sqlite3")),
            ],
        )
        for i in range(3)
    ]
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "contact-monitor",
                        "static_configs": [{"targets": [f"127.0.0.1:{r.port}" for r in replicas]}],
                    }
                ],
            }
        )
    )
    assert shutil.which("prometheus")
    prometheus = start_prometheus(prometheus_yml)

    def query(expr: str) -> list[dict[str, Any]]:
        return prometheus.get("/api/v1/query", query=expr)["data"]["result"]

    probed = "contact_probe_last_run_timestamp_seconds"
    wait_for(lambda: len(query(probed)) == 40, "40 series", timeout=30)
    per_channel = query(f"count by (org, channel) ({probed})")
    assert len(per_channel) == 40
    assert {r["value"][1] for r in per_channel} == {"1"}
    shards = {r["metric"]["shard"] for r in query(probed)}
    assert shards == {"0/3", "1/3", "2/3"}
    assert {r["metric"]["location"] for r in query(probed)} == {"lab"}
    assert query("count(contact_channel_info)")[0]["value"][1] == "120"  # 40 from each
    unassigned = query(
        "count(group by (org, channel) (contact_channel_info) unless on "
        f"(org, channel) {probed}) or vector(0)"
    )
    assert unassigned[0]["value"][1] == "0"
