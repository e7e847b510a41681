"""The registry fields of issue 16 (check, sip, push), each mistake with its own message."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.loader import RegistryInvalid, check_registry, load_registry

HEAD = "version: 1\n"
SIP = (
    "defaults:\n  sip:\n    trunk: 'sip:127.0.0.1:5060;transport=udp'\n"
    "    auth: {username: monitor, password_env: SIP_PASSWORD}\n"
)


def channels(*lines: str, defaults: str = "") -> str:
    body = "".join(f"      - {line}\n" for line in lines)
    return HEAD + defaults + "organizations:\n  - id: acme\n    channels:\n" + body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            channels("{id: h, kind: phone, phone: '8 800 555-89-82', check: sip}"),
            "organizations[acme].channels[h].check: check: sip needs defaults.sip.trunk",
        ),
        (
            channels("{id: h, kind: phone, phone: '8 800 555-89-82', check: push}"),
            "check: push needs push: {token_env: NAME}",
        ),
        (
            channels("{id: h, kind: web, url: 'https://a.test/', push: {token_env: T}}"),
            "push: is set but check is 'probe'; use check: push",
        ),
        (
            channels("{id: h, kind: phone, phone: '8 800 555-89-82', check: dial}"),
            "check: Input should be 'numbering', 'sip' or 'push' (got 'dial')",
        ),
        (
            channels(
                "{id: h, kind: phone, phone: '8 800 555-89-82', check: sip, sip: {mode: ring}}",
                defaults=SIP,
            ),
            "sip.mode: Input should be 'call' or 'options' (got 'ring')",
        ),
        (
            channels(
                "{id: h, kind: chat, url: 'https://a.test/', check: push,"
                " push: {token_env: 'not a name'}}"
            ),
            "push.token_env: 'not a name' is not in the form this field takes",
        ),
        (
            channels(
                "{id: h, kind: phone, phone: '8 800 555-89-82'}",
                defaults=SIP.replace("transport=udp", "transport=sctp"),
            ),
            "defaults.sip.trunk: transport 'sctp': use udp, tcp or tls",
        ),
        (
            channels(
                "{id: h, kind: phone, phone: '8 800 555-89-82'}",
                defaults=SIP + "    max_calls_per_day: -1\n",
            ),
            "defaults.sip.max_calls_per_day: Input should be greater than or equal to 0",
        ),
        (
            channels(
                "{id: h, kind: phone, phone: '8 800 555-89-82'}",
                defaults=SIP.replace("password_env: SIP_PASSWORD", "password: hunter2"),
            ),
            "defaults.sip.auth.password: unknown key",
        ),
    ],
)
def test_specific_error_when_phone_check_is_misconfigured(tmp_path: Path, text: str, message: str):
    """Each mistake in check/sip/push is one line naming the field and the problem."""
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RegistryInvalid) as invalid:
        load_registry(path)
    assert any(message in str(issue) for issue in invalid.value.issues), invalid.value


def test_registry_loads_when_sip_and_push_are_configured(tmp_path: Path):
    """A SIP call, an OPTIONS keep-alive and a pushed chat load with their defaults."""
    path = tmp_path / "r.yaml"
    path.write_text(
        channels(
            "{id: a, kind: phone, phone: '8 800 555-89-82', check: sip}",
            "{id: b, kind: phone, phone: '8 800 555-89-91', check: sip, sip: {mode: options}}",
            "{id: c, kind: chat, url: 'https://a.test/', check: push,"
            " push: {token_env: CHAT_TOKEN, expect_every: 15m}}",
            defaults=SIP,
        )
    )
    registry = load_registry(path)
    a, b, c = registry.organizations[0].channels
    assert (a.sip.mode, b.sip.mode, c.push.expect_every) == ("call", "options", 900.0)
    assert registry.defaults.sip.max_calls_per_day == 48


def pushed_chat_registry(tmp_path: Path) -> Path:
    """A registry with a trunk password and a pushed chat, each secret in a variable."""
    path = tmp_path / "r.yaml"
    path.write_text(
        channels(
            "{id: c, kind: chat, url: 'https://a.test/', check: push,"
            " push: {token_env: CHAT_TOKEN}}",
            defaults=SIP,
        )
    )
    return path


def test_warnings_name_secret_variables_when_they_are_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A push token or trunk password whose variable is unset here is a warning: the
    registry loads, and the maintainer learns why pushes or calls would be refused."""
    monkeypatch.delenv("CHAT_TOKEN", raising=False)
    monkeypatch.delenv("SIP_PASSWORD", raising=False)
    path = pushed_chat_registry(tmp_path)
    _, warnings = check_registry(path)
    assert [(i.path, i.message) for i in warnings] == [
        (
            "defaults.sip.auth.password_env",
            "SIP_PASSWORD is not set in this environment: every test call fails with "
            "sip_auth_missing",
        ),
        (
            "organizations[acme].channels[c].push.token_env",
            "CHAT_TOKEN is not set in this environment: every push is refused (401)",
        ),
    ]


def test_no_warning_when_secret_variables_are_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHAT_TOKEN", "s3cret")
    monkeypatch.setenv("SIP_PASSWORD", "hunter2")
    path = pushed_chat_registry(tmp_path)
    assert check_registry(path)[1] == []


@pytest.mark.parametrize(
    ("phone", "hint"),
    [
        ("8-800-555-35-35 (бесплатно)", True),
        ("звоните нам", True),
        ("+7 (", False),
    ],
)
def test_unreadable_phone_explained_when_registry_writes_words_beside_it(
    tmp_path: Path, phone: str, hint: bool
):
    """A phone field libphonenumber cannot read gets a message that says what to write;
    words beside the number are pointed to `notes`."""
    path = tmp_path / "r.yaml"
    path.write_text(channels(f"{{id: h, kind: phone, phone: '{phone}'}}"))
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(path)
    (issue,) = raised.value.issues
    assert issue.message.startswith(f"cannot read {phone!r} as a phone number (")
    assert ("words such as '(бесплатно)' in notes" in issue.message) is hint
