"""The daemon against its own faults and an operator's mistakes, on a real process: reloads
that are all or nothing, history that never fails silently, start and stop as documented,
and a web side that cannot starve the probes (issue 15)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RunningDaemon, wait_for
from servers import HttpServer, page

from monitor.connections import REQUEST_HEAD_TIMEOUT_SECONDS, WRITE_STALL_TIMEOUT_SECONDS
from monitor.daemon import RELOAD_SETTLE_SECONDS

MONITOR_RUN = [sys.executable, "-m", "monitor", "run"]


def registry(channels: list[dict[str, Any]], **defaults: Any) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "defaults": {"interval": "2s", "timeout": "2s", **defaults},
            "organizations": [{"id": "acme", "channels": channels}],
        }
    )


def site(ident: str, url: str) -> dict[str, Any]:
    return {"id": ident, "kind": "web", "url": url}


@pytest.fixture
def record(hardening_report: list[dict[str, Any]]) -> Callable[..., None]:
    """Adds a row to the suite's hardening report (docs/hardening.md, "Daemon faults")."""

    def add(case: str, expected: str, observed: str, seconds: str = "–") -> None:
        hardening_report.append(
            {
                "area": "Daemon faults",
                "case": case,
                "expected": expected,
                "observed": observed,
                "seconds": seconds,
            }
        )

    return add


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
    tmp_path: Path,
    start_daemon: Any,
    https_server: HttpServer,
    ca_file: Path,
    record: Callable[..., None],
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
        timeout="1s",  # changed defaults: the SSL context is built anew from ca.pem
    )
    _configmap_version(mount, "..2026_01_01_00_05_00.2", second, ca_file)
    shutil.rmtree(mount / "..2026_01_01_00_00_00.1")
    wait_for(lambda: daemon.value("contact_probe_success", channel="two") == 1, "two up", 20)
    assert daemon.value("contact_config_last_reload_successful") == 1
    assert daemon.value("contact_probe_success", channel="one") == 1
    record(
        "ConfigMap `..data` swapped, old directory deleted",
        "reload ok, CA found, new channel probed",
        "reloaded, new channel up",
    )


def test_reload_failed_with_reason_and_watcher_alive_when_ca_bundle_is_not_pem(
    tmp_path: Path,
    start_daemon: Any,
    http_server: HttpServer,
    ca_file: Path,
    record: Callable[..., None],
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
    record(
        "reload with a CA bundle that is not PEM",
        "reload_failed with reason, last good kept",
        "rejected with the file named; next good file loaded",
    )


def test_burst_of_sighups_and_writes_coalesces_into_one_reload(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
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
    record("20 SIGHUPs and 5 writes in 1 s", "one reload", "1 reload, 0 failures")


def test_replaced_file_is_reloaded_when_size_and_mtime_are_unchanged(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
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
    record("registry renamed over, same size and mtime", "noticed (inode)", "reloaded")


async def test_reload_is_failed_not_fatal_when_building_the_new_registry_raises(
    tmp_path: Path,
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
    record: Callable[..., None],
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
    record(
        "unexpected exception while building a reload",
        "reload_failed, nothing swapped",
        "reload_failed with the reason; next reload ok",
    )


# --- history: visible failures, no silent loss ----------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, so the test can fill it (needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_history_write_errors_visible_and_retried_when_disk_is_full(
    tmp_path: Path,
    start_daemon: Any,
    http_server: HttpServer,
    small_disk: Path,
    hardening_report: list[dict[str, Any]],
):
    """A full disk: every failed write is counted and logged with SQLite's cause, the status
    page says so, and the incident that happened meanwhile is written once space is back."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("flaky", http_server.url())]))
    daemon = start_daemon(config, extra_args=["--history-db", str(small_disk / "h.db")])
    try:
        wait_for(lambda: daemon.value("contact_channel_up", channel="flaky") == 1, "flaky up")
        filler = fill(small_disk)
        http_server.routes["/"] = page("broken", status=500)
        wait_for(lambda: daemon.value("contact_channel_up", channel="flaky") == 0, "flaky down")
        wait_for(lambda: daemon.value("contact_history_write_failing") == 1, "write failing", 20)
        errors = daemon.value("contact_history_write_errors_total")
        banner = daemon.get("/").text
        assert "history cannot be written" in banner
        assert "database or disk is full" in daemon.logs()
        filler.unlink()
        wait_for(lambda: daemon.value("contact_history_write_failing") == 0, "recovered", 20)
        incidents = daemon.get("/api/v1/incidents").json()
        assert [i["channel"] for i in incidents] == ["flaky"]
        assert "history_write_recovered" in daemon.logs()
        assert daemon.value("contact_history_writes_dropped_total") == 0
        hardening_report.append(
            {
                "area": "Daemon faults",
                "case": "history disk full (1 MiB tmpfs filled), then freed",
                "expected": "errors counted and logged with the cause, page banner, "
                "queued incident written after",
                "observed": f"{errors:.0f} write errors, SQLITE_FULL logged, incident kept",
                "seconds": "–",
            }
        )
    finally:
        daemon.stop()


def test_deleted_history_database_is_recreated_with_queued_writes(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """Deleting the database (and its directory) while the daemon runs: the file is created
    anew at the next write, and what happened after the deletion is in it."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("flaky", http_server.url())]))
    db = tmp_path / "data" / "h.db"
    daemon = start_daemon(config, extra_args=["--history-db", str(db)])
    wait_for(lambda: daemon.value("contact_channel_up", channel="flaky") == 1, "flaky up")
    wait_for(db.exists, "database written")
    shutil.rmtree(db.parent)
    http_server.routes["/"] = page("broken", status=500)
    wait_for(lambda: daemon.value("contact_history_recreated_total") == 1, "recreated", 20)
    wait_for(lambda: daemon.get("/api/v1/incidents").json(), "incident in the new file", 20)
    assert db.exists()
    assert "history_recreated" in daemon.logs()
    record(
        "history database and its directory deleted",
        "re-created, later writes kept",
        "re-created, incident written",
    )


def test_daemon_runs_without_history_and_api_answers_503_when_database_is_unreadable(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """A history file that is not a database: one log line naming it, probing goes on, the
    history endpoints answer 503 with the reason, the status page flags it; no traceback."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    db = tmp_path / "h.db"
    db.write_bytes(b"this is not an SQLite database\n" * 100)
    daemon = start_daemon(config, extra_args=["--history-db", str(db)])
    wait_for(lambda: daemon.value("contact_probe_success", channel="one") == 1, "probing")
    for path in ("/api/v1/incidents", "/api/v1/channels/acme/one"):
        answer = daemon.get(path)
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith(f"history unavailable: {db}: file is not a")
    assert "history is off" in daemon.get("/").text
    assert daemon.value("contact_history_available") == 0
    lines = [line for line in daemon.logs().splitlines() if str(db) in line]
    assert len(lines) == 1
    assert "history_unavailable" in lines[0]
    assert "Traceback" not in daemon.logs()
    record(
        "history file is not a database at start",
        "one log line, runs without history, API 503",
        "1 line, 503 with the reason, page flagged",
    )


def test_second_daemon_refused_when_history_database_is_in_use(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """Two daemons on one database: the second exits 2 with a message naming the file and
    the pid of the first, which keeps running."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    db = tmp_path / "h.db"
    first = start_daemon(config, extra_args=["--history-db", str(db)])
    second = subprocess.run(
        [*MONITOR_RUN, "--config", str(config), "--listen", "127.0.0.1:0", "--history-db", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert f"{db} is in use by another contact-monitor (pid {first.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.get("/healthz").status_code == 200
    record(
        "second daemon on the same history database",
        "refused with a clear message",
        "exit 2, file and pid named",
    )


def test_oldest_queued_writes_dropped_and_counted_when_writes_keep_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Callable[..., None]
):
    """While the database cannot be written (its directory replaced by a file), failed
    batches wait in a bounded queue: past the bound the oldest go, and are counted."""
    import asyncio

    from monitor import history as history_module

    monkeypatch.setattr(history_module, "MAX_PENDING_WRITES", 10)
    directory = tmp_path / "data"
    history = history_module.History(directory / "h.db", retention_seconds=86400)
    shutil.rmtree(directory)
    directory.write_text("a file where the directory was")

    async def scenario() -> None:
        for i in range(25):
            history.channel_down("acme", f"c{i}", "web", 1000.0 + i, "timeout", None)
            assert await history.flush() is False

    asyncio.run(scenario())
    assert history.health.write_errors == 25
    assert history.health.dropped == 15
    assert history.health.pending == 10
    assert "data" in (history.health.error or "")
    directory.unlink()
    assert asyncio.run(history.flush()) is True
    assert sorted(i.channel for i in history.incidents()) == [f"c{i}" for i in range(15, 25)]
    record(
        "history writes failing 25 times, queue bound 10",
        "oldest dropped and counted",
        "15 dropped, newest 10 written after",
    )


# --- start and stop as documented ------------------------------------------------------------


def error_lines(daemon: RunningDaemon) -> list[str]:
    return [
        line
        for line in daemon.logs().splitlines()
        if '"level": "error"' in line or "Traceback" in line or line.startswith("ERROR")
    ]


@pytest.mark.parametrize("tz", ["Mars/Olympus", ":/nonexistent/zone", "garbage+5:00x", ""])
def test_daemon_starts_and_probes_whatever_tz_the_process_has(
    tz: str,
    tmp_path: Path,
    start_daemon: Any,
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
    record: Callable[..., None],
):
    """An unknown, absolute-path, malformed or empty TZ: the daemon plans in UTC, shows
    hours in the registry's zone, and probes as usual."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    monkeypatch.setenv("TZ", tz)
    daemon = start_daemon(config)
    wait_for(lambda: daemon.value("contact_probe_success", channel="one") == 1, "probing")
    assert daemon.get("/").status_code == 200
    assert not error_lines(daemon)
    record(f"process TZ={tz!r}", "starts and probes (UTC inside)", "probing, no error lines")


def test_daemon_starts_when_etc_localtime_points_nowhere(
    tmp_path: Path, http_server: HttpServer, free_port_number: int, record: Callable[..., None]
):
    """In a mount namespace where /etc/localtime's target is gone (a slim container), the
    daemon starts, probes and stops with 0."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("one", http_server.url())]))
    zone_dir = Path(os.path.realpath("/etc/localtime")).parent
    command = " ".join(
        [
            f"mount -t tmpfs tmpfs {zone_dir} && exec",
            *MONITOR_RUN,
            f"--config {config} --listen 127.0.0.1:{free_port_number}",
        ]
    )
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", command], stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{free_port_number}/metrics"
    try:
        wait_for(lambda: _scrape_value(url, proc, 'channel="one"', "contact_probe_success"), "up")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, log_path.read_text()
    assert "Traceback" not in log_path.read_text()
    record("/etc/localtime pointing nowhere", "starts, probes, exits 0", "exit 0")


def _scrape_value(url: str, proc: subprocess.Popen[bytes], label: str, name: str) -> bool:
    import httpx

    assert proc.poll() is None, "daemon exited"
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return False
    return any(
        line.startswith(name + "{") and label in line and line.endswith(" 1.0")
        for line in text.splitlines()
    )


@pytest.fixture
def free_port_number() -> int:
    from servers import free_port

    return free_port()


def test_sigterm_lets_probe_in_flight_finish_and_exits_0_without_error_lines(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """SIGTERM while a probe waits for a slow (1.5 s) answer: the probe finishes and is
    recorded, the process exits 0 within timeout + 2 s, and nothing is logged as an error."""
    answered = []

    def slow(handler: Any) -> None:
        time.sleep(1.5)
        page("ok")(handler)
        answered.append(time.monotonic())

    http_server.routes["/slow"] = slow
    config = tmp_path / "channels.yaml"
    # Its own interval and timeout: the first round still starts within the defaults' 2 s.
    slow_site = {**site("slow", http_server.url("/slow")), "interval": "4s", "timeout": "4s"}
    config.write_text(registry([slow_site]))
    daemon = start_daemon(config)
    before = len(http_server.requests)
    wait_for(lambda: len(http_server.requests) > before, "a probe in flight")
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(timeout=20)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 4 + 2
    assert answered
    after_stop = daemon.logs().split('"event": "stopping"', 1)[1]
    assert '"event": "probe_finished"' in after_stop
    assert '"success": true' in after_stop
    assert not error_lines(daemon)
    record(
        "SIGTERM with a probe in flight (1.5 s answer)",
        "probe finishes, exit 0 in timeout + 2 s, no errors",
        f"probe recorded, exit 0 after {elapsed:.1f} s",
        f"{elapsed:.1f}",
    )


def stalled_scraper(port: int) -> socket.socket:
    """A client that asks for /metrics (plain text) and reads nothing: its receive buffer is
    made small before connecting, so the window stays small and the daemon's send stalls."""
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    stuck.connect(("127.0.0.1", port))
    stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: monitor\r\n\r\n")
    return stuck


def test_sigterm_exits_0_in_time_when_a_client_stopped_reading_metrics(
    tmp_path: Path, start_daemon: Any, hardening_report: list[dict[str, Any]]
):
    """A scraper that asked for 3 MB of /metrics and stopped reading holds a connection
    the web server cannot finish: after a bounded grace it is cut off; exit 0 within
    timeout + 2 s, no error lines."""
    phones = [{"id": f"p{i}", "kind": "phone", "phone": "8 800 555-89-82"} for i in range(3000)]
    config = tmp_path / "channels.yaml"
    config.write_text(registry(phones, interval="5s"))
    daemon = start_daemon(config)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round", 30)
    stuck = stalled_scraper(daemon.port)
    time.sleep(2)  # the daemon fills the socket's buffers and waits
    try:
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=20)
        elapsed = time.monotonic() - started
    finally:
        stuck.close()
    hardening_report.append(
        {
            "area": "Daemon faults",
            "case": "SIGTERM with a scraper that stopped reading 3 MB of /metrics",
            "expected": "exit 0 within timeout + 2 s, no error lines",
            "observed": f"exit {code} after {elapsed:.1f} s",
            "seconds": f"{elapsed:.1f}",
        }
    )
    assert code == 0
    assert elapsed < 2 + 2
    assert not error_lines(daemon)


def test_second_sigterm_exits_at_once_when_probes_are_still_in_flight(
    tmp_path: Path, start_daemon: Any, silent_server: Any, record: Callable[..., None]
):
    """A probe waits on a silent peer with a 30 s timeout: the first SIGTERM starts a clean
    stop that would wait for it, a second one exits at once (status 1)."""
    config = tmp_path / "channels.yaml"
    url = f"http://127.0.0.1:{silent_server.port}/"
    silent = {**site("silent", url), "interval": "30s", "timeout": "30s"}  # planned within 2 s
    config.write_text(registry([silent]))
    daemon = start_daemon(config)
    wait_for(lambda: silent_server.connections > 0, "the probe in flight")
    daemon.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert daemon.proc.poll() is None  # still waiting for the probe
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(timeout=10)
    assert time.monotonic() - started < 1.5
    assert code == 1
    assert "stopping_now" in daemon.logs()
    record("second SIGTERM while a 30 s probe is in flight", "exit at once", "exit 1 in < 1.5 s")


# --- the web side cannot starve the probes ---------------------------------------------------


@pytest.fixture
def open_files_limit() -> Iterator[Any]:
    """Sets this process's soft RLIMIT_NOFILE for the daemon started next (the child
    inherits it), then restores it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower(limit: int) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    yield lower
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def probes(daemon: RunningDaemon, channel: str, result: str) -> float:
    return daemon.value("contact_probes_total", channel=channel, result=result) or 0.0


def test_healthy_channel_stays_up_when_600_idle_clients_meet_a_512_file_limit(
    tmp_path: Path,
    start_daemon: Any,
    http_server: HttpServer,
    open_files_limit: Any,
    hardening_report: list[dict[str, Any]],
):
    """600 idle connections against a daemon limited to 512 open files: the web side holds
    no more than its cap and closes the rest at once, the healthy channel's probes (1 s)
    never fail, and the idle clients are dropped after the request-head timeout."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("healthy", http_server.url())]))
    open_files_limit(512)
    daemon = start_daemon(config)
    open_files_limit(20000)
    wait_for(lambda: probes(daemon, "healthy", "success") >= 2, "probing")
    cap = daemon.value("contact_web_connections_max")
    assert cap is not None
    assert cap < 512
    idle = []
    for _ in range(600):
        try:
            idle.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
        except OSError:
            break
    opened = len(idle)
    time.sleep(REQUEST_HEAD_TIMEOUT_SECONDS + 2)  # probes run meanwhile; then idle ones go
    closed = 0
    for conn in idle:
        conn.settimeout(0.5)
        try:
            closed += conn.recv(1) == b""
        except OSError:
            closed += 1
        conn.close()
    text = daemon.metrics_text()
    failed = probes(daemon, "healthy", "failure")
    rejected = daemon.value("contact_web_connections_rejected_total", text)
    hardening_report.append(
        {
            "area": "Daemon faults",
            "case": f"{opened} idle client connections, open-files limit 512",
            "expected": "web side capped below the limit, no healthy probe fails",
            "observed": f"cap {cap:.0f}, {rejected:.0f} refused at once, {failed:.0f} failed "
            f"probes, all idle closed: {closed == opened}",
            "seconds": f"{REQUEST_HEAD_TIMEOUT_SECONDS + 2:.0f}",
        }
    )
    assert opened == 600
    assert failed == 0
    assert daemon.value("contact_channel_up", text, channel="healthy") == 1
    assert rejected
    assert rejected >= 600 - cap
    assert closed == opened
    assert "local_resources" not in daemon.logs()


def test_client_that_trickles_its_request_head_is_dropped_while_others_are_served(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """A client sending its request line one byte a second (slowloris) is closed after the
    request-head timeout; other clients are answered meanwhile."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("healthy", http_server.url())]))
    daemon = start_daemon(config)
    slow = socket.create_connection(("127.0.0.1", daemon.port))
    started = time.monotonic()
    dropped_after = None
    for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        try:
            slow.sendall(bytes([byte]))
        except OSError:
            dropped_after = time.monotonic() - started
            break
        assert daemon.get("/healthz").status_code == 200
        time.sleep(1)
    slow.close()
    assert dropped_after is not None
    assert dropped_after < REQUEST_HEAD_TIMEOUT_SECONDS + 4
    record(
        "client trickling its request head, 1 byte/s",
        "dropped after the head timeout",
        f"dropped after {dropped_after:.0f} s, others served",
        f"{dropped_after:.0f}",
    )


def test_probe_failing_for_lack_of_file_descriptors_is_local_resources_not_down(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer, record: Callable[..., None]
):
    """The daemon's own open-files limit squeezed to what it has open (`prlimit`): probes
    fail with `local_resources`, which counts against no channel (still up, failures not
    counted) and is logged once; when the limit is back, probing goes on."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "channels.yaml"
    config.write_text(registry([site("healthy", http_server.url())]))
    daemon = start_daemon(config)
    wait_for(lambda: probes(daemon, "healthy", "success") >= 2, "probing")
    pid = daemon.proc.pid
    # Below what it has open: a descriptor freed meanwhile (a probe's socket closing) must
    # not leave a number free for the next probe.
    squeezed = len(os.listdir(f"/proc/{pid}/fd")) - 4
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={squeezed}:20000"], check=True)
    time.sleep(7)  # three or more probes at the 2 s interval
    subprocess.run(["prlimit", f"--pid={pid}", "--nofile=20000:20000"], check=True)
    successes = probes(daemon, "healthy", "success")
    wait_for(lambda: probes(daemon, "healthy", "success") > successes + 1, "probing again")
    text = daemon.metrics_text()
    assert daemon.value("contact_probes_local_failures_total", text) >= 3
    assert probes(daemon, "healthy", "failure") == 0
    assert daemon.value("contact_channel_up", text, channel="healthy") == 1
    assert daemon.logs().count("probes_short_of_local_resources") == 1
    assert "probes_local_resources_recovered" in daemon.logs()
    record(
        "probes hit EMFILE (prlimit to the files open)",
        "local_resources, not counted, logged once",
        "channel stayed up, 0 failures counted, 1 log line",
    )


def test_client_that_stops_reading_its_metrics_is_cut_off_after_the_write_stall_timeout(
    tmp_path: Path, start_daemon: Any, record: Callable[..., None]
):
    """A scraper that asks for 3 MB of /metrics and reads none of it holds its connection
    only until the write-stall timeout; the daemon goes on serving others."""
    phones = [{"id": f"p{i}", "kind": "phone", "phone": "8 800 555-89-82"} for i in range(3000)]
    config = tmp_path / "channels.yaml"
    config.write_text(registry(phones, interval="5s"))
    daemon = start_daemon(config)
    wait_for(lambda: daemon.get("/readyz").status_code == 200, "first round", 30)
    stuck = stalled_scraper(daemon.port)
    started = time.monotonic()
    time.sleep(REQUEST_HEAD_TIMEOUT_SECONDS + 2)  # past the head and keep-alive timeouts
    assert daemon.get("/healthz").status_code == 200
    connections = lambda: daemon.value("contact_web_connections") or 0  # noqa: E731
    assert connections() >= 2  # the stuck one (still stalled) and this scrape's
    wait_for(lambda: connections() <= 1, "stuck client cut off", WRITE_STALL_TIMEOUT_SECONDS + 15)
    elapsed = time.monotonic() - started
    stuck.close()
    assert WRITE_STALL_TIMEOUT_SECONDS - 1 < elapsed < WRITE_STALL_TIMEOUT_SECONDS + 15
    record(
        "scraper stops reading a 3 MB /metrics answer",
        "cut off after the write-stall timeout",
        f"cut off after {elapsed:.0f} s",
        f"{elapsed:.0f}",
    )
