"""A hostile server's bytes appear in reasons as text, never as a Python repr."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from test_http_real_sites import check

from monitor.wiretext import MAX_CHARS, readable, wire_text

HEAD = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("answer", "reason", "shown"),
    [
        (
            HEAD + b"X Bad Header: y\r\nContent-Length: 2\r\n\r\nok",
            "http_malformed_header",
            '"X Bad Header: y"',
        ),
        (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nok\r\n0\r\n\r\n",
            "http_protocol",
            '"ZZ\\r\\n"',
        ),
        (
            b"HTTP/1.1 2\xff0 OK\r\nContent-Length: 2\r\n\r\nok",
            "http_protocol",
            '"HTTP/1.1 2\u00ff0 OK"',
        ),
        (
            HEAD + b"X-Ctl\x01 : v\r\nContent-Length: 2\r\n\r\nok",
            "http_malformed_header",
            '"X-Ctl\\x01 : v"',
        ),
    ],
    ids=["header-line", "chunk-header", "status-line", "control-byte"],
)
def test_reason_shows_wire_bytes_as_text_when_server_sends_malformed_http(
    answer: bytes,
    reason: str,
    shown: str,
    raw_server: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    def reply(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(answer)

    server = raw_server(reply)
    result = check(tmp_path, capsys, {"url": f"http://127.0.0.1:{server.port}/"})
    assert result["reason"] == reason, result
    assert shown in result["message"], result
    assert "bytearray(" not in result["message"]
    assert "b'" not in result["message"]


def test_wire_text_is_truncated_when_line_is_long():
    shown = wire_text(b"A" * 1000)
    assert shown == '"' + "A" * MAX_CHARS + '…"'


def test_message_is_unchanged_when_it_quotes_no_bytes():
    assert readable("illegal header line: 'x'") == "illegal header line: 'x'"
