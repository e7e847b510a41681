"""What one SIP test call costs the machine: CPU and peak memory of the SIPp process per
call, and the daemon's own CPU around it, against Kamailio and a ringing SIPp far end on
loopback (the test suite's SIP network). One run; writes bench/results/sip-call.md.

    .venv/bin/python bench/sip_call.py [--calls 40] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sip_network import PASSWORD, SipNetwork  # noqa: E402

import monitor.sip.runner  # noqa: E402
from monitor.config import Defaults, PhoneChannel  # noqa: E402
from monitor.probers import make_probe_context, probe_channel  # noqa: E402
from monitor.sip.budget import CallBudget  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def calls(network: SipNetwork, count: int, concurrency: int, folder: Path) -> list:
    os.environ["SIP_PASSWORD"] = PASSWORD
    defaults = Defaults.model_validate(
        {
            "timeout": "5s",
            "sip": {
                "trunk": network.trunk(),
                "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
                "max_concurrent_calls": concurrency,
                "max_calls_per_day": count,
            },
        }
    )
    ctx = make_probe_context(defaults, folder, call_budget=CallBudget())
    line = PhoneChannel(id="bench", kind="phone", phone=network.numbers["ring"], check="sip")
    return await asyncio.gather(*(probe_channel(line, ctx) for _ in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Each SIPp run under GNU time, which appends its peak RSS (KiB) to a file.
        sizes = Path(tmp) / "maxrss.txt"
        wrapper = Path(tmp) / "sipp-timed"
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/time -f %M -a -o {sizes} sipp "$@"\n')
        wrapper.chmod(0o755)
        monitor.sip.runner.SIPP = str(wrapper)
        network = SipNetwork(Path(tmp)).start(["ring"])
        try:
            before_self = resource.getrusage(resource.RUSAGE_SELF)
            before_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            results = asyncio.run(calls(network, args.calls, args.concurrency, Path(tmp)))
            wall = time.perf_counter() - started
            after_self = resource.getrusage(resource.RUSAGE_SELF)
            after_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            peaks = sorted(int(x) for x in sizes.read_text().split())
        finally:
            network.stop()
    ok = sum(r.success is True for r in results)
    kids_cpu = (after_kids.ru_utime + after_kids.ru_stime) - (
        before_kids.ru_utime + before_kids.ru_stime
    )
    self_cpu = (after_self.ru_utime + after_self.ru_stime) - (
        before_self.ru_utime + before_self.ru_stime
    )
    delays = sorted(r.details.get("post_dial_delay_seconds", 0) for r in results)
    report = (
        "# One SIP test call: cost on this machine\n\n"
        f"{args.calls} calls to a ringing far end through Kamailio on loopback, "
        f"{args.concurrency} at a time; {ok}/{args.calls} reached the line (180, then CANCEL).\n\n"
        "| measure | value |\n|---|---|\n"
        f"| SIPp CPU per call (user+system) | {kids_cpu / args.calls * 1000:.1f} ms |\n"
        f"| daemon CPU per call (scenario, trace) | {self_cpu / args.calls * 1000:.1f} ms |\n"
        f"| peak memory of one SIPp process (max RSS, median / max) | "
        f"{peaks[len(peaks) // 2] / 1024:.1f} / {peaks[-1] / 1024:.1f} MiB |\n"
        f"| wall time per call, {args.concurrency} in flight | "
        f"{wall / args.calls * 1000:.0f} ms |\n"
        f"| median post-dial delay (loopback) | {delays[len(delays) // 2] * 1000:.2f} ms |\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sip-call.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
