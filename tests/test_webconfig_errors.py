"""`--web-config` problems are reported one line each, as `validate` reports the registry's:
file: key: problem — never pydantic's dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_daemon import write

from monitor.cli import main


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            "colour: red\ntls_server_config: {cert_file: a.pem, key_file: a.key, cipher: x}\n",
            ["tls_server_config.cipher: unknown key", "colour: unknown key"],
        ),
        (
            "tls_server_config: {cert_file: a.pem}\n",
            ["tls_server_config.key_file: required key is missing"],
        ),
        ("- a\n- b\n", ["expected a mapping of keys to values, got list"]),
        (
            "basic_auth_users: {admin: 42}\n",
            ["basic_auth_users.admin: Input should be a valid string"],
        ),
        (
            "basic_auth_users: {admin: [\n",
            ["invalid YAML: expected the node content, but found '<stream end>'"],
        ),
    ],
    ids=["unknown-keys", "missing-key", "not-a-mapping", "wrong-type", "yaml-syntax"],
)
def test_web_config_problems_are_one_line_each_when_web_config_is_invalid(
    text: str, problems: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    web = tmp_path / "web.yml"
    web.write_text(text)
    config = write(tmp_path / "r.yaml", [])
    assert main(["run", "--config", str(config), "--web-config", str(web)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"contact-monitor: {web}: {p}" for p in problems]
    assert "pydantic" not in err
