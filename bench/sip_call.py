"""What one SIP test call costs the machine: CPU and peak memory of the SIPp process per
call, and the daemon's own CPU around it, against Kamailio and a ringing SIPp far end on
loopback (the test suite's SIP network). One run; writes bench/results/sip-call.md, or
with `--transport tls` bench/results/sip-call-tls.md: the trunk is then Kamailio's TLS
listener, and the daemon's CPU includes the TLS handshake and relay of each call.

    .venv/bin/python bench/sip_call.py [--calls 40] [--concurrency 4] [--transport tls]
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

import trustme

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sip_network import PASSWORD, SipNetwork  # noqa: E402

import monitor.sip.runner  # noqa: E402
from monitor.config import Defaults, PhoneChannel  # noqa: E402
from monitor.probers import make_probe_context, probe_channel  # noqa: E402
from monitor.sip.budget import CallBudget  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def calls(
    network: SipNetwork, count: int, concurrency: int, folder: Path, transport: str
) -> list:
    os.environ["SIP_PASSWORD"] = PASSWORD
    defaults = Defaults.model_validate(
        {
            "timeout": "5s",
            "tls": {"ca_file": "ca.pem"},  # the trunk's CA, for --transport tls
            "sip": {
                "trunk": network.trunk(transport),
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
    parser.add_argument("--transport", choices=["udp", "tls"], default="udp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Each SIPp run under GNU time, which appends its peak RSS (KiB) to a file.
        sizes = Path(tmp) / "maxrss.txt"
        wrapper = Path(tmp) / "sipp-timed"
        # (`sipp -v`, asked once whether SIPp has TLS, is not a call.)
        wrapper.write_text(
            '#!/bin/sh\n[ "$1" = -v ] && exec sipp -v\n'
            f'exec /usr/bin/time -f %M -a -o {sizes} sipp "$@"\n'
        )
        wrapper.chmod(0o755)
        monitor.sip.runner.SIPP = str(wrapper)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(Path(tmp) / "ca.pem"))
        network = SipNetwork(Path(tmp), tls_cert=ca.issue_cert("127.0.0.1")).start(["ring"])
        try:
            before_self = resource.getrusage(resource.RUSAGE_SELF)
            before_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            results = asyncio.run(
                calls(network, args.calls, args.concurrency, Path(tmp), args.transport)
            )
            wall = time.perf_counter() - started
            after_self = resource.getrusage(resource.RUSAGE_SELF)
            after_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            # GNU time puts "Command exited with non-zero status 1" before the figure when
            # SIPp counts a call as failed (over TCP it does even when the call went well).
            lines = sizes.read_text().splitlines()
            peaks = sorted(int(line) for line in lines if line.strip().isdigit())
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
        f"{args.calls} calls to a ringing far end through Kamailio on loopback over "
        f"{args.transport.upper()}, "
        f"{args.concurrency} at a time; {ok}/{args.calls} reached the line (180, then CANCEL).\n\n"
        "| measure | value |\n|---|---|\n"
        f"| SIPp CPU per call (user+system) | {kids_cpu / args.calls * 1000:.1f} ms |\n"
        f"| daemon CPU per call (scenario, trace{', TLS relay' * (args.transport == 'tls')}) | "
        f"{self_cpu / args.calls * 1000:.1f} ms |\n"
        f"| peak memory of one SIPp process (max RSS, median / max) | "
        f"{peaks[len(peaks) // 2] / 1024:.1f} / {peaks[-1] / 1024:.1f} MiB |\n"
        f"| wall time per call, {args.concurrency} in flight | "
        f"{wall / args.calls * 1000:.0f} ms |\n"
        f"| median post-dial delay (loopback) | {delays[len(delays) // 2] * 1000:.2f} ms |\n"
    )
    RESULTS.mkdir(exist_ok=True)
    name = "sip-call.md" if args.transport == "udp" else f"sip-call-{args.transport}.md"
    (RESULTS / name).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
