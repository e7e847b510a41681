"""Numbering-plan helpers shared by the phone prober, extraction and drift."""

from __future__ import annotations

import phonenumbers

__all__ = ["canonical", "e164", "is_placeholder", "number_type_name", "parse_valid"]

_TYPE_NAMES = {
    value: name.lower()
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper()
}


def number_type_name(number: phonenumbers.PhoneNumber) -> str:
    """`toll_free`, `mobile`, `fixed_line`, … for a parsed number."""
    return _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def canonical(e164_number: str, extension: str | None) -> str:
    """One string for a number and its extension: `+79584000005;ext=76077` (RFC 3966 style)."""
    return f"{e164_number};ext={extension}" if extension else e164_number


def parse_valid(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The number `text` writes, if it is valid in the numbering plan; else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def is_placeholder(number: phonenumbers.PhoneNumber) -> bool:
    """True for the input masks and form hints pages show instead of a number:
    `+7 (999) 999-99-99`, `8 (900) 000-00-00`, `+7 (999) 123-45-67` — a national number of
    one repeated digit, a subscriber part (the last seven digits) of zeros or nines, or the
    run 1234567 after a code that is itself a mask (999, 000). Vanity numbers such as
    `8 800 555-55-55` are real and stay numbers."""
    national = str(number.national_number)
    code, subscriber = national[:-7], national[-7:]
    if len(set(national)) == 1 or subscriber in ("0000000", "9999999"):
        return True
    return subscriber == "1234567" and len(set(code)) <= 1
