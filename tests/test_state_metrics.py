"""State damping, business hours and the metrics collector, in process."""

from __future__ import annotations

import datetime
import functools
import math

import pytest
from conftest import registry_with
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from monitor.config import HoursWindow
from monitor.exposition import label_text
from monitor.extract import extract_contacts
from monitor.hours import in_hours
from monitor.metrics import MonitorMetrics
from monitor.model import ProbeResult
from monitor.state import State

UTC = datetime.UTC
SITE = {"id": "site", "kind": "web", "url": "https://acme.test/"}
OLD = {"id": "old", "kind": "phone", "phone": "8 (800) 234-70-00", "status": "deprecated"}
SOURCE = {"id": "contacts", "url": "https://acme.test/contacts"}
OK, FAIL = ProbeResult(True), ProbeResult(False, "timeout", "no answer")

SITE_LABELS = {"org": "acme", "channel": "site", "kind": "web", "service": "general"}


def state_with(*channels: dict, **defaults: object) -> State:
    return State(registry_with(list(channels), [SOURCE], **defaults))


def value(metrics: MonitorMetrics, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample of what /metrics serves, or None when there is none."""
    text = metrics.render()[0].decode()
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels == labels
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_down_only_after_failure_threshold_when_probes_fail():
    """One failure leaves the damped state alone; the second (default threshold 2) is down."""
    state = state_with(SITE)
    state.record_channel(("acme", "site"), OK)
    state.record_channel(("acme", "site"), FAIL)
    assert state.channels[("acme", "site")].up is True
    with capture_logs() as logs:
        state.record_channel(("acme", "site"), FAIL)
    assert state.channels[("acme", "site")].up is False
    assert logs == [
        {
            "event": "channel_down",
            "log_level": "info",
            "org": "acme",
            "channel": "site",
            "kind": "web",
            "reason": "timeout",
            "message": "no answer",
            "previous": "up",
        }
    ]


def test_up_after_success_threshold_when_channel_overrides_it():
    """A per-channel success_threshold of 3 needs three successes to come back up."""
    state = state_with({**SITE, "success_threshold": 3, "failure_threshold": 1})
    key = ("acme", "site")
    state.record_channel(key, FAIL)
    assert state.channels[key].up is False
    for _ in range(2):
        state.record_channel(key, OK)
    assert state.channels[key].up is False
    state.record_channel(key, OK)
    assert state.channels[key].up is True


def test_result_ignored_when_channel_was_removed_by_reload():
    """A probe that finishes after its channel was removed changes nothing."""
    state = state_with(SITE)
    state.set_registry(registry_with([], [SOURCE]))
    state.record_channel(("acme", "site"), OK)
    assert ("acme", "site") not in state.channels


def scan(html: str) -> ProbeResult:
    return ProbeResult(True, contacts=extract_contacts(html, "RU", html=True))


def test_finding_raised_and_cleared_events_when_page_changes():
    """A deprecated number appearing and disappearing is one event each."""
    state = state_with(OLD)
    with capture_logs() as logs:
        state.record_source(("acme", "contacts"), scan("<p>8 800 234-70-00</p>"))
        state.record_source(("acme", "contacts"), scan("<p>8 800 234-70-00</p>"))
        state.record_source(("acme", "contacts"), scan("<p>nothing</p>"))
    assert [(e["event"], e["type"]) for e in logs] == [
        ("finding_raised", "deprecated_published"),
        ("finding_cleared", "deprecated_published"),
    ]


@pytest.mark.parametrize(
    ("when_utc", "expected"),
    [
        (datetime.datetime(2026, 11, 25, 5, 59, tzinfo=UTC), False),  # Wed 08:59 Moscow
        (datetime.datetime(2026, 11, 25, 6, 0, tzinfo=UTC), True),  # Wed 09:00 Moscow
        (datetime.datetime(2026, 11, 25, 14, 59, tzinfo=UTC), True),  # Wed 17:59
        (datetime.datetime(2026, 11, 25, 15, 0, tzinfo=UTC), False),  # Wed 18:00
        (datetime.datetime(2026, 11, 28, 9, 0, tzinfo=UTC), False),  # Sat 12:00
    ],
)
def test_in_hours_follows_moscow_time_when_window_is_weekdays(
    when_utc: datetime.datetime, expected: bool
):
    """mon-fri 09:00-18:00 is read in the registry's timezone, end exclusive."""
    window = HoursWindow.model_validate({"days": "mon-fri", "from": "09:00", "to": "18:00"})
    assert in_hours((window,), when_utc, "Europe/Moscow") is expected


def test_in_hours_always_when_channel_is_24_7():
    """No windows means always open."""
    assert in_hours((), datetime.datetime(2026, 1, 1, 3, tzinfo=UTC), "Europe/Moscow")


def test_in_hours_wraps_week_when_days_run_past_sunday():
    """fri-mon includes Sunday and Monday."""
    window = HoursWindow.model_validate({"days": "fri-mon"})
    sunday = datetime.datetime(2026, 11, 29, 12, tzinfo=UTC)
    wednesday = datetime.datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert in_hours((window,), sunday, "UTC")
    assert not in_hours((window,), wednesday, "UTC")


def test_series_vanish_when_channel_is_removed_from_registry():
    """The collector builds series from state: a removed channel leaves no stale series."""
    state = state_with(SITE, {**SITE, "id": "other"})
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), OK)
    assert value(metrics, "contact_probe_success", SITE_LABELS) == 1
    state.set_registry(registry_with([{**SITE, "id": "other"}], [SOURCE]))
    assert value(metrics, "contact_probe_success", SITE_LABELS) is None
    assert (
        value(
            metrics,
            "contact_channel_info",
            {**SITE_LABELS, "status": "active", "contact": "https://acme.test/"},
        )
        is None
    )


def test_deprecated_published_gauge_when_source_shows_deprecated_number():
    """contact_deprecated_published and the findings count follow the latest scan."""
    state = state_with(OLD)
    metrics = MonitorMetrics(state)
    state.record_source(("acme", "contacts"), scan("<p>+7 800 234-70-00</p>"))
    get = functools.partial(value, metrics)
    assert (
        get("contact_deprecated_published", {"org": "acme", "channel": "old", "source": "contacts"})
        == 1
    )
    assert (
        get(
            "contact_drift_findings",
            {"org": "acme", "source": "contacts", "type": "unregistered_published"},
        )
        == 0
    )
    state.record_source(("acme", "contacts"), scan("<p>-</p>"))
    assert (
        get("contact_deprecated_published", {"org": "acme", "channel": "old", "source": "contacts"})
        is None
    )


def test_probe_details_exported_when_result_has_them():
    """HTTP status, certificate expiry, MX count and SMTP stage become their own series."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(
        ("acme", "site"),
        ProbeResult(
            True,
            details={
                "status_code": 200,
                "cert_not_after": 1.9e9,
                "mx_count": 2,
                "smtp_stage": "done",
            },
        ),
    )
    get = functools.partial(value, metrics)
    assert get("contact_probe_http_status_code", SITE_LABELS) == 200
    assert get("contact_probe_tls_cert_expiry_timestamp_seconds", SITE_LABELS) == 1.9e9
    assert get("contact_probe_mx_records", SITE_LABELS) == 2
    assert get("contact_probe_smtp_stage_info", {**SITE_LABELS, "stage": "done"}) == 1


def test_channel_lines_rendered_anew_when_a_new_result_arrives():
    """A channel's cached lines are replaced as soon as its state changes."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), ProbeResult(True, duration_seconds=0.25))
    assert value(metrics, "contact_probe_duration_seconds", SITE_LABELS) == 0.25
    state.record_channel(("acme", "site"), ProbeResult(False, "timeout", duration_seconds=5))
    assert value(metrics, "contact_probe_duration_seconds", SITE_LABELS) == 5
    assert value(metrics, "contact_probes_total", {**SITE_LABELS, "result": "failure"}) == 1
    assert value(metrics, "contact_probe_failure_info", {**SITE_LABELS, "reason": "timeout"}) == 1


def test_channel_labels_follow_reload_when_channel_definition_changes():
    """A reload that changes a channel's service relabels its series at the next scrape."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), OK)
    assert value(metrics, "contact_probe_success", SITE_LABELS) == 1
    state.set_registry(registry_with([{**SITE, "service": "sellers"}], [SOURCE]))
    state.record_channel(("acme", "site"), OK)
    assert value(metrics, "contact_probe_success", SITE_LABELS) is None
    assert value(metrics, "contact_probe_success", {**SITE_LABELS, "service": "sellers"}) == 1


def test_status_series_follow_reload_when_a_channel_becomes_deprecated():
    """Lines that depend on the definition alone are rendered anew when a reload changes it,
    although the channel's probe state did not change."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), OK)
    assert value(metrics, "contact_channel_deprecated", SITE_LABELS) == 0
    state.set_registry(registry_with([{**SITE, "status": "deprecated"}], [SOURCE]))
    assert value(metrics, "contact_channel_deprecated", SITE_LABELS) == 1
    info = {**SITE_LABELS, "status": "deprecated", "contact": "https://acme.test/"}
    assert value(metrics, "contact_channel_info", info) == 1


@pytest.mark.parametrize("measured", [float("inf"), float("-inf"), 1.764e9, 0.1 + 0.2, 7])
def test_sample_value_reads_back_exactly_when_it_is_large_odd_or_infinite(measured: float):
    """Values are written in a form the exposition parsers read back to the same float."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), ProbeResult(True, duration_seconds=measured))
    assert value(metrics, "contact_probe_duration_seconds", SITE_LABELS) == measured


def test_sample_value_is_nan_when_a_prober_reports_nan():
    """NaN is spelt as the exposition format wants it, not as Python's repr does."""
    state = state_with(SITE)
    metrics = MonitorMetrics(state)
    state.record_channel(("acme", "site"), ProbeResult(True, duration_seconds=float("nan")))
    got = value(metrics, "contact_probe_duration_seconds", SITE_LABELS)
    assert got is not None
    assert math.isnan(got)


def test_same_samples_when_scraped_as_openmetrics_or_text():
    """Prometheus asks for OpenMetrics, curl gets the text format: the same samples both ways,
    and OpenMetrics ends with its end marker."""
    state = state_with(SITE, OLD)
    metrics = MonitorMetrics(state, scope={"location": "msk"})
    state.record_channel(("acme", "site"), ProbeResult(True, details={"phases": {"tls": 0.1}}))
    text, text_type = metrics.render("")
    om, om_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert text_type.startswith("text/plain")
    assert om_type.startswith("application/openmetrics")
    assert om.endswith(b"# EOF\n")

    def samples(families) -> set[tuple[str, tuple, float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in families
            for s in f.samples
            if f.name.startswith("contact_") and not s.name.endswith("_created")
        }

    from_text = samples(text_string_to_metric_families(text.decode()))
    assert from_text == samples(openmetrics_families(om.decode()))
    assert (
        "contact_probes_total",
        (*sorted({**SITE_LABELS, "location": "msk", "result": "success"}.items()),),
        1.0,
    ) in from_text


def test_label_values_escaped_when_they_hold_quotes_backslashes_and_newlines():
    """Label values are escaped as the exposition format requires, so a parser reads them back."""
    hostile = 'a "quoted" \\path\nnext'
    line = f"m{{{label_text(contact=hostile)}}} 1\n"
    (family,) = text_string_to_metric_families(line)
    assert family.samples[0].labels == {"contact": hostile}
