"""The command line's contract: commands, exit statuses, JSON shapes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import cli
from monitor.cli import main

ROOT = Path(__file__).parent.parent


def test_schema_prints_json_schema_when_asked(capsys: pytest.CaptureFixture[str]):
    """`schema` prints a JSON Schema whose root requires version and organizations."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"version", "organizations"} <= set(schema["required"])


def test_usage_error_exits_2_when_command_is_unknown(capsys: pytest.CaptureFixture[str]):
    """An unknown command is a usage error, exit 2."""
    with pytest.raises(SystemExit) as raised:
        main(["frobnicate"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_module_runs_when_invoked_with_python_m():
    """`python -m monitor validate` works like the console script."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "validate",
            "--config",
            str(ROOT / "config" / "channels.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_check_json_has_contract_fields_when_probing_phones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Every result carries the contract's keys."""
    config = tmp_path / "r.yaml"
    config.write_text(
        "version: 1\norganizations:\n  - id: ozon\n    channels:\n"
        "      - {id: bank-hotline, kind: phone, phone: '8 800 555-89-82'}\n"
    )
    assert main(["check", "--config", str(config), "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert {
        "org",
        "channel",
        "kind",
        "status",
        "success",
        "reason",
        "duration_seconds",
        "details",
    } <= set(result)
    assert result["details"]["e164"] == "+78005558982"
    assert result["details"]["number_type"] == "toll_free"


def test_check_exits_2_when_registry_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A broken registry stops check with its errors and exit 2."""
    config = tmp_path / "bad.yaml"
    config.write_text("version: 1\norganizations: oops\n")
    assert main(["check", "--config", str(config)]) == 2
    assert "organizations" in capsys.readouterr().err


def test_progress_shown_when_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch):
    """On a terminal, a counter is drawn and then erased; elsewhere nothing is written."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Tty()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cli._progress() as progress:
        assert progress is not None
        progress(3, 10)
    assert "probing 3/10" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K")


def test_no_progress_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch):
    """Piped output gets no progress line."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with cli._progress() as progress:
        assert progress is None
