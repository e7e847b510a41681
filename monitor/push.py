"""Pushes from an outside tester (`check: push`): a contact centre's own call tester or a
CRM reports a channel's state to `POST /api/v1/push/{org}/{channel}` with a bearer token,
and a channel that hears nothing for `push.expect_every` fails with `push_missing`.

A push is untrusted input: the body is capped before it is read whole, checked against a
strict schema, and the token (read from the environment variable `push.token_env` at every
push, so a rotated secret needs no reload) is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.config import Channel
from monitor.model import ProbeResult
from monitor.state import ChannelKey, State

__all__ = ["MAX_PUSH_BYTES", "PushBody", "PushRejected", "accept_push", "overdue_push"]

MAX_PUSH_BYTES = 64 * 1024
log = structlog.get_logger("monitor.push")


class PushBody(BaseModel):
    """`{"success": true, "reason": null, "duration_seconds": 12.3, "details": {}}`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    success: bool
    reason: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")] | None = None
    message: Annotated[str, Field(max_length=500)] | None = None
    duration_seconds: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)] | None = None
    details: Annotated[dict[str, Any], Field(max_length=64)] = {}


@dataclass
class PushRejected(Exception):  # noqa: N818 - reads as "the push is rejected"
    """Why a push was not accepted: the HTTP status and one sentence."""

    status: int
    message: str


def accept_push(
    state: State, org: str, ident: str, authorization: str | None, body: bytes
) -> ProbeResult:
    """Checks and records one push; the recorded result. Raises `PushRejected`: 404 no such
    channel, 421 another replica's channel, 409 not on push, 401 token wrong or unset, 413
    body over `MAX_PUSH_BYTES`, 422 body not the schema (the message says which field)."""
    key: ChannelKey = (org, ident)
    channel = state.channel_defs.get(key)
    if channel is None:
        raise PushRejected(404, f"no channel {org}/{ident}")
    if channel.check != "push" or channel.push is None:
        raise PushRejected(409, f"{org}/{ident} is not on push (check: {channel.check})")
    if key not in state.channels:
        raise PushRejected(421, f"{org}/{ident} belongs to another shard")
    _authorize(channel, authorization)
    if len(body) > MAX_PUSH_BYTES:
        raise PushRejected(413, f"push body over {MAX_PUSH_BYTES} bytes")
    push = _parse(body)
    now = time.time()
    result = ProbeResult(
        push.success,
        push.reason if push.reason or push.success else "push_failure",
        push.message,
        push.duration_seconds or 0.0,
        _details(push.details),
        timestamp=now,
    )
    state.record_channel(key, result)
    state.channels[key].push_received_at = now
    log.info("push_received", org=org, channel=ident, success=push.success, reason=result.reason)
    return result


# Facts a tester may report that become metrics (a call tester's SIP answer); numbers only.
METRIC_DETAILS = ("sip_status_code", "post_dial_delay_seconds", "q850_cause")


def _details(reported: dict[str, Any]) -> dict[str, Any]:
    """The tester's details kept under `reported`, so they can never pose as the monitor's
    own facts (a string `status_code` would break /metrics); only the numbers of
    `METRIC_DETAILS` are lifted out, to be exported like a SIP probe's."""
    lifted = {
        key: reported[key]
        for key in METRIC_DETAILS
        if isinstance(reported.get(key), int | float) and not isinstance(reported[key], bool)
    }
    return {"pushed": True, "reported": reported, **lifted}


def _authorize(channel: Channel, authorization: str | None) -> None:
    assert channel.push is not None
    expected = os.environ.get(channel.push.token_env, "")
    scheme, _, token = (authorization or "").partition(" ")
    if not expected:
        log.warning("push_token_unset", variable=channel.push.token_env)  # its name only
        raise PushRejected(401, f"no token configured: {channel.push.token_env} is not set")
    # compare_digest takes as long whatever the bytes: the token cannot be guessed by timing.
    good = hmac.compare_digest(token.strip().encode(), expected.encode())
    if scheme.lower() != "bearer" or not good:
        raise PushRejected(401, "wrong or missing bearer token")


def _parse(body: bytes) -> PushBody:
    try:
        push = PushBody.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise PushRejected(422, f"invalid push: {where}: {first['msg']}") from None
    try:  # 1e999 parses as infinity, which no JSON view of the channel could show again
        json.dumps(push.details, allow_nan=False)
    except ValueError:
        raise PushRejected(422, "invalid push: details: numbers must be finite") from None
    return push


def overdue_push(state: State, key: ChannelKey, now: float | None = None) -> ProbeResult | None:
    """A `push_missing` failure when the channel heard no push for `push.expect_every` (since
    the daemon started, or the reload that added or redefined the channel, before the
    first); None while pushes are on time."""
    channel = state.channel_defs.get(key)
    current = state.channels.get(key)
    if channel is None or current is None or channel.push is None:
        return None
    every = channel.push.expect_every
    if every is None:
        return None
    now = time.time() if now is None else now
    last = current.push_received_at or max(state.started_at, current.since)
    if now - last <= every:
        return None
    return ProbeResult(
        False,
        "push_missing",
        f"no push for {now - last:.0f}s (expected every {every:g}s)",
        details={"last_push": current.push_received_at},
        timestamp=now,
    )
