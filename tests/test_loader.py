"""Registry loading: the shipped file is valid; each broken file gets its exact message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main, registry_schema
from monitor.loader import RegistryInvalid, load_registry

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "config" / "channels.yaml"
BROKEN = Path(__file__).parent / "testdata" / "registry"
QUESTIONABLE = Path(__file__).parent / "testdata" / "registry-warn"  # valid, with warnings

# file -> the exact lines `validate` prints, after the file name.
EXPECTED_ERRORS = {
    "invalid-alias-bomb.yaml": [
        ": aliases expand the document to more than 200,000 nodes (an alias bomb)"
    ],
    "invalid-binary.yaml": [": file is binary, not YAML text"],
    "invalid-ca-file.yaml": [":3: defaults.tls.ca_file: no such file: missing-ca.pem"],
    "invalid-dangling-replacement.yaml": [
        ":12: organizations[acme].channels[old-line].replaced_by: no channel 'chat' in acme"
    ],
    "invalid-dangling-source.yaml": [
        ":11: organizations[acme].channels[hotline].published_on[1]: no source 'faq' in acme"
    ],
    "invalid-duplicate-id.yaml": [
        ":11: organizations[acme].channels[hotline].id: duplicate id 'hotline'"
    ],
    "invalid-duplicate-key.yaml": [
        ":11: organizations[acme].channels[hotline].kind: duplicate key"
    ],
    "invalid-duration.yaml": [
        ":11: organizations[acme].channels[hotline].interval: invalid duration '5 minutes': "
        "use a number with a unit, like 30s, 5m, 1h"
    ],
    "invalid-empty.yaml": [":1: file is empty"],
    "invalid-header-value.yaml": [
        ":9: organizations[acme].channels[site].headers.X-Trace: a header value must not contain "
        "line breaks or NUL (header injection)"
    ],
    "invalid-hours-days.yaml": [
        ":11: organizations[acme].channels[hotline].hours[0].days: invalid days 'monday-friday': "
        "use e.g. mon-fri, sat-sun, mon,wed,fri"
    ],
    "invalid-hours-order.yaml": [
        ":11: organizations[acme].channels[hotline].hours[0]: "
        "'from' 18:00 must be before 'to' 09:00: hours past midnight are two windows, "
        "18:00-24:00 and 00:00-09:00 on the next days"
    ],
    "invalid-id.yaml": [
        ":8: organizations[acme].channels[0].id: an id is 1-63 lower-case letters, digits, "
        "'.', '_' or '-' (got 'Hot Line')"
    ],
    "invalid-idna-host.yaml": [
        ":7: organizations[acme].channels[site].url: host '☃.acme.test' is not a valid host name: "
        "Invalid IDNA hostname: '☃.acme.test'"
    ],
    "invalid-kind.yaml": [
        ":9: organizations[acme].channels[fax].kind: unknown kind 'fax': "
        "use one of 'phone', 'email', 'web', 'chat', 'social', 'tcp'"
    ],
    "invalid-missing-url.yaml": [
        ":8: organizations[acme].channels[site].url: required key is missing"
    ],
    "invalid-nameserver.yaml": [
        ":3: defaults.resolver.nameservers: nameserver 'dns.acme.test' is not an IP address"
    ],
    "invalid-not-utf8.yaml": [": file is not UTF-8 text (byte 37)"],
    "invalid-phone-number.yaml": [
        ":10: organizations[acme].channels[hotline].phone: "
        "'8 800 555' is not a valid number for region RU"
    ],
    "invalid-regex.yaml": [
        ":11: organizations[acme].channels[site].expect.body_regex: invalid regular expression "
        "'(unclosed': RE2 (linear-time, no backreferences or lookaround) cannot compile it: "
        "missing ): (unclosed"
    ],
    "invalid-regex-lookbehind.yaml": [
        ":11: organizations[acme].channels[site].expect.body_not_regex: invalid regular expression "
        "'(?<=Old: )8 800': RE2 (linear-time, no backreferences or lookaround) cannot compile "
        "it: invalid perl operator: (?<="
    ],
    "invalid-proxy.yaml": [
        ":4: defaults.http.proxy: proxy 'socks5://127.0.0.1:1080' is not an http(s) URL with a host"
    ],
    "invalid-region.yaml": [
        ":3: defaults.region: unknown region 'XX': use an ISO 3166 code such as RU"
    ],
    "invalid-smtp-mode.yaml": [
        ":11: organizations[acme].channels[mail].smtp: "
        "Input should be 'off', 'connect' or 'starttls' (got 'sometimes')"
    ],
    "invalid-status.yaml": [
        ":11: organizations[acme].channels[hotline].status: "
        "Input should be 'active' or 'deprecated' (got 'retired')"
    ],
    "invalid-timezone.yaml": [
        ":3: defaults.timezone: unknown timezone 'Mars/Olympus': use an IANA name"
    ],
    "invalid-unknown-key.yaml": [":11: organizations[acme].channels[hotline].colour: unknown key"],
    "invalid-url-scheme.yaml": [
        ":10: organizations[acme].channels[site].url: 'ftp://acme.test/' is not an http(s) URL "
        "with a host"
    ],
    "invalid-version.yaml": [":1: version: Input should be 1 (got 2)"],
    "invalid-yaml-syntax.yaml": [
        ":5: invalid YAML: while parsing a flow node did not find expected node content"
    ],
    "invalid-defaults-interval.yaml": [
        ":3: defaults.interval: interval 5s is shorter than timeout 10s: "
        "a probe could still be running when the next one is due"
    ],
    "invalid-defaults-source-interval.yaml": [
        ":3: defaults.source_interval: interval 5s is shorter than timeout 10s: "
        "a probe could still be running when the next one is due"
    ],
    "invalid-empty-status.yaml": [
        ":12: organizations[acme].channels[site].expect.status: an empty list accepts no "
        "answer at all: list the HTTP statuses that mean the channel works, e.g. [200], or "
        "leave status out for 200"
    ],
    "invalid-email.yaml": [
        ":10: organizations[ozon].channels[b2b-email].email: not an e-mail address: 'b2b.ozon.ru'"
    ],
    "invalid-interval-timeout.yaml": [
        ":9: organizations[acme].sources[contacts].interval: interval 5s is shorter than "
        "timeout 10s: a probe could still be running when the next one is due",
        ":14: organizations[acme].channels[site].interval: interval 30s is shorter than "
        "timeout 60s: a probe could still be running when the next one is due",
    ],
    "invalid-several.yaml": [
        ":10: organizations[acme].channels[hotline].phone: '8 800 555' is not a valid number "
        "for region RU",
        ":11: organizations[acme].channels[hotline].published_on[0]: no source 'faq' in acme",
        ":12: organizations[acme].channels[hotline].colour: unknown key",
        ":17: organizations[acme].channels[old-line].replaced_by: no channel 'chat' in acme",
    ],
    "invalid-shape.yaml": [
        ":11: organizations[acme].channels[hotline].published_on: expected a list, "
        "got the text 'contacts': write [contacts]",
        ":15: organizations[acme].channels[site].expect: expected a mapping of keys to values, "
        "got the number 200",
    ],
    "invalid-time.yaml": [
        ":8: organizations[acme].channels[hotline].hours[0].from: invalid time '9.00': "
        "use HH:MM, 00:00 to 24:00"
    ],
    "invalid-unquoted-phone.yaml": [
        ":7: organizations[ozon].channels[bank-hotline].phone: quote it: YAML read 88005558982 "
        'as the number 88005558982; write "88005558982"'
    ],
    "invalid-unquoted-time.yaml": [
        ":10: organizations[acme].channels[hotline].hours[0].from: quote it: YAML read 9:00 "
        'as the number 540; write "09:00"',
        ":11: organizations[acme].channels[hotline].hours[0].to: quote it: YAML read 18:00 "
        'as the number 1080; write "18:00"',
    ],
}

# file -> the warnings `validate` prints (exit 0), after the file name.
EXPECTED_WARNINGS = {
    "warn-replaced-active.yaml": [
        ":8: organizations[ozon].channels[marketplace-hotline-old].replaced_by: warning: "
        "replaced_by on an active channel: is it status: deprecated?"
    ],
    "warn-same-contact.yaml": [
        ":6: organizations[ozon].channels[bank-hotline-copy].phone: warning: "
        "same phone number as channel 'bank-hotline'",
        ":8: organizations[ozon].channels[sales-email].email: warning: "
        "same e-mail address as channel 'b2b-email'",
    ],
}


def test_every_broken_file_has_an_expected_message():
    """The tables cover every file in testdata/registry, and nothing else."""
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED_ERRORS)
    assert sorted(p.name for p in QUESTIONABLE.glob("*.yaml")) == sorted(EXPECTED_WARNINGS)


def test_shipped_registry_is_valid_when_loaded():
    """config/channels.yaml loads, with every Ozon contact of the shared list."""
    registry = load_registry(SHIPPED)
    ozon = registry.organizations[0]
    contacts = {c.contact for c in ozon.channels}
    assert {
        "8 (800) 234-70-00",
        "8 800 555-89-82",
        "b2b@ozon.ru",
        "gr@ozon.ru",
        "https://vk.com/ozon",
    } <= contacts
    old = next(c for c in ozon.channels if c.contact == "8 (800) 234-70-00")
    assert (old.status, old.replaced_by) == ("deprecated", "marketplace-chat")


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_exact_errors_when_registry_is_broken(name: str, capsys: pytest.CaptureFixture[str]):
    """`validate` prints one line per problem, naming file, line and field, and exits 2."""
    path = BROKEN / name
    assert main(["validate", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"{path}{line}" for line in EXPECTED_ERRORS[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_warnings_printed_and_exit_0_when_registry_is_only_questionable(
    name: str, capsys: pytest.CaptureFixture[str]
):
    """A warning is printed with file, line and field, and the registry stays valid."""
    path = QUESTIONABLE / name
    assert main(["validate", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: valid" in out
    assert err.splitlines() == [f"{path}{line}" for line in EXPECTED_WARNINGS[name]]


def test_shipped_registry_has_no_warnings_when_validated(capsys: pytest.CaptureFixture[str]):
    """The registry we ship is not questionable either."""
    assert main(["validate", "--config", str(SHIPPED)]) == 0
    assert capsys.readouterr().err == ""


def test_large_file_told_to_split_when_it_has_too_many_nodes_without_aliases(tmp_path: Path):
    """A file past the node cap with no alias in it is large, not hostile: the error says
    so and how to split it, instead of suspecting an alias bomb."""
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\nnotes: [" + "0," * 200_001 + "0]\n")
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(path)
    assert [i.message for i in raised.value.issues] == [
        "the file has more than 200,000 YAML nodes: split it into several files of a "
        "registry directory (--config DIR)"
    ]


def test_every_problem_reported_when_file_has_several(tmp_path: Path):
    """Two independent mistakes are two lines, not just the first."""
    path = tmp_path / "two.yaml"
    path.write_text(
        "version: 1\norganizations:\n  - id: acme\n    channels:\n"
        "      - {id: a, kind: phone, phone: '8 800 555-89-82', colour: red}\n"
        "      - {id: b, kind: web, url: 'https://a.test/', interval: soon}\n"
    )
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(path)
    assert [(i.line, i.path) for i in raised.value.issues] == [
        (5, "organizations[acme].channels[a].colour"),
        (6, "organizations[acme].channels[b].interval"),
    ]


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("{id: c, kind: web, url: 'http://127.0.0.1:99999/'}", "has a port outside 1-65535"),
        ("{id: c, kind: web, url: 'https://a.test:0/'}", "has port 0: use a port from 1"),
        ("{id: c, kind: chat, url: 'wss://a.test:70000/ws'}", "has a port outside 1-65535"),
        (
            "{id: c, kind: web, url: 'https://a.test/', proxy: 'http://p.test:0'}",
            "has port 0",
        ),
        (
            "{id: c, kind: tcp, host: '127.0.0.1:80', port: 80}",
            "host '127.0.0.1:80' holds a port: write host: 127.0.0.1 and port: 80",
        ),
    ],
    ids=["http port 99999", "https port 0", "wss port 70000", "proxy port 0", "tcp host:port"],
)
def test_port_refused_by_validate_when_no_server_can_listen_on_it(
    tmp_path: Path, channel: str, message: str
):
    """A port outside 1-65535 (or a port written into a tcp host) is a registry error with
    its own message, never a probe that fails with the catch-all reason `error`."""
    path = tmp_path / "ports.yaml"
    path.write_text(f"version: 1\norganizations:\n  - id: acme\n    channels:\n      - {channel}\n")
    with pytest.raises(RegistryInvalid) as raised:
        load_registry(path)
    (issue,) = raised.value.issues
    assert message in issue.message, issue


def test_missing_file_reported_when_path_does_not_exist(capsys: pytest.CaptureFixture[str]):
    """A path that does not exist is one clear line and exit 2."""
    assert main(["validate", "--config", "/nonexistent/registry.yaml"]) == 2
    assert capsys.readouterr().err.strip() == (
        "/nonexistent/registry.yaml: cannot read the file: No such file or directory"
    )


def test_config_taken_from_environment_when_no_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """$CONTACT_MONITOR_CONFIG names the registry when --config is absent."""
    monkeypatch.setenv("CONTACT_MONITOR_CONFIG", str(SHIPPED))
    assert main(["validate"]) == 0
    assert "valid (1 organizations, 18 channels, 3 sources)" in capsys.readouterr().out


def test_smtp_off_accepted_when_yaml_reads_it_as_false(tmp_path: Path):
    """A bare `smtp: off` (YAML false) means the same as "off"."""
    path = tmp_path / "off.yaml"
    path.write_text(
        "version: 1\norganizations:\n  - id: acme\n    channels:\n"
        "      - {id: m, kind: email, email: a@acme.test, smtp: off}\n"
    )
    assert load_registry(path).organizations[0].channels[0].smtp == "off"


def test_durations_parsed_when_written_with_units(tmp_path: Path):
    """30s, 5m, 1h30m, 250ms and plain numbers are seconds."""
    path = tmp_path / "d.yaml"
    path.write_text(
        "version: 1\ndefaults: {interval: 1h30m, timeout: 250ms, "
        "source_interval: 90}\norganizations:\n  - id: acme\n"
    )
    defaults = load_registry(path).defaults
    assert (defaults.interval, defaults.timeout, defaults.source_interval) == (5400, 0.25, 90)


def test_shipped_schema_matches_model_when_regenerated():
    """config/schema.json is what `contact-monitor schema` prints."""
    shipped = json.loads((ROOT / "config" / "schema.json").read_text())
    assert shipped == json.loads(json.dumps(registry_schema()))


def test_registry_references_schema_when_opened_in_an_editor():
    """The YAML names its schema for the YAML language server."""
    assert SHIPPED.read_text().startswith("# yaml-language-server: $schema=schema.json")


def test_shipped_registry_conforms_when_checked_against_schema():
    """The shipped YAML validates against the shipped JSON Schema (what editors check)."""
    import jsonschema
    import yaml

    data = json.loads(json.dumps(yaml.safe_load(SHIPPED.read_text()), default=str))
    schema = json.loads((ROOT / "config" / "schema.json").read_text())
    jsonschema.validate(data, schema)
