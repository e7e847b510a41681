"""Phone numbers checked against the numbering plan: valid, of which type, in E.164.

A numbering check dials nothing, so it measures no reachability: its result has
`success=None` ("number valid · not dialled") and `details.number_valid`. Only a SIP test
call or a push says whether a line works (DESIGN, "Contracts added in the second round").
"""

from __future__ import annotations

import phonenumbers

from monitor.config import PhoneChannel
from monitor.model import ProbeResult
from monitor.phones import e164, number_type_name
from monitor.probers._base import ProbeContext, guarded

__all__ = ["numbering_details", "probe_phone"]


def numbering_details(channel: PhoneChannel, region: str) -> dict:
    """`{"number_valid": bool, "e164", "number_type", "extension", "international"}` for the
    channel's number in `region` (only `number_valid` when it cannot be read at all)."""
    try:
        number = phonenumbers.parse(channel.phone, channel.region or region)
    except phonenumbers.NumberParseException:
        return {"number_valid": False}
    return {
        "number_valid": phonenumbers.is_valid_number(number),
        "e164": e164(number),
        "number_type": number_type_name(number),
        "extension": number.extension,
        "international": phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        ),
    }


@guarded
async def probe_phone(channel: PhoneChannel, ctx: ProbeContext) -> ProbeResult:
    """Never up or down (`success=None`); `invalid_number` when the plan has no such number."""
    details = numbering_details(channel, ctx.defaults.region)
    if not details["number_valid"]:
        return ProbeResult(
            None, "invalid_number", f"{channel.phone} is not a valid number", details=details
        )
    return ProbeResult(None, details=details)
