"""The daemon against its own faults and an operator's mistakes, on a real process: reloads
that are all or nothing, history that never fails silently, start and stop as documented,
and a web side that cannot starve the probes (issue 15)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RunningDaemon, wait_for
from servers import HttpServer, page

from monitor.daemon import RELOAD_SETTLE_SECONDS


def registry(channels: list[dict[str, Any]], **defaults: Any) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "defaults": {"interval": "1s", "timeout": "2s", **defaults},
            "organizations": [{"id": "acme", "channels": channels}],
        }
    )


def site(ident: str, url: str) -> dict[str, Any]:
    return {"id": ident, "kind": "web", "url": url}


def reloads(daemon: RunningDaemon, result: str) -> float:
    return daemon.value("contact_config_reloads_total", result=result) or 0.0


# --- reload: all or nothing -----------------------------------------------------------------


def _configmap_version(mount: Path, name: str, text: str, ca_file: Path) -> None:
    """One `..<timestamp>` directory of a Kubernetes ConfigMap volume, then the atomic swap
    of `..data` to it, as the kubelet does it."""
    version = mount / name
    version.mkdir()
    (version / "channels.yaml").write_text(text)
    shutil.copy(ca_file, version / "ca.pem")
    (mount / "..data_tmp").symlink_to(name)
    os.replace(mount / "..data_tmp", mount / "..data")


def test_reload_follows_configmap_swap_when_old_directory_is_deleted(
    tmp_path: Path, start_daemon: Any, https_server: HttpServer, ca_file: Path
):
    """Relative paths resolve against the directory given (`/etc/config`), not the resolved
    `..2024_a` target: after the kubelet swaps `..data` and deletes the old directory, the
    reload succeeds, the CA bundle is found again and the new channel is probed."""
    https_server.routes["/"] = page("ok")
    mount = tmp_path / "config"
    mount.mkdir()
    first = registry([site("one", https_server.url())], tls={"ca_file": "ca.pem"})
    _configmap_version(mount, "..2026_01_01_00_00_00.1", first, ca_file)
    for name in ("channels.yaml", "ca.pem"):
        (mount / name).symlink_to(f"..data/{name}")
    (tmp_path / "data").mkdir()
    daemon = start_daemon(
        mount / "channels.yaml", extra_args=["--history-db", str(tmp_path / "data" / "h.db")]
    )
    wait_for(lambda: daemon.value("contact_probe_success", channel="one") == 1, "one up")
    second = registry(
        [site("one", https_server.url()), site("two", https_server.url("/?2"))],
        tls={"ca_file": "ca.pem"},
        timeout="3s",  # changed defaults: the SSL context is built anew from ca.pem
    )
    _configmap_version(mount, "..2026_01_01_00_05_00.2", second, ca_file)
    shutil.rmtree(mount / "..2026_01_01_00_00_00.1")
    wait_for(lambda: daemon.value("contact_probe_success", channel="two") == 1, "two up", 20)
    assert daemon.value("contact_config_last_reload_successful") == 1
    assert daemon.value("contact_probe_success", channel="one") == 1


def test_reload_failed_with_reason_and_watcher_alive_when_ca_bundle_is_not_pem(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, ca_file: Path
):
    """A CA bundle that is not PEM is a `reload_failed` naming the file; the last good
    registry keeps probing, and the next good file is still picked up by the watcher."""
    http_server.routes["/"] = page("ok")
    shutil.copy(ca_file, tmp_path / "ca.pem")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())], tls={"ca_file": "ca.pem"}))
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="one") == 1, "one up")
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    config.write_text(registry([site("one", http_server.url())], tls={"ca_file": "bad.pem"}))
    wait_for(lambda: daemon.value("contact_config_last_reload_successful") == 0, "rejected", 15)
    assert "cannot load bad.pem as a PEM CA bundle" in daemon.logs()
    assert "Traceback" not in daemon.logs()
    config.write_text(
        registry(
            [site("one", http_server.url()), site("two", http_server.url("/?2"))],
            tls={"ca_file": "ca.pem"},
        )
    )
    wait_for(lambda: daemon.value("contact_probe_success", channel="two") == 1, "two up", 15)
    assert daemon.value("contact_config_last_reload_successful") == 1


def test_burst_of_sighups_and_writes_coalesces_into_one_reload(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """Twenty SIGHUPs and five writes within a second are served by one reload, made once
    the file has been still for a moment."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    daemon = start_daemon(config)
    before = reloads(daemon, "success")
    for i in range(20):
        daemon.proc.send_signal(signal.SIGHUP)
        if i % 4 == 0:
            config.write_text(registry([site("one", http_server.url(f"/?{i}"))]))
        time.sleep(0.04)
    wait_for(lambda: reloads(daemon, "success") > before, "a reload", 15)
    time.sleep(RELOAD_SETTLE_SECONDS + 3)  # room for a second, unwanted one
    assert reloads(daemon, "success") == before + 1
    assert reloads(daemon, "failure") == 0


def test_replaced_file_is_reloaded_when_size_and_mtime_are_unchanged(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """A file renamed over the registry with the same size and mtime (a new inode) is
    noticed by the watcher and loaded."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("aaa", http_server.url())]))
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="aaa") == 1, "aaa up")
    stat = config.stat()
    replacement = tmp_path / "new.yaml"
    replacement.write_text(registry([site("bbb", http_server.url())]))
    assert replacement.stat().st_size == stat.st_size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="bbb") == 1, "bbb up", 15)
    assert daemon.value("contact_channel_info", channel="aaa") is None


async def test_reload_is_failed_not_fatal_when_building_the_new_registry_raises(
    tmp_path: Path, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
):
    """Any exception while building what the new registry needs (here an unexpected one in
    the scheduler's preparation) is a failed reload with the reason; nothing was swapped and
    the next reload works."""
    import asyncio

    from monitor.daemon import Daemon
    from monitor.scheduler import ProbeScheduler

    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    daemon = Daemon(config, ("127.0.0.1", 0), history_path=tmp_path / "h.db")
    running = asyncio.create_task(daemon.run())
    for _ in range(200):  # until run() has built the scheduler
        if hasattr(daemon, "scheduler"):
            break
        await asyncio.sleep(0.05)
    config.write_text(registry([site("two", http_server.url())]))
    real = ProbeScheduler.prepare

    def broken(self: Any, old: Any, new: Any) -> Any:
        raise RuntimeError("resolver exploded")

    monkeypatch.setattr(ProbeScheduler, "prepare", broken)
    assert await daemon.reload("test") is False
    assert daemon.state.reload.errors == [f"{config}: RuntimeError: resolver exploded"]
    assert set(daemon.state.channel_defs) == {("acme", "one")}
    monkeypatch.setattr(ProbeScheduler, "prepare", real)
    assert await daemon.reload("test") is True
    assert set(daemon.state.channel_defs) == {("acme", "two")}
    daemon._stop.set()
    assert await asyncio.wait_for(running, 10) == 0
