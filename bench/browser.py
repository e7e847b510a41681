"""The cost of a rendered check (`render: browser`): CPU seconds and peak RSS of the browser
(Chromium's processes and Playwright's driver) per check, one run.

`make bench-browser` (or `.venv/bin/python bench/browser.py`) serves a script-rendered
contacts page on 127.0.0.1, starts the monitor's `BrowserPool` once, then scans the page as
a `render: browser` source: first one check at a time, then `defaults.browser.concurrency`
(2) at once. CPU is read from /proc for every process of the browser's tree every 20 ms
(processes that end with their context keep their last reading), so a renderer's work is
counted even though it exits before the next check. Writes bench/results/browser.json and
bench/results/browser.md. Talks to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

from monitor.config import Defaults, Source
from monitor.probers import make_probe_context, probe_source

RESULTS = Path(__file__).resolve().parent / "results"
CORES = 2
SHARE = 0.5  # of the machine's CPU an operator gives to rendering, the rest to everything else
INTERVALS = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600}

# A page built as the large sites build theirs: a JSON state blob, a script that renders it,
# a stylesheet, some markup around, and a request for more after load.
PAGE = """<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Контакты</title>
<style>body{font:15px system-ui;margin:0} .card{padding:12px;border:1px solid #ddd;margin:8px}
 header,footer{background:#eee;padding:16px}
 .grid{display:grid;grid-template-columns:1fr 1fr}</style>
<script id="__STATE__" type="application/json">%(state)s</script></head>
<body><header>Озон · Помощь</header><main id="app">Загрузка…</main><footer id="more"></footer>
<script>
const state = JSON.parse(document.getElementById('__STATE__').textContent);
const app = document.getElementById('app');
app.innerHTML = '<div class="grid">' + state.departments.map(d =>
  `<div class="card"><h2>${d.name}</h2><p>Телефон: <a href="tel:${d.tel}">${d.phone}</a></p>
   <p>E-mail: <a href="mailto:${d.email}">${d.email}</a></p><p>${d.hours}</p></div>`).join('') +
  '</div>';
window.addEventListener('load', async () => {
  const more = await (await fetch('/api/more')).json();
  document.getElementById('more').textContent = more.note;
});
</script></body></html>"""
DEPARTMENTS = [
    {
        "name": f"Отдел {i}",
        "phone": f"8 800 555-{i:02d}-{(i * 7) % 100:02d}",
        "tel": f"+7800555{i:02d}{(i * 7) % 100:02d}",
        "email": f"dept{i}@ozon.ru",
        "hours": "пн–пт 09:00–18:00",
    }
    for i in range(1, 41)
]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/more":
            body, kind = json.dumps({"note": "Чат поддержки — в приложении"}).encode(), "json"
        else:
            state = json.dumps({"departments": DEPARTMENTS}, ensure_ascii=False)
            body, kind = (PAGE % {"state": state}).encode(), "html"
        self.send_response(200)
        self.send_header("Content-Type", f"text/{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class TreeMeter:
    """CPU seconds and peak memory of this process's children (Playwright's driver, Chromium
    and everything Chromium starts), sampled in a thread: CPU every 20 ms, memory (summed
    PSS, as the pool's cap reads it; and summed RSS, which counts shared pages in every
    process) every 250 ms."""

    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}  # pid -> last user+system seen
        self.peak_pss = self.peak_rss = self.peak_driver_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset_peaks(self) -> None:
        self.peak_pss = self.peak_rss = self.peak_driver_pss = 0

    def cpu_seconds(self) -> float:
        self._sample_cpu()
        return sum(self.cpu.values())

    def _sample_cpu(self) -> None:
        for proc in psutil.Process().children(recursive=True):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.cpu[proc.pid] = max(self.cpu.get(proc.pid, 0.0), times.user + times.system)

    def _sample_memory(self) -> None:
        pss = rss = driver = 0
        for proc in psutil.Process().children(recursive=True):
            try:
                info = proc.memory_full_info()
                is_driver = "playwright" in " ".join(proc.cmdline()[:2])
            except psutil.Error:
                continue
            pss, rss = pss + info.pss, rss + info.rss
            driver += info.pss if is_driver else 0
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.peak_driver_pss = max(self.peak_driver_pss, driver)

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            self._sample_cpu()
            if ticks % 12 == 0:
                self._sample_memory()
            ticks += 1
            time.sleep(0.02)


async def measure(url: str, checks: int, concurrency: int) -> dict[str, Any]:
    defaults = Defaults.model_validate(
        {"timeout": "20s", "browser": {"concurrency": concurrency, "screenshots": 0}}
    )
    ctx = make_probe_context(defaults, Path(tempfile.gettempdir()))  # no screenshots kept
    source = Source(id="contacts", url=url, render="browser")
    assert ctx.browser is not None
    with TreeMeter() as meter:
        try:
            launch_started, cpu0 = time.perf_counter(), meter.cpu_seconds()
            first = await probe_source(source, ctx)  # starts the browser
            launch = {
                "wall": time.perf_counter() - launch_started,
                "cpu": meter.cpu_seconds() - cpu0,
            }
            assert first.success, first
            meter.reset_peaks()
            # The loop's own thread: the meter's thread is the benchmark's, not the monitor's.
            cpu_before, own_before = meter.cpu_seconds(), time.thread_time()
            started = time.perf_counter()
            # All at once: the pool lets `concurrency` pages open, the rest wait their turn.
            results = await asyncio.gather(*(probe_source(source, ctx) for _ in range(checks)))
            wall = time.perf_counter() - started
            cpu = meter.cpu_seconds() - cpu_before
            own = time.thread_time() - own_before
        finally:
            await ctx.browser.close()
    failed = [r for r in results if not r.success]
    phones = {r.details.get("phones") for r in results}
    return {
        "concurrency": concurrency,
        "checks": checks,
        "failed": len(failed),
        "phones_found": sorted(p for p in phones if p is not None),
        "first_check_with_launch": {k: round(v, 3) for k, v in launch.items()},
        "wall_seconds": round(wall, 3),
        "check_seconds_median": round(statistics.median(r.duration_seconds for r in results), 3),
        "browser_cpu_seconds_per_check": round(cpu / checks, 4),
        "monitor_cpu_seconds_per_check": round(own / checks, 4),
        "peak_pss_mb": round(meter.peak_pss / 2**20, 1),
        "peak_pss_mb_driver": round(meter.peak_driver_pss / 2**20, 1),
        "peak_rss_sum_mb": round(meter.peak_rss / 2**20, 1),
    }


def capacity(cpu_per_check: float) -> dict[str, int]:
    """Rendered sources a 2-core machine affords per interval with SHARE of its CPU."""
    per_second = CORES * SHARE / cpu_per_check
    return {name: int(per_second * seconds) for name, seconds in INTERVALS.items()}


def report(runs: list[dict[str, Any]], load: tuple[float, ...]) -> str:
    lines = [
        "# Rendered checks (`render: browser`): cost per check",
        "",
        f"One run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
        f"{psutil.cpu_count()} cores, load average at start {load[0]:.2f} (a shared machine).",
        "",
        "| pages at once | checks | failed | median check s | browser CPU s/check "
        "| monitor CPU s/check | peak memory MB (PSS) | of it the driver | RSS summed MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['concurrency']} | {run['checks']} | {run['failed']} "
            f"| {run['check_seconds_median']} | {run['browser_cpu_seconds_per_check']} "
            f"| {run['monitor_cpu_seconds_per_check']} | {run['peak_pss_mb']} "
            f"| {run['peak_pss_mb_driver']} | {run['peak_rss_sum_mb']} |"
        )
    worst = max(
        r["browser_cpu_seconds_per_check"] + r["monitor_cpu_seconds_per_check"] for r in runs
    )
    lines += [
        "",
        f"Starting the browser (first check included): {runs[0]['first_check_with_launch']}.",
        "",
        f"Capacity at {worst:.3f} CPU s per check (browser + monitor, the worse run), with "
        f"{int(SHARE * 100)} % of {CORES} cores for rendering:",
        "",
        "| interval | rendered sources |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in capacity(worst).items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/contacts"
    load = os.getloadavg()
    try:
        runs = [asyncio.run(measure(url, args.checks, c)) for c in (1, 2)]
    finally:
        server.shutdown()
        server.server_close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "browser.json").write_text(json.dumps({"runs": runs, "load": load}, indent=2))
    text = report(runs, load)
    (RESULTS / "browser.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
