"""The daemon under hostile input: TLS and basic auth on its endpoints, broken registries
on reload, hostile targets beside healthy ones (schedule kept, memory bounded)."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import bcrypt
import hostile_peers as peers
import httpx
import pytest
import trustme
import yaml
from conftest import wait_for
from servers import HttpServer, page

from monitor.cli import main

BROKEN = Path(__file__).parent / "testdata" / "registry"
MEMORY_LIMIT_MB = 300


def write(path: Path, channels: list[dict[str, Any]], **defaults: Any) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"interval": "1s", "timeout": "1s", **defaults},
                "organizations": [{"id": "acme", "channels": channels}],
            }
        )
    )
    return path


@pytest.fixture
def web_config(tmp_path: Path, ca: trustme.CA) -> Path:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    return path


def test_endpoints_need_tls_and_password_when_web_config_is_given(
    tmp_path: Path, web_config: Path, ca_file: Path, start_daemon: Any, http_server: HttpServer
):
    """With --web-config: HTTPS only, 401 without or with wrong credentials, 200 with them."""
    http_server.routes["/"] = page("ok")
    config = write(tmp_path / "r.yaml", [{"id": "s", "kind": "web", "url": http_server.url()}])
    trust = ssl.create_default_context(cafile=str(ca_file))
    daemon = start_daemon(
        config,
        extra_args=["--web-config", str(web_config)],
        scheme="https",
        verify=trust,
        auth=("prometheus", "s3cret"),
    )
    url = f"https://127.0.0.1:{daemon.port}/metrics"
    assert httpx.get(url, verify=trust, timeout=5).status_code == 401
    assert httpx.get(url, verify=trust, auth=("prometheus", "wrong"), timeout=5).status_code == 401
    ok = httpx.get(url, verify=trust, auth=("prometheus", "s3cret"), timeout=5)
    assert ok.status_code == 200
    assert "contact_channel_info" in ok.text
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5)


def test_run_refuses_to_start_when_web_config_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A web config with a plain-text password is a usage error, before anything listens."""
    bad = tmp_path / "web.yml"
    bad.write_text("basic_auth_users: {prometheus: hunter2}\n")
    config = write(tmp_path / "r.yaml", [])
    assert main(["run", "--config", str(config), "--web-config", str(bad)]) == 2
    assert "not a bcrypt hash" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["cert_file", "key_file"])
def test_run_names_the_missing_file_when_web_config_points_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
):
    """A certificate or key that is not there is named, with its field, before anything
    listens."""
    web = tmp_path / "web.yml"
    files = {"cert_file": "server.crt", "key_file": "server.key"}
    files[missing] = "nowhere.pem"
    for field, name in files.items():
        if field != missing:
            (tmp_path / name).write_text("unused")
    web.write_text(
        f"tls_server_config: {{cert_file: {files['cert_file']}, key_file: {files['key_file']}}}\n"
    )
    config = write(tmp_path / "r.yaml", [])
    assert main(["run", "--config", str(config), "--web-config", str(web)]) == 2
    err = capsys.readouterr().err
    assert f"tls_server_config.{missing}: no such file: {tmp_path / 'nowhere.pem'}" in err


def test_last_good_registry_kept_when_reloads_bring_broken_files(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """Every file of the broken corpus is rejected on reload; the good registry keeps running."""
    http_server.routes["/"] = page("ok")
    good = write(
        tmp_path / "channels.yaml", [{"id": "site", "kind": "web", "url": http_server.url()}]
    )
    good_text = good.read_text()
    daemon = start_daemon(good)
    wait_for(lambda: daemon.value("contact_probe_success", channel="site") == 1, "probing")
    broken = sorted(BROKEN.glob("*.yaml"))
    for path in broken:
        shutil.copy(path, good)
        daemon.proc.send_signal(1)  # SIGHUP
        wait_for(
            lambda: daemon.value("contact_config_last_reload_successful") == 0,
            f"{path.name} rejected",
            10,
        )
        good.write_text(good_text)
        daemon.proc.send_signal(1)
        wait_for(
            lambda: daemon.value("contact_config_last_reload_successful") == 1, "good file back", 10
        )
    failures = daemon.value("contact_config_reloads_total", result="failure")
    assert failures >= len(broken)
    assert daemon.value("contact_probe_success", channel="site") == 1
    assert daemon.proc.poll() is None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_memory_bounded_and_schedule_kept_when_hostile_targets_run_beside_healthy_ones(
    tmp_path: Path,
    start_daemon: Any,
    raw_server: Any,
    http_server: HttpServer,
    hardening_report: list[dict[str, Any]],
):
    """Endless bodies, gzip bombs, tarpits and slow peers for 12 s: RSS stays under 300 MB
    and healthy channels keep their 1 s schedule."""
    peers.gzip_bomb_body()
    http_server.routes["/"] = page("ok")
    hostile = [
        peers.endless_body,
        peers.gzip_bomb,
        peers.slow_headers,
        peers.slow_body,
        peers.garbage,
        peers.long_header(1_000_000),
    ]
    channels = [
        {
            "id": f"hostile-{i}-{j}",
            "kind": "web",
            "url": f"http://localhost:{raw_server(behaviour).port}/{j}",
            "expect": {"max_body_bytes": 4 * 1024 * 1024},
        }
        for i, behaviour in enumerate(hostile)
        for j in range(3)
    ]
    channels += [
        {"id": f"healthy-{i}", "kind": "web", "url": http_server.url(f"/?{i}")} for i in range(5)
    ]
    config = write(tmp_path / "r.yaml", channels, concurrency=64, per_host_concurrency=64)
    daemon = start_daemon(config)
    peak, deadline = 0.0, time.monotonic() + 12
    while time.monotonic() < deadline:
        peak = max(peak, rss_mb(daemon.proc.pid))
        time.sleep(0.2)
    probes = [
        daemon.value("contact_probes_total", channel=f"healthy-{i}", result="success")
        for i in range(5)
    ]
    hardening_report.append(
        {
            "area": "Daemon",
            "case": "18 hostile targets beside 5 healthy, 12 s",
            "expected": f"RSS < {MEMORY_LIMIT_MB} MB, healthy every 1 s",
            "observed": f"peak RSS {peak:.0f} MB, healthy probes {min(probes):.0f}"
            f"–{max(probes):.0f}",
            "seconds": "12",
        }
    )
    assert peak < MEMORY_LIMIT_MB
    assert min(probes) >= 10


def test_healthy_channel_keeps_schedule_when_registry_regex_backtracks_on_hostile_page(
    tmp_path: Path,
    start_daemon: Any,
    http_server: HttpServer,
    hardening_report: list[dict[str, Any]],
):
    """`(a+)+$` (exponential for a backtracking engine) against a 5 MB page of `a`s runs in
    linear time under RE2: the hostile channel gets `body_mismatch` fast, a healthy one on the
    same loop keeps its 1 s schedule without a failure."""
    http_server.routes["/hostile"] = page("a" * 5_000_000 + "!", content_type="text/plain")
    http_server.routes["/ok"] = page("ok")
    channels = [
        {
            "id": "hostile",
            "kind": "web",
            "url": http_server.url("/hostile"),
            "expect": {"body_regex": "(a+)+$", "max_body_bytes": 8 * 1024 * 1024},
        },
        {"id": "healthy", "kind": "web", "url": http_server.url("/ok")},
    ]
    daemon = start_daemon(write(tmp_path / "r.yaml", channels))
    wait_for(
        lambda: (
            (daemon.value("contact_probes_total", channel="hostile", result="failure") or 0) >= 3
        ),
        "three hostile probes",
        30,
    )
    text = daemon.metrics_text()
    duration = daemon.value("contact_probe_duration_seconds", text, channel="hostile")
    reason = daemon.value(
        "contact_probe_failure_info", text, channel="hostile", reason="body_mismatch"
    )
    healthy_failed = daemon.value("contact_probes_total", text, channel="healthy", result="failure")
    healthy_ok = daemon.value("contact_probes_total", text, channel="healthy", result="success")
    hardening_report.append(
        {
            "area": "Daemon faults",
            "case": "registry regex `(a+)+$` against a 5 MB page of `a`",
            "expected": "linear time (RE2): body_mismatch, healthy channel unaffected",
            "observed": f"probe {duration:.2f} s, healthy {healthy_ok:.0f} ok / "
            f"{healthy_failed or 0:.0f} failed",
            "seconds": f"{duration:.2f}",
        }
    )
    assert reason == 1
    assert duration < 2
    assert not healthy_failed
    assert healthy_ok >= 3


def served_certificate(port: int) -> bytes:
    """The DER certificate the daemon presents in a TLS handshake (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.getpeercert(binary_form=True) or b""


def test_new_certificate_served_without_restart_when_web_config_files_change(
    tmp_path: Path,
    web_config: Path,
    ca: trustme.CA,
    start_daemon: Any,
    http_server: HttpServer,
    hardening_report: list[dict[str, Any]],
):
    """Certificate and key replaced on disk (cert-manager renewing them): the next TLS
    handshakes present the new certificate, with no restart and no signal."""
    http_server.routes["/"] = page("ok")
    config = write(tmp_path / "r.yaml", [{"id": "s", "kind": "web", "url": http_server.url()}])
    trust = ssl.create_default_context(cafile=None)
    trust.load_verify_locations(cadata=ca.cert_pem.bytes().decode())
    daemon = start_daemon(
        config,
        extra_args=["--web-config", str(web_config)],
        scheme="https",
        verify=trust,
        auth=("prometheus", "s3cret"),
    )
    first = served_certificate(daemon.port)
    renewed = ca.issue_cert("127.0.0.1")
    renewed.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    renewed.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    wait_for(lambda: served_certificate(daemon.port) != first, "renewed certificate served", 15)
    new_der = ssl.PEM_cert_to_DER_cert(renewed.cert_chain_pems[0].bytes().decode())
    assert served_certificate(daemon.port) == new_der
    assert "web_tls_reloaded" in daemon.logs()
    assert daemon.get("/healthz").status_code == 200
    hardening_report.append(
        {
            "area": "Daemon faults",
            "case": "--web-config certificate and key replaced on disk",
            "expected": "new certificate on the next handshakes, no restart",
            "observed": "new certificate served",
            "seconds": "–",
        }
    )


def test_expired_web_certificate_at_start_is_a_warning_in_the_log(
    tmp_path: Path,
    web_config: Path,
    ca: trustme.CA,
    start_daemon: Any,
    http_server: HttpServer,
    hardening_report: list[dict[str, Any]],
):
    """The daemon starts with an expired certificate (a scraper will refuse it) and says so
    in one warning naming the file."""
    http_server.routes["/"] = page("ok")
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)
    expired = ca.issue_cert(
        "127.0.0.1", not_before=past - datetime.timedelta(days=30), not_after=past
    )
    expired.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    expired.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    config = write(tmp_path / "r.yaml", [{"id": "s", "kind": "web", "url": http_server.url()}])
    daemon = start_daemon(
        config,
        extra_args=["--web-config", str(web_config)],
        scheme="https",
        verify=False,
        auth=("prometheus", "s3cret"),
    )
    warnings = [
        line for line in daemon.logs().splitlines() if "web_tls_certificate_expired" in line
    ]
    assert len(warnings) == 1
    assert '"level": "warning"' in warnings[0]
    assert str(tmp_path / "server.crt") in warnings[0]
    hardening_report.append(
        {
            "area": "Daemon faults",
            "case": "--web-config certificate expired at start",
            "expected": "a warning naming the file",
            "observed": "1 warning",
            "seconds": "–",
        }
    )


def test_unknown_users_take_as_long_as_wrong_passwords_and_never_stall_probes(
    tmp_path: Path, start_daemon: Any, http_server: HttpServer
):
    """A flood of wrong passwords and unknown users against a bcrypt (cost 12) password:
    both are answered 401 in about the same time (a dummy hash for unknown names), and a
    healthy channel probed every second misses no probe meanwhile (bcrypt runs off the loop)."""
    http_server.routes["/"] = page("ok")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=12)).decode()
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    config = write(tmp_path / "r.yaml", [{"id": "s", "kind": "web", "url": http_server.url()}])
    daemon = start_daemon(
        config, extra_args=["--web-config", str(web)], auth=("prometheus", "s3cret")
    )
    wait_for(lambda: daemon.value("contact_probe_success", channel="s") == 1, "probing")
    before = daemon.value("contact_probes_total", channel="s", result="success") or 0

    def timed(user: str, i: int) -> float:
        started = time.monotonic()
        answer = httpx.get(daemon.url + "/healthz", auth=(user, f"guess-{i}"), timeout=30)
        assert answer.status_code == 401
        return time.monotonic() - started

    started = time.monotonic()
    wrong = sorted(timed("prometheus", i) for i in range(8))
    unknown = sorted(timed(f"nobody-{i}", i) for i in range(8))
    elapsed = time.monotonic() - started
    text = daemon.metrics_text()
    after = daemon.value("contact_probes_total", text, channel="s", result="success") or 0
    assert daemon.value("contact_probes_total", text, channel="s", result="failure") == 0
    assert after - before >= elapsed * 0.6  # about one a second while bcrypt ran
    assert 0.5 < wrong[4] / unknown[4] < 2.0
    assert min(unknown) > 0.02  # a real bcrypt ran for unknown names too
