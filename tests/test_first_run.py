"""A first run that explains itself: the first round's progress on /readyz and the status
page, the organisation's name in the heading, banners for troubles, times in the
registry's zone."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import registry_with
from servers import HttpServer, page

from monitor.cli import main
from monitor.history import History, HistoryHealth
from monitor.model import ProbeResult
from monitor.progress import first_round
from monitor.state import State
from monitor.status_page import render_status_page

SITE = {"id": "site", "kind": "web", "url": "https://acme.test/"}
CHAT = {"id": "chat", "kind": "chat", "url": "https://acme.test/chat"}
SOURCE = {"id": "contacts", "url": "https://acme.test/contacts"}
FIRST_ROUND = re.compile(
    r"first round: 1 of 2 channels probed, 0 of 1 pages read, about \d+ s left"
)


def starting_state() -> State:
    """Two channels and a page, 10 s after the start, one channel probed."""
    state = State(registry_with([SITE, CHAT], [SOURCE], interval="60s"))
    state.started_at = time.time() - 10
    state.record_channel(("acme", "site"), ProbeResult(True))
    return state


def test_first_round_counts_and_estimates_when_some_channels_are_probed():
    """Spread over one interval: 60 s + a 2 s timeout, 10 s gone, about 52 s left."""
    progress = first_round(starting_state())
    assert (progress.channels_probed, progress.channels) == (1, 2)
    assert (progress.sources_read, progress.sources) == (0, 1)
    assert 50 <= progress.seconds_left <= 52
    assert FIRST_ROUND.fullmatch(progress.text())


def test_first_round_says_finishing_when_the_estimate_has_run_out():
    """Past the estimate, it does not count below zero: the round is finishing."""
    state = starting_state()
    state.started_at -= 3600
    assert first_round(state).text().endswith(", finishing")


def test_status_page_explains_the_first_round_when_it_is_still_running():
    """A banner says how far the first round is and why channels show unknown."""
    html = render_status_page(starting_state(), None)
    assert 'id="first-round"' in html
    assert FIRST_ROUND.search(html.replace("First round", "first round"))


def test_status_page_has_no_first_round_banner_when_every_result_is_in():
    """Once every channel and page has a result, the banner goes."""
    state = starting_state()
    state.record_channel(("acme", "chat"), ProbeResult(True))
    state.record_source(("acme", "contacts"), ProbeResult(True))
    assert 'id="first-round"' not in render_status_page(state, None)


def test_heading_uses_the_organisation_name_when_the_registry_gives_one():
    """The page is titled with the organisation's name, not a generic one or its id."""
    registry = registry_with([SITE])
    data = registry.model_dump(by_alias=True)
    data["organizations"][0]["name"] = "Acme Ltd"
    state = State(type(registry).model_validate(data))
    html = render_status_page(state, None)
    assert "<h1>Acme Ltd: support contact status</h1>" in html
    assert "<h2>Acme Ltd</h2>" in html


def test_banner_shows_the_rejected_registry_when_a_reload_failed():
    """A failed reload is shown with its first error and a count of the rest."""
    state = starting_state()
    state.record_reload(False, ["r.yaml:3: organizations: unknown key", "r.yaml:9: bad", "x"])
    html = render_status_page(state, None)
    assert 'class="banner trouble"' in html
    assert "was rejected; the last good registry keeps running: r.yaml:3:" in html
    assert "(and 2 more)" in html


def test_banner_shows_history_errors_when_writes_failed():
    """History write errors come from the daemon's `HistoryHealth`: one alert banner."""
    health = HistoryHealth(failing=True, error="h.db: database or disk is full", write_errors=3)
    html = render_status_page(starting_state(), None, health=health)
    assert 'id="history-problem" role="alert"' in html
    assert "history cannot be written: h.db: database or disk is full (3 failed writes" in html
    assert html.count("h.db: database or disk is full") == 1


def test_no_history_banner_when_history_is_healthy():
    """A working history (no failed write) shows no history banner."""
    html = render_status_page(starting_state(), None, health=HistoryHealth())
    assert 'id="history-problem"' not in html


def test_no_banner_when_all_is_well():
    """A loaded registry and working history: no trouble banner."""
    assert "banner trouble" not in render_status_page(starting_state(), None)


def test_readyz_explains_the_first_round_when_the_daemon_just_started(
    tmp_path: Path, http_server: HttpServer, start_daemon: Any
):
    """/readyz is 503 with "first round: 0 of 2 channels probed, about N s left" at first."""
    http_server.routes["/"] = page("ok")
    config = tmp_path / "r.yaml"
    channels = [
        {"id": f"site-{i}", "kind": "web", "url": http_server.url("/"), "interval": "1h"}
        for i in range(2)
    ]
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"interval": "1h", "timeout": "2s"},
                "organizations": [{"id": "acme", "name": "Acme", "channels": channels}],
            }
        )
    )
    daemon = start_daemon(config)
    ready = daemon.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert re.fullmatch(
        r"first round: [0-2] of 2 channels probed, about \d+ s left", body["message"]
    )
    assert 3500 < body["seconds_left"] <= 3602
    assert "First round: " in daemon.get("/").text


def test_history_command_shows_times_in_the_registry_zone_when_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """An incident at 12:00 UTC reads 15:00+0300 under a Europe/Moscow registry."""
    db = tmp_path / "history.sqlite3"
    config = tmp_path / "r.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timezone": "Europe/Moscow", "history": {"path": str(db)}},
                "organizations": [{"id": "acme", "channels": [SITE]}],
            }
        )
    )
    history = History(db, 86400 * 365)
    history.channel_down("acme", "site", "web", 1_764_417_600.0, "timeout", "no answer")
    history.close()  # 2025-11-29 12:00:00 UTC
    assert main(["history", "--config", str(config), "--since", "3650d"]) == 0
    assert "2025-11-29 15:00:00+0300" in capsys.readouterr().out


def test_drift_box_says_no_page_is_watched_when_the_registry_has_no_sources():
    """With no sources nothing was compared: the page must not claim every page matches."""
    html = render_status_page(State(registry_with([SITE, CHAT], [], interval="60s")), None)
    assert "No official page is watched" in html
    assert "Every official page matches the registry." not in html


def test_drift_box_says_pages_match_when_sources_show_no_finding():
    """With sources and no finding the page says they match."""
    html = render_status_page(starting_state(), None)
    assert "Every official page matches the registry." in html
