"""Pushes from an outside tester: POST /api/v1/push/{org}/{channel} with a bearer token;
a late heartbeat is push_missing. In process through the ASGI app, and end to end with the
daemon for the heartbeat."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import RunningDaemon, registry_with, wait_for
from structlog.testing import capture_logs

from monitor.metrics import MonitorMetrics
from monitor.push import MAX_PUSH_BYTES, overdue_push
from monitor.state import State
from monitor.web import create_app

TOKEN = "t0ken-for-the-sellers-line"
PUSHED = {
    "id": "sellers-hotline",
    "kind": "phone",
    "phone": "8 800 555-89-91",
    "check": "push",
    "push": {"token_env": "SELLERS_HOTLINE_TOKEN", "expect_every": "15m"},
}
CHAT = {"id": "chat", "kind": "chat", "url": "https://acme.test/chat"}
GOOD = {"success": True, "reason": None, "duration_seconds": 12.3, "details": {"agent": "ivr"}}


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> State:
    monkeypatch.setenv("SELLERS_HOTLINE_TOKEN", TOKEN)
    pushed_chat = {**CHAT, "id": "pushed-chat", "check": "push", "push": {"token_env": "CHAT_T"}}
    monkeypatch.setenv("CHAT_T", "chat-token")
    return State(registry_with([PUSHED, CHAT, pushed_chat]))


async def post(state: State, path: str, body: Any, token: str | None = TOKEN, **kw: Any):
    app = create_app(state, MonitorMetrics(state))
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://monitor"
    ) as client:
        return await client.post(path, content=content, headers={**headers, **kw})


async def test_push_accepted_when_token_and_body_are_good(state: State):
    """A good push is 202 and becomes the channel's latest result, with its timestamp."""
    response = await post(state, "/api/v1/push/acme/sellers-hotline", GOOD)
    assert response.status_code == 202, response.text
    current = state.channels[("acme", "sellers-hotline")]
    assert (current.result.success, current.result.duration_seconds) == (True, 12.3)
    assert current.result.details["reported"] == {"agent": "ivr"}
    assert abs(current.push_received_at - time.time()) < 5


async def test_failed_push_gives_reason_when_tester_reports_failure(state: State):
    """A pushed failure without a reason is push_failure; with one, that reason."""
    await post(state, "/api/v1/push/acme/sellers-hotline", {"success": False})
    assert state.channels[("acme", "sellers-hotline")].result.reason == "push_failure"
    await post(state, "/api/v1/push/acme/sellers-hotline", {"success": False, "reason": "busy"})
    assert state.channels[("acme", "sellers-hotline")].result.reason == "busy"


async def test_any_channel_kind_can_push_when_on_push(state: State):
    """A chat channel on push takes pushes like a phone line."""
    response = await post(state, "/api/v1/push/acme/pushed-chat", GOOD, token="chat-token")
    assert response.status_code == 202


@pytest.mark.parametrize("token", ["wrong", TOKEN + "x", "", None, "chat-token"])
async def test_401_when_token_is_wrong(state: State, token: str | None):
    """A wrong, empty, missing or another channel's token is 401; nothing is recorded, and
    the token never reaches the logs."""
    with capture_logs() as logs:
        response = await post(state, "/api/v1/push/acme/sellers-hotline", GOOD, token=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert state.channels[("acme", "sellers-hotline")].result is None
    assert TOKEN not in repr(logs)
    assert (token or "\0") not in repr(logs)


async def test_401_when_token_variable_is_unset(state: State, monkeypatch: pytest.MonkeyPatch):
    """No token in the environment: every push is refused, with the variable's name."""
    monkeypatch.delenv("SELLERS_HOTLINE_TOKEN")
    response = await post(state, "/api/v1/push/acme/sellers-hotline", GOOD, token="")
    assert response.status_code == 401
    assert "SELLERS_HOTLINE_TOKEN is not set" in response.json()["error"]


async def test_404_when_channel_is_unknown(state: State):
    """A push for no channel of the registry is 404."""
    assert (await post(state, "/api/v1/push/acme/nope", GOOD)).status_code == 404
    assert (await post(state, "/api/v1/push/other/sellers-hotline", GOOD)).status_code == 404


async def test_409_when_channel_is_not_on_push(state: State):
    """A push for a channel the monitor probes itself is 409."""
    response = await post(state, "/api/v1/push/acme/chat", GOOD)
    assert response.status_code == 409
    assert "not on push" in response.json()["error"]


@pytest.mark.parametrize("declared", [True, False])
async def test_413_when_body_is_too_large(state: State, declared: bool):
    """A body over the cap is 413, whether its Content-Length says so or it streams on."""
    big = json.dumps({**GOOD, "message": "x" * MAX_PUSH_BYTES}).encode()
    if declared:
        response = await post(state, "/api/v1/push/acme/sellers-hotline", big)
    else:

        async def chunks():
            for i in range(0, len(big), 4096):
                yield big[i : i + 4096]

        app = create_app(state, MonitorMetrics(state))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://m"
        ) as client:
            response = await client.post(
                "/api/v1/push/acme/sellers-hotline",
                content=chunks(),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
    assert response.status_code == 413
    assert state.channels[("acme", "sellers-hotline")].result is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        ({"reason": None}, "success"),
        ({"success": "yes"}, "success"),
        ({"success": True, "duration_seconds": -1}, "duration_seconds"),
        ({"success": True, "reason": "Free text!"}, "reason"),
        ({"success": True, "details": []}, "details"),
        ({"success": True, "colour": "red"}, "colour"),
        ({"success": True, "details": {str(i): i for i in range(100)}}, "details"),
        (b'{"success": true, "details": {"pdd": 1e999}}', "details"),
        (b'{"success": true, "details": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}", "body"),
        (b"\xff\xfe", "body"),
    ],
)
async def test_422_names_the_field_when_body_breaks_the_schema(state: State, body: Any, field: str):
    """A body that is not the push schema is 422 with the field at fault."""
    response = await post(state, "/api/v1/push/acme/sellers-hotline", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]
    assert state.channels[("acme", "sellers-hotline")].result is None


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e999"])
async def test_422_says_finite_when_duration_is_not_a_number(state: State, number: bytes):
    """A NaN or infinite duration is refused as not finite, not as out of range."""
    body = b'{"success": true, "duration_seconds": ' + number + b"}"
    response = await post(state, "/api/v1/push/acme/sellers-hotline", body)
    assert response.status_code == 422, response.text
    assert (
        response.json()["error"]
        == "invalid push: duration_seconds: Input should be a finite number"
    )


@pytest.mark.parametrize("since", ["1e400", "nan", "-inf"])
async def test_incidents_refuse_since_when_it_is_not_finite(state: State, since: str):
    """`since` is epoch seconds: infinity or NaN is a 422, not an empty list."""
    app = create_app(state, MonitorMetrics(state))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://monitor"
    ) as client:
        response = await client.get(f"/api/v1/incidents?since={since}")
    assert response.status_code == 422, response.text


def test_push_missing_when_heartbeat_is_late(state: State):
    """No push within expect_every (since start, then since the last push) is push_missing."""
    key = ("acme", "sellers-hotline")
    assert overdue_push(state, key, state.started_at + 60) is None
    late = overdue_push(state, key, state.started_at + 16 * 60)
    assert (late.success, late.reason) == (False, "push_missing")
    state.channels[key].push_received_at = state.started_at + 10 * 60
    assert overdue_push(state, key, state.started_at + 16 * 60) is None


def test_daemon_takes_push_then_reports_push_missing_when_heartbeat_stops(
    tmp_path: Path, start_daemon: Any, monkeypatch: pytest.MonkeyPatch
):
    """End to end: a push shows in /metrics (success, last-received timestamp); when pushes
    stop for expect_every, the channel fails with push_missing and goes down."""
    monkeypatch.setenv("SELLERS_HOTLINE_TOKEN", TOKEN)
    config = tmp_path / "channels.yaml"
    pushed = {
        **PUSHED,
        "interval": "1s",
        "timeout": "1s",
        "push": {**PUSHED["push"], "expect_every": "3s"},
    }
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"failure_threshold": 1, "timeout": "1s"},  # interval ≥ timeout
                "organizations": [{"id": "acme", "channels": [pushed]}],
            }
        )
    )
    daemon: RunningDaemon = start_daemon(config)
    response = httpx.post(
        daemon.url + "/api/v1/push/acme/sellers-hotline",
        json=GOOD,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 202
    assert daemon.value("contact_probe_success", channel="sellers-hotline") == 1
    stamp = daemon.value("contact_push_last_received_timestamp_seconds", channel="sellers-hotline")
    assert stamp is not None
    assert abs(stamp - time.time()) < 10
    wait_for(
        lambda: daemon.value("contact_probe_failure_info", channel="sellers-hotline") == 1,
        "push_missing",
        timeout=15,
    )
    reasons = [s.labels["reason"] for s in daemon.samples("contact_probe_failure_info")]
    assert reasons == ["push_missing"]
    assert daemon.value("contact_channel_up", channel="sellers-hotline") == 0
    assert TOKEN not in daemon.logs()


async def test_metrics_still_render_when_pushed_details_pose_as_probe_facts(state: State):
    """Details named like the monitor's own facts stay the tester's; a call tester's SIP
    answer (numbers) is exported like a SIP probe's."""
    body = {
        "success": False,
        "reason": "busy",
        "details": {
            "status_code": "abc",
            "mx_count": [1],
            "sip_status_code": 486,
            "q850_cause": True,
        },
    }
    assert (await post(state, "/api/v1/push/acme/sellers-hotline", body)).status_code == 202
    text = MonitorMetrics(state).render()[0].decode()
    assert 'contact_probe_sip_status_code{org="acme",channel="sellers-hotline"' in text
    assert "contact_probe_http_status_code{" not in text
    assert "contact_probe_sip_q850_cause{" not in text
