"""SIPp scenarios (XML) for one test call or one OPTIONS, generated per probe.

The call follows RFC 3261: INVITE; on a 401/407 challenge, ACK and INVITE again with
digest credentials (RFC 2617/8760, computed by SIPp); at the first 180/183 CANCEL (§9.1)
and ACK the 487; at a 200 ACK and BYE at once, so nobody is ever talked to; any other
final answer is ACKed (§17.1.1.3). Every answer is left in SIPp's message trace, which
`monitor.sip.trace` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

__all__ = ["FINAL_FAILURE_CODES", "TARGET", "CallSpec", "call_scenario", "options_scenario", "via"]

# Final non-2xx answers a UAC may get (RFC 3261 §21 and later RFCs' additions). SIPp needs
# each code named; a code not listed would be an "unexpected message" (and is then read
# from the trace all the same).
FINAL_FAILURE_CODES = (
    *(300, 301, 302, 305, 380),
    *(400, 402, 403, 404, 405, 406, 408, 410, 412, 413, 414, 415, 416, 417, 420, 421),
    *(422, 423, 424, 428, 429, 430, 433, 436, 437, 438, 439, 440, 469, 470),
    *(480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493, 494),
    *(500, 501, 502, 503, 504, 505, 513, 555, 580),
    *(600, 603, 604, 606, 607, 608),
)
REACHED = (180, 183)  # provisional answers that prove the line rings (or plays early media)
# The Request-URI comes from SIPp's injection file (`run_sipp(target_uri=...)`): written into
# the scenario, an IPv6 literal's brackets (`sip:+7800@[2001:db8::5]`) would be read as a
# SIPp keyword and the scenario refused.
TARGET = "[field0]"


@dataclass(frozen=True)
class CallSpec:
    """What the scenario needs: the Request-URI, the From URI, credentials, timings."""

    request_uri: str  # sip:+78005558982@trunk.example:5060
    from_uri: str  # sip:monitor@example.org
    username: str | None  # digest credentials, when the trunk challenges
    password: str | None
    answer_wait_ms: int  # how long to wait for ringing or an answer before giving up
    transport: str = "udp"  # udp | tcp | tls: what Via and Contact name (RFC 3261 §18)


def via(transport: str) -> str:
    """The Via header of a request we send. SIPp's [transport] keyword names the transport
    SIPp itself speaks, which is TCP when TLS is added by `monitor.sip.tls_relay`; the trunk
    sees TLS, so Via says `SIP/2.0/TLS` (RFC 3261 §18.2.1, §20.42)."""
    sent = "TLS" if transport == "tls" else "[transport]"
    return f"Via: SIP/2.0/{sent} [local_ip]:[local_port];branch=[branch]\n"


def _contact(spec: CallSpec) -> str:
    """Our Contact URI. For a sips: Request-URI it MUST be sips: (RFC 3261 §8.1.1.8); a sip:
    URI reached over TLS says `;transport=tls` (RFC 3261 §19.1.1), which Kamailio and SBCs
    read to keep the dialog on TLS."""
    user = spec.from_uri.split("@")[0].partition(":")[2]
    if spec.request_uri.startswith("sips:"):
        return f"Contact: <sips:{user}@[local_ip]:[local_port]>\n"
    param = "tls" if spec.transport == "tls" else "[transport]"
    return f"Contact: <sip:{user}@[local_ip]:[local_port];transport={param}>\n"


def _header_block(spec: CallSpec, cseq: int, auth: bool) -> str:
    credentials = (
        f"[authentication username={spec.username} password={spec.password}]\n"
        if auth and spec.username
        else ""
    )
    return (
        f"INVITE {TARGET} SIP/2.0\n"
        f"{via(spec.transport)}"
        f"From: <{spec.from_uri}>;tag=[pid]CM[call_number]\n"
        f"To: <{TARGET}>\n"
        "Call-ID: [call_id]\n"
        f"CSeq: {cseq} INVITE\n"
        f"{_contact(spec)}"
        f"{credentials}"
        "Max-Forwards: 70\n"
        "User-Agent: contact-monitor\n"
        "Content-Length: 0\n"
    )


def _send(body: str, retrans: bool = False) -> str:
    attrs = ' retrans="500"' if retrans else ""
    return f"  <send{attrs}><![CDATA[\n{body}\n]]></send>\n"


def _answers(spec: CallSpec, challenge: bool) -> str:
    """The answers an INVITE may get, each sent to its handling label."""
    out = '  <recv response="100" optional="true"/>\n'
    for code in (181, 182):  # forwarded / queued: still waiting
        out += f'  <recv response="{code}" optional="true"/>\n'
    if challenge:
        for code in (401, 407):
            out += f'  <recv response="{code}" auth="true" optional="true" next="auth"/>\n'
    for code in FINAL_FAILURE_CODES:
        if not (challenge and code in (401, 407)):
            out += f'  <recv response="{code}" optional="true" next="refused"/>\n'
    for code in (401, 407):
        if not challenge:
            out += f'  <recv response="{code}" optional="true" next="refused"/>\n'
    for code in REACHED:
        out += f'  <recv response="{code}" optional="true" next="reached"/>\n'
    out += (
        f'  <recv response="200" rrs="true" timeout="{spec.answer_wait_ms}" '
        'ontimeout="give_up" next="answered"/>\n'
    )
    return out


def _ack_for_failure(spec: CallSpec) -> str:
    return _send(
        f"ACK {TARGET} SIP/2.0\n"
        "[last_Via:]\n"
        "[last_From:]\n"
        "[last_To:]\n"
        "[last_Call-ID:]\n"
        "CSeq: [last_cseq_number] ACK\n"
        "Max-Forwards: 70\n"
        "Content-Length: 0\n"
    )


def _cancel(spec: CallSpec) -> str:
    return _send(
        f"CANCEL {TARGET} SIP/2.0\n"
        "[last_Via:]\n"
        "[last_From:]\n"
        f"To: <{TARGET}>\n"
        "[last_Call-ID:]\n"
        "CSeq: [last_cseq_number] CANCEL\n"
        "Max-Forwards: 70\n"
        "Content-Length: 0\n"
    )


def call_scenario(spec: CallSpec) -> str:
    """The SIPp XML of one test call (see the module's docstring)."""
    in_dialog = f"{via(spec.transport)}[last_From:]\n[last_To:]\n[last_Call-ID:]\n[routes]\n"
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        f"<scenario name={quoteattr('contact-monitor test call')}>\n"
        + _send(_header_block(spec, 1, auth=False), retrans=True)
        + _answers(spec, challenge=True)
        + '  <label id="auth"/>\n'
        + _ack_for_failure(spec)
        + _send(_header_block(spec, 2, auth=True), retrans=True)
        + _answers(spec, challenge=False)
        # Ringing or early media: the line works. CANCEL before anyone picks up.
        + '  <label id="reached"/>\n'
        + _cancel(spec)
        + '  <recv response="200" optional="true"/>\n'
        + '  <recv response="487" timeout="2000" ontimeout="end"/>\n'
        + _ack_for_failure(spec)
        + '  <nop next="end"/>\n'
        # Answered at once (an IVR): ACK and hang up straight away.
        + '  <label id="answered"/>\n'
        + _send(
            "ACK [next_url] SIP/2.0\n" + in_dialog + "CSeq: [last_cseq_number] ACK\n"
            "Max-Forwards: 70\nContent-Length: 0\n"
        )
        + _send(
            "BYE [next_url] SIP/2.0\n" + in_dialog + "CSeq: 10 BYE\n"
            "Max-Forwards: 70\nContent-Length: 0\n",
            retrans=True,
        )
        + '  <recv response="200" timeout="2000" ontimeout="end"/>\n'
        + '  <nop next="end"/>\n'
        # Refused: ACK the final answer.
        + '  <label id="refused"/>\n'
        + _ack_for_failure(spec)
        + '  <nop next="end"/>\n'
        # Nothing in time: CANCEL what may still ring.
        + '  <label id="give_up"/>\n'
        + _cancel(spec)
        + '  <pause milliseconds="200"/>\n'
        + '  <label id="end"/>\n'
        + "</scenario>\n"
    )


def options_scenario(
    from_uri: str,
    username: str | None,
    password: str | None,
    wait_ms: int,
    transport: str = "udp",
) -> str:
    """One OPTIONS to the trunk itself (RFC 3261 §11; its URI given to `run_sipp` as
    `target_uri`), once more with credentials if challenged; whatever it answers is in the
    trace. `transport` as in `CallSpec`."""

    def options(cseq: int, auth: bool) -> str:
        credentials = (
            f"[authentication username={username} password={password}]\n"
            if auth and username
            else ""
        )
        return (
            f"OPTIONS {TARGET} SIP/2.0\n"
            f"{via(transport)}"
            f"From: <{from_uri}>;tag=[pid]CM[call_number]\n"
            f"To: <{TARGET}>\n"
            "Call-ID: [call_id]\n"
            f"CSeq: {cseq} OPTIONS\n"
            f"{credentials}"
            "Max-Forwards: 70\nUser-Agent: contact-monitor\nAccept: application/sdp\n"
            "Content-Length: 0\n"
        )

    def finals(challenge: bool) -> str:
        out = ""
        for code in (401, 407) if challenge else ():
            out += f'  <recv response="{code}" auth="true" optional="true" next="auth"/>\n'
        for code in FINAL_FAILURE_CODES:
            if not (challenge and code in (401, 407)):
                out += f'  <recv response="{code}" optional="true" next="end"/>\n'
        for code in (401, 407) if not challenge else ():
            out += f'  <recv response="{code}" optional="true" next="end"/>\n'
        return out + f'  <recv response="200" timeout="{wait_ms}" ontimeout="end" next="end"/>\n'

    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        f"<scenario name={quoteattr('contact-monitor options')}>\n"
        + _send(options(1, False), retrans=True)
        + finals(True)
        + '  <label id="auth"/>\n'
        + _send(options(2, True), retrans=True)
        + finals(False)
        + '  <label id="end"/>\n'
        + "</scenario>\n"
    )
