"""Reads SIPp's message trace (`-trace_msg`): what was sent and received, and when, and
turns it into the outcome of a test call or an OPTIONS."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

__all__ = ["CallOutcome", "TracedMessage", "outcome", "parse_trace"]

_SEPARATOR = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)
_DIRECTION = re.compile(r"^\w+ message (sent|received)", re.M)
_STATUS = re.compile(r"^SIP/2\.0 (\d{3})\b", re.M)
_REQUEST = re.compile(r"^([A-Z]+) \S+ SIP/2\.0", re.M)
_CALL_ID = re.compile(r"^(?:Call-ID|i):\s*(\S+)", re.M | re.I)
_CSEQ = re.compile(r"^(?:CSeq|cseq):\s*\d+\s+([A-Z]+)", re.M | re.I)
# RFC 3326: Reason: Q.850 ;cause=17 ;text="User busy"
_Q850 = re.compile(r"^Reason:[^\n]*?Q\.850\s*;\s*cause\s*=\s*(\d{1,3})", re.M | re.I)


@dataclass(frozen=True)
class TracedMessage:
    at: float  # epoch seconds, from the trace's timestamp
    sent: bool
    method: str | None  # for a request
    status: int | None  # for a response
    cseq_method: str | None
    q850_cause: int | None
    call_id: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    """What the far end answered: the status that decided, the post-dial delay (INVITE to
    first ringing or answer), the Q.850 cause; `reached` at 180/183/200 (the line works)."""

    reached: bool
    status_code: int | None  # None: no final or ringing answer at all
    post_dial_delay_seconds: float | None
    q850_cause: int | None
    ended_with: str | None = None  # CANCEL (before an answer) or BYE (after one) we sent


def parse_trace(text: str) -> list[TracedMessage]:
    """Every message of a trace, in order; unreadable blocks are skipped."""
    parts = _SEPARATOR.split(text)
    messages = []
    for stamp, block in zip(parts[1::2], parts[2::2], strict=False):
        direction = _DIRECTION.search(block)
        if direction is None:
            continue
        at = datetime.datetime.fromisoformat(stamp).timestamp()
        status, request = _STATUS.search(block), _REQUEST.search(block)
        cseq, q850, call_id = _CSEQ.search(block), _Q850.search(block), _CALL_ID.search(block)
        messages.append(
            TracedMessage(
                at,
                direction.group(1) == "sent",
                request.group(1) if request and not status else None,
                int(status.group(1)) if status else None,
                cseq.group(1).upper() if cseq else None,
                int(q850.group(1)) if q850 else None,
                call_id.group(1) if call_id else None,
            )
        )
    return messages


def outcome(messages: list[TracedMessage], method: str = "INVITE") -> CallOutcome:
    """The outcome of the `method` transaction(s) in the trace: the first 180/183/200 wins
    (only 200 for OPTIONS); else the last final answer that was not a digest challenge
    answered by another request, nor the 487 that ends a call we cancelled (RFC 3261
    §9.1); else nothing (a timeout)."""
    reached_codes = (180, 183, 200) if method == "INVITE" else (200,)
    ours = next((m.call_id for m in messages if m.sent and m.method == method), None)
    # A stray answer to another call (a late 487 to an earlier test call) is not ours.
    messages = [m for m in messages if m.call_id == ours]
    last_request_at: float | None = None
    answered_since = True  # a request sent again before any answer is a retransmission
    final: TracedMessage | None = None
    for i, message in enumerate(messages):
        if message.sent and message.method == method:
            if answered_since:
                last_request_at, answered_since = message.at, False
            continue
        if not message.sent and message.cseq_method == method:
            answered_since = True
        if message.sent or message.status is None or message.cseq_method != method:
            continue
        delay = round(message.at - last_request_at, 6) if last_request_at is not None else None
        if message.status in reached_codes:
            ended = next(
                (m.method for m in messages[i:] if m.sent and m.method in ("CANCEL", "BYE")),
                None,
            )
            return CallOutcome(True, message.status, delay, message.q850_cause, ended)
        cancelled = any(m.sent and m.method == "CANCEL" for m in messages[:i])
        if message.status == 487 and cancelled:
            continue  # the answer to our own CANCEL (we gave up waiting), not the far end's
        if message.status >= 300:
            retried = message.status in (401, 407) and any(
                m.sent and m.method == method for m in messages[i + 1 :]
            )
            if not retried:
                final = message
    if final is None:
        return CallOutcome(False, None, None, None)
    return CallOutcome(False, final.status, None, final.q850_cause)
