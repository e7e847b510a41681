"""Phone numbers checked against the numbering plan: valid, of which type, in E.164."""

from __future__ import annotations

import phonenumbers

from monitor.config import PhoneChannel
from monitor.model import ProbeFailure, ProbeResult
from monitor.phones import e164, number_type_name
from monitor.probers._base import ProbeContext, guarded

__all__ = ["probe_phone"]


@guarded
async def probe_phone(channel: PhoneChannel, ctx: ProbeContext) -> ProbeResult:
    """Succeeds when the number is valid in its region's numbering plan."""
    region = channel.region or ctx.defaults.region
    try:
        number = phonenumbers.parse(channel.phone, region)
    except phonenumbers.NumberParseException as exc:
        raise ProbeFailure("invalid_number", f"cannot read {channel.phone!r}: {exc._msg}") from None
    details = {
        "e164": e164(number),
        "number_type": number_type_name(number),
        "extension": number.extension,
        "international": phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        ),
    }
    if not phonenumbers.is_valid_number(number):
        raise ProbeFailure("invalid_number", f"{channel.phone} is not a valid number", **details)
    return ProbeResult(True, details=details)
