"""What a new user tripped on: --version, hints for a URL without its scheme, regions checked
like `validate` does, an honest `check` summary, and a README that documents every option."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from monitor import cli
from monitor.cli import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_version_printed_when_asked(capsys: pytest.CaptureFixture[str]):
    """`--version` names the program and the installed version, exit 0."""
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert re.fullmatch(r"contact-monitor \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


@pytest.mark.parametrize("source", ["www.example.org", "example.org/contacts", "ozon.ru:443"])
def test_https_suggested_when_extract_is_given_a_host_without_scheme(
    source: str, capsys: pytest.CaptureFixture[str]
):
    """A web address without http(s):// is not read as a missing file without a hint."""
    assert main(["extract", source]) == 2
    assert capsys.readouterr().err.strip() == (
        f"contact-monitor: cannot read {source}: No such file or directory; "
        f"for a web page, add https:// (https://{source})"
    )


def test_no_https_hint_when_a_missing_file_looks_like_one(capsys: pytest.CaptureFixture[str]):
    """contacts.html is a file name, not a host."""
    assert main(["extract", "contacts.html"]) == 2
    assert "https://" not in capsys.readouterr().err


@pytest.mark.parametrize("region", ["XX", "ru", "RUS"])
def test_extract_rejects_unknown_region_when_validate_would(
    region: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The same words as `validate` for defaults.region, exit 2."""
    page = tmp_path / "p.html"
    page.write_text("<p>8 800 555-89-82</p>")
    assert main(["extract", str(page), "--region", region]) == 2
    assert capsys.readouterr().err.strip() == (
        f"contact-monitor: unknown region {region!r}: use an ISO 3166 code such as RU"
    )


def test_check_summary_counts_sources_read_when_none_could_be(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
):
    """Sources that could not be fetched are not counted as read."""
    config = tmp_path / "r.yaml"
    sources = [{"id": f"s{i}", "url": f"http://127.0.0.1:{closed_port}/{i}"} for i in range(3)]
    channel = {"id": "hotline", "kind": "phone", "phone": "8 800 555-89-82"}
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "2s"},
                "organizations": [{"id": "acme", "sources": sources, "channels": [channel]}],
            }
        )
    )
    main(["check", "--config", str(config)])
    assert "; 0 of 3 sources read" in capsys.readouterr().out


def _options() -> list[tuple[str, str]]:
    parser = cli._parser()
    found = [
        ("", o)
        for a in parser._actions
        for o in a.option_strings
        if o.startswith("--") and o != "--help"
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, ""))
                found += [
                    (name, o)
                    for a in sub._actions
                    for o in a.option_strings
                    if o.startswith("--") and o != "--help"
                ]
    return found


@pytest.mark.parametrize(("command", "option"), _options())
def test_readme_documents_every_command_and_option(command: str, option: str):
    """The synopsis in README names every command and each of its options."""
    synopsis = README[README.index("## Commands") :].split("```")[1]
    lines = re.split(r"\n(?=contact-monitor )", synopsis)
    if not command:
        assert f"contact-monitor {option}" in synopsis
        return
    (entry,) = [line for line in lines if line.split()[1:2] == [command]]
    assert option in entry


def test_readme_links_contracts_inside_the_repository():
    """The contracts are a file of the repository, not a path outside it."""
    assert "../shared" not in README
    assert "(docs/contracts.md)" in README
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    for contract in ("drift --suggest", "--config` may name a directory", "contact_probe_success"):
        assert contract in contracts
