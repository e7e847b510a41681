"""Probe timing under the daemon's own web load: 2,000 loopback channels (the benchmark's
mix of HTTP, HTTPS, MX and SMTP) with 30 days of history, first quiet, then with four
clients reloading the status page `/` and four hammering `/metrics` with basic auth, in one
run of one daemon. Reports probe lag p50/p99 and failed probes of healthy channels (every
target is healthy: any failure is one the daemon caused itself) for each phase.

`.venv/bin/python bench/load.py` (nginx, dnsmasq and curl from Debian, as `make bench`
installs them) writes bench/results/load.json and load.md. Loopback only; stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from run import histogram_quantile, mixed_kinds, write_registry
from targets import free_port, running_targets

RESULTS = Path(__file__).resolve().parent / "results"
USER, PASSWORD = "prometheus", "bench-secret"
HISTORY_DAYS = 30


def seed_history(path: Path, org: str, channels: list[str], days: int) -> int:
    """An hourly roll-up for every channel over `days` days, as 30 days of running leave."""
    from monitor.history import SCHEMA

    now_hour = int(time.time() // 3600 * 3600)
    rows = [
        (org, ident, now_hour - h * 3600, 60, h % 97 == 0, 6.0, 0.2)
        for ident in channels
        for h in range(days * 24)
    ]
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT OR REPLACE INTO rollup VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def web_config(work: Path) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    path = work / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    return path


def scrape(url: str) -> str:
    return httpx.get(url + "/metrics", auth=(USER, PASSWORD), timeout=60).text


def counters(text: str) -> dict[str, Any]:
    """Lag buckets of channel probes and probe counts by result, from one scrape."""
    buckets: dict[float, float] = {}
    results = {"success": 0.0, "failure": 0.0}
    local = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "contact_scheduler_lag_seconds_bucket" and s.labels["job"] == "channel":
                buckets[float(s.labels["le"])] = s.value
            elif s.name == "contact_probes_total":
                results[s.labels["result"]] += s.value
            elif s.name == "contact_probes_local_failures_total":
                local = s.value
    return {"buckets": buckets, "results": results, "local": local}


def phase(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, Any]:
    delta = [(le, after["buckets"][le] - before["buckets"].get(le, 0.0)) for le in after["buckets"]]
    probes = sum(after["results"].values()) - sum(before["results"].values())
    return {
        "seconds": round(seconds, 1),
        "probes": int(probes),
        "lag_p50_seconds": round(histogram_quantile(0.5, delta), 4),
        "lag_p99_seconds": round(histogram_quantile(0.99, delta), 4),
        "failed_probes": int(after["results"]["failure"] - before["results"]["failure"]),
        "local_resources_failures": int(after["local"] - before["local"]),
    }


def start_clients(url: str, work: Path) -> list[subprocess.Popen[bytes]]:
    """Four `/` reloaders and four `/metrics` scrapers (gzip, as Prometheus asks), each a
    curl loop in a process group of its own (stopped with one signal), writing one status
    code a request to `clients-<what>-<i>.log`."""
    auth = f"-u {USER}:{PASSWORD}"
    loops = {
        "page": f'curl -s -o /dev/null -w "%{{http_code}}\\n" {auth} "{url}/"',
        "metrics": f'curl -s -o /dev/null -w "%{{http_code}}\\n" {auth} '
        f'-H "Accept-Encoding: gzip" "{url}/metrics"',
    }
    return [
        subprocess.Popen(
            ["sh", "-c", f"while :; do {loops[what]} >> clients-{what}-{i}.log; done"],
            start_new_session=True,
            cwd=work,
        )
        for what in ("page", "metrics")
        for i in range(4)
    ]


def client_answers(work: Path, what: str) -> dict[str, int]:
    codes = [c for f in work.glob(f"clients-{what}-*.log") for c in f.read_text().split()]
    return {"requests": len(codes), "ok": codes.count("200")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="contact-load-") as tmp:
        work = Path(tmp)
        with running_targets(work / "targets") as targets:
            config = write_registry(
                work / "channels.yaml", mixed_kinds(args.channels), targets, args.interval
            )
            registry = yaml.safe_load(config.read_text())
            idents = [c["id"] for c in registry["organizations"][0]["channels"]]
            seeded = seed_history(work / "history.sqlite3", "bench", idents, HISTORY_DAYS)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = (work / "daemon.log").open("wb")
            daemon = subprocess.Popen(
                [
                    *(sys.executable, "-m", "monitor", "run", "--config", str(config)),
                    *("--listen", f"127.0.0.1:{port}", "--web-config", str(web_config(work))),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                result = measure(url, args, daemon.pid, work)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=60)
                log.close()
    result.update(
        {
            "channels": args.channels,
            "interval_seconds": args.interval,
            "history_rows": seeded,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        }
    )
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "load.md").write_text(markdown(result))
    print(markdown(result))


def measure(url: str, args: argparse.Namespace, pid: int, work: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/healthz", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("daemon did not start")
        time.sleep(0.2)
    time.sleep(args.interval + 5)  # the first round, spread over one interval
    start = counters(scrape(url))
    time.sleep(args.seconds)
    quiet_end = counters(scrape(url))
    clients = start_clients(url, work)
    try:
        loaded_start = counters(scrape(url))
        began = time.monotonic()
        time.sleep(args.seconds)
        loaded_end = counters(scrape(url))
        loaded_seconds = time.monotonic() - began
    finally:
        for client in clients:
            os.killpg(client.pid, signal.SIGTERM)
            client.wait()
    loaded = phase(loaded_start, loaded_end, loaded_seconds)
    loaded["page_requests"] = client_answers(work, "page")
    loaded["metrics_requests"] = client_answers(work, "metrics")
    return {"quiet": phase(start, quiet_end, args.seconds), "loaded": loaded}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Load: {result['channels']} channels every {result['interval_seconds']:g} s, "
        f"{result['history_rows']} hourly history rows ({HISTORY_DAYS} days); {result['machine']}",
        "",
        "| phase | seconds | probes | lag p50 (s) | lag p99 (s) | failed probes "
        "| local_resources |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (("quiet", "no web clients"), ("loaded", "4 × `/` + 4 × auth `/metrics`")):
        p = result[name]
        lines.append(
            f"| {label} | {p['seconds']} | {p['probes']} | {p['lag_p50_seconds']} | "
            f"{p['lag_p99_seconds']} | {p['failed_probes']} | {p['local_resources_failures']} |"
        )
    loaded = result["loaded"]
    lines += [
        "",
        f"Clients served meanwhile: `/` {loaded['page_requests']['ok']} of "
        f"{loaded['page_requests']['requests']} answered 200, `/metrics` "
        f"{loaded['metrics_requests']['ok']} of {loaded['metrics_requests']['requests']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
