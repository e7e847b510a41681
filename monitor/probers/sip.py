"""SIP probes of a phone channel (`check: sip`), made with SIPp through the trunk of
`defaults.sip`:

- `call`: an INVITE to the number; the line works at the first 180/183/200, and the call
  is cancelled (or ACKed and hung up) at once. Refusals map to reasons by status code
  (RFC 3261 §21; DESIGN): 404/410/484/604 `number_not_in_service`, 486/600 `busy`,
  408/480 `no_answer`, 502/503 `trunk_unavailable`; no answer at all `timeout`. A
  deprecated number is expected to be out of service: 404/410 is its healthy state, and
  ringing is `deprecated_reachable`. At most `max_calls_per_day` calls per channel in any
  24 h; past that the probe is skipped (`success=None`), not failed.
- `options`: an OPTIONS to the trunk (the organisation's own SBC/PBX); 200 is up.
"""

from __future__ import annotations

import asyncio
import os
import re

from monitor.config import PhoneChannel, SipDefaults
from monitor.model import ProbeFailure, ProbeResult
from monitor.probers._base import ProbeContext, failure_from_exception, guarded
from monitor.probers.phone import numbering_details
from monitor.sip.runner import Trunk, parse_trunk, run_sipp
from monitor.sip.scenario import CallSpec, call_scenario, options_scenario
from monitor.sip.tls_relay import TrunkConnectError
from monitor.sip.trace import CallOutcome, outcome

__all__ = ["SIP_REASONS", "probe_sip"]

SIP_REASONS = {
    **dict.fromkeys((404, 410, 484, 604), "number_not_in_service"),
    **dict.fromkeys((486, 600), "busy"),
    **dict.fromkeys((408, 480), "no_answer"),
    **dict.fromkeys((502, 503), "trunk_unavailable"),
    **dict.fromkeys((401, 403, 407), "sip_auth_failed"),
}
_NOT_IN_SERVICE = (404, 410)  # what a switched-off number should answer
# SIPp's [authentication] keyword ends at "]" or a blank; CDATA at "]]>".
_SAFE_SECRET = re.compile(r"^[^\s\]\[<>&]{1,256}$")


@guarded
async def probe_sip(channel: PhoneChannel, ctx: ProbeContext) -> ProbeResult:
    """A test call or an OPTIONS, by `channel.sip.mode`; see the module's docstring."""
    sip = ctx.defaults.sip
    if sip is None:
        raise ProbeFailure("sip_not_configured", "check: sip needs defaults.sip.trunk")
    trunk = parse_trunk(sip.trunk)
    username, password = _credentials(sip)
    seconds = max(ctx.timeout_for(channel) - 1.0, 1.0)  # room to read the trace
    if channel.sip.mode == "options":
        return await _options(sip, trunk, username, password, seconds, ctx)
    numbering = numbering_details(channel, ctx.defaults.region)
    if not numbering["number_valid"]:
        raise ProbeFailure("invalid_number", f"{channel.phone} is not a valid number", **numbering)
    limit = channel.sip.max_calls_per_day
    limit = sip.max_calls_per_day if limit is None else limit
    allowed, made = await _spend(ctx, f"{numbering['e164']}/{channel.id}", limit)
    budget = {"calls_in_last_24h": made + allowed, "max_calls_per_day": limit}
    if not allowed:
        return ProbeResult(
            None,
            "call_budget_exhausted",
            f"{made} test calls in the last 24 h, the most max_calls_per_day allows ({limit})",
            details={**numbering, **budget, "skipped": True},
        )
    spec = CallSpec(
        f"{trunk.scheme}:{numbering['e164']}@{trunk.hostport}", sip.from_, username, password,
        answer_wait_ms=int(seconds * 1000) - 500, transport=trunk.transport,
    )  # fmt: skip
    async with ctx.sip_slots:
        traced = await _run(call_scenario(spec), spec.request_uri, trunk, seconds, ctx, budget)
    if not traced:
        raise ProbeFailure(
            "trunk_unreachable", f"nothing could be sent to the trunk {trunk.hostport}", **budget
        )
    return _call_result(channel, outcome(traced, "INVITE"), {**numbering, **budget})


async def _run(
    scenario: str,
    target_uri: str,
    trunk: Trunk,
    seconds: float,
    ctx: ProbeContext,
    details: dict | None = None,
) -> list:
    """`run_sipp` with the probe's TLS context; a TLS connection to the trunk that fails
    becomes the HTTP prober's reason (`tls_untrusted`, `tls_hostname_mismatch`,
    `tls_expired`, `timeout`, …), or `trunk_unreachable` when it is refused or reset (as
    for a TCP trunk); `details.dialled` is then false."""
    try:
        return await run_sipp(scenario, trunk, seconds, ctx.ssl_context, target_uri)
    except TrunkConnectError as exc:
        reason, message = failure_from_exception(exc)
        if reason.startswith("connect_"):
            reason = "trunk_unreachable"  # as a TCP trunk that refuses
        raise ProbeFailure(
            reason,
            f"TLS to the trunk {trunk.hostport} failed, nothing was dialled: {message}",
            **(details or {}),
            dialled=False,
        ) from None


async def _spend(ctx: ProbeContext, key: str, limit: int) -> tuple[bool, int]:
    return await asyncio.to_thread(ctx.call_budget.spend, key, limit)


def _credentials(sip: SipDefaults) -> tuple[str | None, str | None]:
    if sip.auth is None:
        return None, None
    password = os.environ.get(sip.auth.password_env)
    if not password:
        raise ProbeFailure(
            "sip_auth_missing", f"the environment variable {sip.auth.password_env} is not set"
        )
    if not _SAFE_SECRET.match(password) or not _SAFE_SECRET.match(sip.auth.username):
        raise ProbeFailure(
            "sip_auth_unusable",
            "SIP username or password holds a blank or one of [ ] < > &, which SIPp cannot pass",
        )
    return sip.auth.username, password


def _details(call: CallOutcome) -> dict:
    out: dict = {}
    if call.status_code is not None:
        out["sip_status_code"] = call.status_code
    if call.post_dial_delay_seconds is not None:
        out["post_dial_delay_seconds"] = call.post_dial_delay_seconds
    if call.q850_cause is not None:
        out["q850_cause"] = call.q850_cause
    if call.ended_with is not None:
        out["ended_with"] = call.ended_with  # the call was torn down at once: nobody talked
    return out


def _call_result(channel: PhoneChannel, call: CallOutcome, base: dict) -> ProbeResult:
    details = {**base, **_details(call)}
    code = call.status_code
    if channel.status == "deprecated":
        if code in _NOT_IN_SERVICE:
            return ProbeResult(True, details=details)  # switched off, as it should be
        if call.reached or code in (486, 600):
            return ProbeResult(
                False,
                "deprecated_reachable",
                f"the deprecated number still answers the test call (SIP {code})",
                details=details,
            )
    if call.reached:
        return ProbeResult(channel.status == "active", details=details)
    if code is None:
        return ProbeResult(False, "timeout", "no ringing and no final answer", details=details)
    reason = SIP_REASONS.get(code, "sip_status")
    cause = f", Q.850 cause {call.q850_cause}" if call.q850_cause is not None else ""
    return ProbeResult(False, reason, f"the call was refused: SIP {code}{cause}", details=details)


async def _options(
    sip: SipDefaults,
    trunk: Trunk,
    username: str | None,
    password: str | None,
    seconds: float,
    ctx: ProbeContext,
) -> ProbeResult:
    target = f"{trunk.scheme}:{trunk.hostport}"
    wait_ms = int(seconds * 1000) - 500
    scenario = options_scenario(sip.from_, username, password, wait_ms, trunk.transport)
    async with ctx.sip_slots:
        traced = await _run(scenario, target, trunk, seconds, ctx)
    if not traced:
        raise ProbeFailure("trunk_unreachable", f"nothing could be sent to {trunk.hostport}")
    answer = outcome(traced, "OPTIONS")
    details = {k: v for k, v in _details(answer).items() if k != "post_dial_delay_seconds"}
    if answer.reached:
        return ProbeResult(True, details=details)
    if answer.status_code is None:
        return ProbeResult(False, "timeout", "the trunk did not answer OPTIONS", details=details)
    reason = SIP_REASONS.get(answer.status_code, "sip_status")
    return ProbeResult(
        False, reason, f"the trunk answered OPTIONS with SIP {answer.status_code}", details=details
    )
