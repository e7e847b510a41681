"""Reading SIPp's message trace and the trunk URI, without a network."""

from __future__ import annotations

import pytest

from monitor.sip.runner import Trunk, parse_trunk
from monitor.sip.trace import outcome, parse_trace


def block(at: str, sent: bool, first_line: str, cseq: str, call_id: str = "1@x", extra=""):
    direction = "UDP message sent (10 bytes):" if sent else "UDP message received [10] bytes :"
    return (
        f"----------------------------------------------- 2026-11-29 21:00:{at}\n"
        f"{direction}\n\n{first_line}\nCall-ID: {call_id}\nCSeq: {cseq}\n{extra}\n"
    )


INVITE = "INVITE sip:+78005558982@trunk SIP/2.0"


@pytest.mark.parametrize(
    ("uri", "trunk"),
    [
        ("sip:127.0.0.1:5060;transport=udp", Trunk("127.0.0.1", 5060, "udp")),
        ("sip:trunk.example.org;transport=TCP", Trunk("trunk.example.org", 5060, "tcp")),
        ("sips:sbc.example.org", Trunk("sbc.example.org", 5061, "tls", "sips")),
        ("sip:[::1]:5070", Trunk("::1", 5070, "udp")),
        ("sip:monitor@10.0.0.1:5080;transport=tls", Trunk("10.0.0.1", 5080, "tls")),
    ],
)
def test_trunk_parts_when_uri_is_written_so(uri: str, trunk: Trunk):
    """Host, port (5060, 5061 for TLS) and transport (UDP by default), RFC 3261 §19.1."""
    assert parse_trunk(uri) == trunk


def test_post_dial_delay_from_first_invite_when_invite_is_retransmitted():
    """A retransmitted INVITE does not restart the post-dial delay."""
    trace = (
        block("00.000000", True, INVITE, "1 INVITE")
        + block("00.500000", True, INVITE, "1 INVITE")
        + block("01.250000", False, "SIP/2.0 180 Ringing", "1 INVITE")
    )
    result = outcome(parse_trace(trace))
    assert (result.reached, result.status_code, result.post_dial_delay_seconds) == (
        True,
        180,
        1.25,
    )


def test_challenge_is_not_the_answer_when_invite_is_sent_again():
    """A 407 followed by an authenticated INVITE is not the outcome; the delay counts from
    the second INVITE."""
    trace = (
        block("00.000000", True, INVITE, "1 INVITE")
        + block("00.010000", False, "SIP/2.0 407 Proxy Authentication Required", "1 INVITE")
        + block("00.020000", True, INVITE, "2 INVITE")
        + block(
            "00.520000",
            False,
            "SIP/2.0 404 Not Found",
            "2 INVITE",
            extra='Reason: Q.850 ;cause=1 ;text="Unallocated number"',
        )
    )
    result = outcome(parse_trace(trace))
    assert (result.reached, result.status_code, result.q850_cause) == (False, 404, 1)


def test_other_calls_answers_are_ignored_when_they_stray_into_the_trace():
    """A late answer carrying another Call-ID is not this call's."""
    trace = block("00.000000", True, INVITE, "1 INVITE") + block(
        "00.100000", False, "SIP/2.0 486 Busy Here", "1 INVITE", call_id="other@x"
    )
    assert outcome(parse_trace(trace)).status_code is None


def test_own_cancel_is_no_refusal_when_we_gave_up():
    """The 487 that answers our own CANCEL leaves the outcome a timeout."""
    trace = (
        block("00.000000", True, INVITE, "1 INVITE")
        + block("03.000000", True, "CANCEL sip:+78005558982@trunk SIP/2.0", "1 CANCEL")
        + block("03.010000", False, "SIP/2.0 487 Request Terminated", "1 INVITE")
    )
    assert outcome(parse_trace(trace)).status_code is None


def test_garbage_is_skipped_when_trace_is_not_sipp_output():
    """Anything that is not a traced message is ignored, never an error."""
    assert parse_trace("\x00garbage\n-----\nnot a trace") == []
