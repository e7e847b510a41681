"""The benchmark: contact-monitor on 1,000 and 10,000 loopback channels, and per-kind CPU
side by side with Debian's prometheus-blackbox-exporter on the same targets and rate.

`make bench` (or `.venv/bin/python bench/run.py`) writes bench/results/latest.json and
bench/results/latest.md. Everything talks to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from targets import MAIL_DOMAIN, Targets, cpu_seconds, free_port, running_targets

import monitor

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("http", "https", "mx", "smtp")
SCRAPE_INTERVAL = 15.0  # Prometheus's usual scrape interval


# --- registries -----------------------------------------------------------------------------


def channel(kind: str, i: int, t: Targets) -> dict[str, Any]:
    if kind == "http":
        return {
            "id": f"web-{i}",
            "kind": "web",
            "url": f"http://127.0.0.1:{t.http_port}/p{i}",
            "expect": {"body_regex": "Сообщения"},
        }
    if kind == "https":
        return {"id": f"chat-{i}", "kind": "chat", "url": f"https://127.0.0.1:{t.https_port}/c{i}"}
    if kind == "mx":
        return {"id": f"mail-{i}", "kind": "email", "email": f"user{i}@{MAIL_DOMAIN}"}
    return {
        "id": f"smtp-{i}",
        "kind": "email",
        "email": f"box{i}@{MAIL_DOMAIN}",
        "smtp": "connect",
        "smtp_port": t.smtp_port,
    }


def mixed_kinds(n: int) -> list[str]:
    """Mostly web and chat, some e-mail: 60 % http, 25 % https, 10 % mx, 5 % smtp."""
    pattern = ["http"] * 12 + ["https"] * 5 + ["mx"] * 2 + ["smtp"]
    return [pattern[i % len(pattern)] for i in range(n)]


def write_registry(path: Path, kinds: list[str], t: Targets, interval: float) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {
                    "interval": f"{interval:g}s",
                    "timeout": "5s",
                    "concurrency": 512,
                    "per_host_concurrency": 512,
                    "resolver": {"nameservers": ["127.0.0.1"], "port": t.dns_port},
                    "tls": {"ca_file": str(t.ca_file)},
                    "history": {"path": str(path.parent / "history.sqlite3")},
                },
                "organizations": [
                    {
                        "id": "bench",
                        "channels": [channel(kind, i, t) for i, kind in enumerate(kinds)],
                    }
                ],
            }
        )
    )
    return path


# --- the daemon -----------------------------------------------------------------------------


class Daemon:
    def __init__(self, config: Path, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        started = time.monotonic()
        self.log_path = work / "daemon.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "info",  # the reload time is read from the "reloaded" event
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"daemon did not start: {(work / 'daemon.log').read_text()}")
            time.sleep(0.02)
        self.startup_seconds = time.monotonic() - started

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def scrape(self) -> tuple[str, float]:
        """The text and the response time, request sent to last byte received, as curl
        measures it: a Python client's own cost of reading 17 MB is not the daemon's."""
        body = self.log_path.with_name("metrics.txt")
        seconds = self._curl_metrics("-o", str(body), "-w", "%{time_total}")
        return body.read_text(), float(seconds)

    def scrape_gzip(self) -> tuple[float, int]:
        """Response time and bytes sent when the scraper accepts gzip, as Prometheus does;
        curl keeps the compressed body, so its own decompression is not timed."""
        report = self._curl_metrics(
            "-o", os.devnull, "-H", "Accept-Encoding: gzip", "-w", "%{time_total} %{size_download}"
        )
        seconds, size = report.split()
        return float(seconds), int(size)

    def _curl_metrics(self, *options: str) -> str:
        """What curl's `-w` reports of one GET of /metrics."""
        return subprocess.run(
            ["curl", "-sS", *options, self.url + "/metrics"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    def samples(self, text: str, name: str) -> list[Any]:
        return [
            s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
        ]

    def total(self, text: str, name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in self.samples(text, name)
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's interpolation over cumulative (upper bound, count) buckets."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total == 0:
        return 0.0
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def scale_run(n: int, t: Targets, work: Path, interval: float, seconds: float) -> dict[str, Any]:
    """N mixed channels at `interval` for `seconds`: rate, lag, RSS, /metrics, reload."""
    run_dir = work / f"scale-{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = write_registry(run_dir / "channels.yaml", mixed_kinds(n), t, interval)
    daemon = Daemon(config, run_dir)
    try:
        peak, begin, next_scrape = 0.0, time.monotonic(), SCRAPE_INTERVAL
        steady: list[tuple[str, float]] = []  # scrapes once every channel has been probed
        while time.monotonic() - begin < seconds:
            peak = max(peak, daemon.rss_mb())
            if time.monotonic() - begin >= next_scrape:  # as Prometheus would, all along
                scrape = daemon.scrape()
                if next_scrape > interval:
                    steady.append(scrape)
                next_scrape += SCRAPE_INTERVAL
            time.sleep(0.5)
        final = daemon.scrape()
        text, elapsed = final[0], time.monotonic() - begin
        probes = daemon.total(text, "contact_probes_total")
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in daemon.samples(text, "contact_scheduler_lag_seconds_bucket")
            if s.labels["job"] == "channel"
        ]
        lag_max = daemon.total(text, "contact_scheduler_lag_max_seconds", job="channel")
        scrapes = steady or [final]  # a run too short to reach steady state
        gzipped = [daemon.scrape_gzip() for _ in range(3)]
        reload_seconds = measure_reload(daemon, config)
        return {
            "channels": n,
            "interval_seconds": interval,
            "seconds": round(elapsed, 1),
            "configured_probes_per_second": round(n / interval, 1),
            "probes_per_second": round(probes / elapsed, 1),
            # Quantiles interpolate inside histogram buckets: never beyond the observed max.
            "lag_seconds": {
                "p50": round(min(histogram_quantile(0.5, buckets), lag_max), 4),
                "p99": round(min(histogram_quantile(0.99, buckets), lag_max), 4),
                "max": round(lag_max, 4),
            },
            "peak_rss_mb": round(max(peak, daemon.rss_mb()), 1),
            # Each scrape after the first interval: a quarter of the channels changed since
            # the one before, as with Prometheus scraping every 15 s.
            "metrics_ms": round(statistics.median(s[1] for s in scrapes) * 1000, 1),
            "metrics_ms_max": round(max(s[1] for s in scrapes) * 1000, 1),
            "metrics_scrapes": len(scrapes),
            "metrics_bytes": len(scrapes[-1][0].encode()),
            "metrics_gzip_ms": round(statistics.median(g[0] for g in gzipped) * 1000, 1),
            "metrics_gzip_bytes": gzipped[-1][1],
            "startup_seconds": round(daemon.startup_seconds, 2),
            "reload_seconds": round(reload_seconds, 2),
            "cpu_seconds": round(daemon.cpu(), 1),
        }
    finally:
        daemon.stop()


def measure_reload(daemon: Daemon, config: Path) -> float:
    """SIGHUP with one channel renamed: seconds until the daemon logs the reload. Read from
    its log, not /metrics: a scrape of 10,000 channels would compete with the reload."""
    log = daemon.log_path
    seen = log.read_text().count('"event": "reloaded"')
    config.write_text(config.read_text().replace("id: web-0\n", "id: web-0-renamed\n", 1))
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGHUP)
    while time.monotonic() - started < 120:
        if log.read_text().count('"event": "reloaded"') > seen:
            return time.monotonic() - started
        time.sleep(0.02)
    return float("nan")


# --- CPU per probe, side by side ----------------------------------------------------------


def ours_per_kind(kind: str, t: Targets, work: Path, rate: float, seconds: float) -> dict:
    count = int(rate * 10)
    run_dir = work / f"ours-{kind}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = write_registry(run_dir / "channels.yaml", [kind] * count, t, 10.0)
    daemon = Daemon(config, run_dir)
    try:
        time.sleep(12)  # first round spread over one interval; then measure steady state
        text, _ = daemon.scrape()
        probes0, cpu0, target0 = (
            daemon.total(text, "contact_probes_total"),
            daemon.cpu(),
            t.cpu(kind),
        )
        time.sleep(seconds)
        text, _ = daemon.scrape()
        probes = daemon.total(text, "contact_probes_total") - probes0
        failures = daemon.total(text, "contact_probes_total", result="failure")
        return {
            "probes": probes,
            "failures": failures,
            "cpu_ms_per_probe": round((daemon.cpu() - cpu0) * 1000 / max(probes, 1), 3),
            "target_cpu_ms_per_probe": round((t.cpu(kind) - target0) * 1000 / max(probes, 1), 3),
        }
    finally:
        daemon.stop()


BLACKBOX_MODULES = """
modules:
  http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ["Сообщения"]
  https:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config: {{ca_file: "{ca}"}}
  mx:
    prober: dns
    timeout: 5s
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: udp
      query_name: "{domain}"
      query_type: MX
      valid_rcodes: [NOERROR]
  smtp:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220"
        - send: "EHLO bench"
        - expect: "^250 "
        - send: "QUIT"
"""


def blackbox_per_kind(kind: str, t: Targets, work: Path, rate: float, seconds: float) -> dict:
    """blackbox_exporter driven by a real Prometheus, as in production: one /probe scrape per
    target per 10 s interval, `rate` a second in all."""
    run_dir = work / f"blackbox-{kind}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "blackbox.yml").write_text(BLACKBOX_MODULES.format(ca=t.ca_file, domain=MAIL_DOMAIN))
    exporter_port, prometheus_port = free_port(), free_port()
    count = int(rate * 10)
    target = {
        "http": f"http://127.0.0.1:{t.http_port}/p",
        "mx": f"127.0.0.1:{t.dns_port}",
        "https": f"https://127.0.0.1:{t.https_port}/c",
        "smtp": f"127.0.0.1:{t.smtp_port}",
    }[kind]
    (run_dir / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "10s", "scrape_timeout": "6s"},
                "scrape_configs": [
                    {
                        "job_name": "blackbox",
                        "metrics_path": "/probe",
                        "params": {"module": [kind]},
                        # One target per channel; a label keeps equal DNS/SMTP targets apart.
                        "static_configs": [
                            {"targets": [target], "labels": {"n": str(i)}} for i in range(count)
                        ],
                        "relabel_configs": [
                            {"source_labels": ["__address__"], "target_label": "__param_target"},
                            {
                                "target_label": "__address__",
                                "replacement": f"127.0.0.1:{exporter_port}",
                            },
                        ],
                    }
                ],
            }
        )
    )
    exporter = subprocess.Popen(
        [
            "prometheus-blackbox-exporter",
            f"--config.file={run_dir / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{exporter_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={run_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={run_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def scrapes() -> float:
        text = httpx.get(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=10).text
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "prometheus_target_interval_length_seconds_count"
        )

    try:
        time.sleep(14)  # Prometheus spreads its targets over the first interval
        before = (
            scrapes(),
            cpu_seconds([exporter.pid]),
            cpu_seconds([prometheus.pid]),
            t.cpu(kind),
        )
        time.sleep(seconds)
        probes = scrapes() - before[0]
        return {
            "probes": probes,
            "cpu_ms_per_probe": round(
                (cpu_seconds([exporter.pid]) - before[1]) * 1000 / max(probes, 1), 3
            ),
            "driver_cpu_ms_per_probe": round(
                (cpu_seconds([prometheus.pid]) - before[2]) * 1000 / max(probes, 1), 3
            ),
            "target_cpu_ms_per_probe": round((t.cpu(kind) - before[3]) * 1000 / max(probes, 1), 3),
        }
    finally:
        for process in (prometheus, exporter):
            process.terminate()
            process.wait()


def side_by_side(kind: str, t: Targets, work: Path, rate: float, seconds: float) -> dict:
    """Ours, blackbox, blackbox, ours (ABBA): a drift of the machine's speed during the four
    measurements cancels out of the two means, which are what is compared."""
    ours = [ours_per_kind(kind, t, work / "a", rate, seconds)]
    theirs = [blackbox_per_kind(kind, t, work / f, rate, seconds) for f in ("a", "b")]
    ours.append(ours_per_kind(kind, t, work / "b", rate, seconds))
    return {"ours": mean_of(ours), "blackbox": mean_of(theirs), "runs": [*ours, *theirs]}


def mean_of(measurements: list[dict[str, float]]) -> dict[str, float]:
    return {
        key: round(statistics.fmean(m[key] for m in measurements), 3) for key in measurements[0]
    }


# --- report ---------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    def first_line(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else "?"

    return {
        "contact_monitor": monitor.__version__,
        "python": platform.python_version(),
        "blackbox_exporter": first_line("prometheus-blackbox-exporter", "--version"),
        "nginx": first_line("nginx", "-v"),
        "dnsmasq": first_line("dnsmasq", "--version"),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| channels | interval | probes/s (configured) | lag p50 / p99 / max (s) | "
        "peak RSS (MB) | /metrics median / max (ms), bytes | /metrics gzip (ms), bytes | "
        "start-up (s) | reload (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lag = run["lag_seconds"]
        lines.append(
            f"| {run['channels']} | {run['interval_seconds']:g} s | "
            f"{run['probes_per_second']} ({run['configured_probes_per_second']}) | "
            f"{lag['p50']} / {lag['p99']} / {lag['max']} | {run['peak_rss_mb']} | "
            f"{run['metrics_ms']} / {run['metrics_ms_max']}, {run['metrics_bytes']} | "
            f"{run['metrics_gzip_ms']}, {run['metrics_gzip_bytes']} | "
            f"{run['startup_seconds']} | "
            f"{run['reload_seconds']} |"
        )
    lines += [
        "",
        f"CPU per probe at {result['per_kind_rate']} probes/s (ms): the mean of two "
        f"{result['per_kind_seconds']:g} s measurements a side, taken in the order ours, "
        "blackbox, blackbox, ours:",
        "",
        "| kind | contact-monitor | blackbox_exporter | its driver | exporter + driver "
        "| target (floor) | ratio ours / (exporter + driver) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        ours, theirs = result["cpu_ms_per_probe"][kind], result["blackbox_cpu_ms_per_probe"][kind]
        detail = result["detail"][kind]
        lines.append(
            f"| {kind} | {ours} | {detail['blackbox']['cpu_ms_per_probe']} | "
            f"{detail['blackbox']['driver_cpu_ms_per_probe']} | {theirs} | "
            f"{result['target_cpu_ms_per_probe'][kind]} | "
            f"{ours / theirs if theirs else float('nan'):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", default="1000,10000")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=130.0, help="per scale run")
    parser.add_argument("--rate", type=float, default=100.0, help="per-kind probes/s")
    parser.add_argument("--kind-seconds", type=float, default=25.0, help="per measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="contact-monitor-bench-"))
    with running_targets(work / "targets") as targets:
        runs = [
            scale_run(int(n), targets, work, args.interval, args.seconds)
            for n in args.channels.split(",")
        ]
        detail = {}
        for kind in KINDS:
            detail[kind] = side_by_side(kind, targets, work, args.rate, args.kind_seconds)
            print(kind, json.dumps(detail[kind]), file=sys.stderr)
    biggest = runs[-1]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "versions": versions(),
        "runs": runs,
        "channels": biggest["channels"],
        "interval_seconds": biggest["interval_seconds"],
        "probes_per_second": biggest["probes_per_second"],
        "lag_seconds": biggest["lag_seconds"],
        "peak_rss_mb": biggest["peak_rss_mb"],
        "metrics_ms": biggest["metrics_ms"],
        "metrics_ms_max": biggest["metrics_ms_max"],
        "metrics_bytes": biggest["metrics_bytes"],
        "metrics_gzip_ms": biggest["metrics_gzip_ms"],
        "metrics_gzip_bytes": biggest["metrics_gzip_bytes"],
        "startup_seconds": biggest["startup_seconds"],
        "reload_seconds": biggest["reload_seconds"],
        "per_kind_rate": args.rate,
        "per_kind_seconds": args.kind_seconds,
        "cpu_ms_per_probe": {k: detail[k]["ours"]["cpu_ms_per_probe"] for k in KINDS},
        "blackbox_cpu_ms_per_probe": {
            k: round(
                detail[k]["blackbox"]["cpu_ms_per_probe"]
                + detail[k]["blackbox"]["driver_cpu_ms_per_probe"],
                3,
            )
            for k in KINDS
        },
        "target_cpu_ms_per_probe": {k: detail[k]["ours"]["target_cpu_ms_per_probe"] for k in KINDS},
        "detail": detail,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "latest.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
