"""Writes dashboards/contact-monitor.json, the Grafana dashboard, from this description.

Run `python scripts/build_dashboard.py` after editing; a test keeps the JSON in step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "dashboards" / "contact-monitor.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'org=~"$org",service=~"$service",kind=~"$kind",channel=~"$channel"'
ORG = 'org=~"$org"'
RESULT = SEL + ',location=~"$location"'  # probe results carry a location, registry facts not
FIELD_LINK = {
    "title": "Details of ${__field.labels.channel}",
    "url": "/d/contact-monitor/contact-monitor?var-org=${__field.labels.org}"
    "&var-channel=${__field.labels.channel}&${datasource:queryparam}",
}
CHANNEL_LINK = [
    {
        "title": "Details of ${__data.fields.org}/${__data.fields.channel}",
        "url": "/d/contact-monitor/contact-monitor?var-org=${__data.fields.org}"
        "&var-channel=${__data.fields.channel}&${datasource:queryparam}",
    }
]
UP_DOWN = [
    {
        "type": "value",
        "options": {"0": {"text": "DOWN", "color": "red"}, "1": {"text": "up", "color": "green"}},
    }
]


def target(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> dict:
    t: dict[str, Any] = {
        "datasource": DS,
        "expr": expr,
        "refId": ref,
        "legendFormat": legend or "__auto",
    }
    if instant:
        t.update(instant=True, range=False, format="table")
    return t


def panel(
    kind: str,
    title: str,
    targets: list[dict],
    pos: tuple[int, int, int, int],
    description: str = "",
    **extra: Any,
) -> dict:
    x, y, w, h = pos
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        **extra,
    }


def stat(
    title: str,
    expr: str,
    pos: tuple[int, int, int, int],
    description: str,
    thresholds: list[tuple[float | None, str]],
    unit: str = "short",
) -> dict:
    steps = [{"value": v, "color": c} for v, c in thresholds]
    return panel(
        "stat",
        title,
        [target(expr, instant=True)],
        pos,
        description,
        fieldConfig={
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        options={
            "colorMode": "background",
            "graphMode": "none",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    )


def table(
    title: str,
    targets: list[dict],
    pos: tuple[int, int, int, int],
    description: str,
    links: list[dict] | None = None,
) -> dict:
    return panel(
        "table",
        title,
        targets,
        pos,
        description,
        fieldConfig={"defaults": {"links": links or []}, "overrides": []},
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "__name__": True, "job": True}},
            },
        ],
    )


def timeseries(
    title: str,
    targets: list[dict],
    pos: tuple[int, int, int, int],
    description: str,
    unit: str = "short",
) -> dict:
    return panel(
        "timeseries",
        title,
        targets,
        pos,
        description,
        fieldConfig={"defaults": {"unit": unit}, "overrides": []},
    )


def row(title: str, y: int) -> dict:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def variable(name: str, label: str, query: str) -> dict:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def panels() -> list[dict]:
    active = "unless on (org, channel) (contact_channel_deprecated == 1)"
    return [
        row("Overview", 0),
        stat(
            "Channels down",
            f"count((contact_channel_up{{{RESULT}}} == 0) {active}) or vector(0)",
            (0, 1, 4, 4),
            "Active channels whose damped state is down.",
            [(None, "green"), (1, "red")],
        ),
        stat(
            "Deprecated contacts still published",
            f"count(contact_deprecated_published{{{ORG}}} == 1) or vector(0)",
            (4, 1, 5, 4),
            "Deprecated contacts (like 8 (800) 234-70-00) that an official page still shows.",
            [(None, "green"), (1, "orange")],
        ),
        stat(
            "Drift findings",
            f"sum(contact_drift_findings{{{ORG}}}) or vector(0)",
            (9, 1, 4, 4),
            "All current differences between the registry and the pages.",
            [(None, "green"), (1, "yellow")],
        ),
        stat(
            "Availability, 30 days",
            f'min(service:contact_probe_success:avg_over_time_30d{{{ORG},service=~"$service"}})',
            (13, 1, 4, 4),
            "Worst service's share of successful probes over 30 days.",
            [(None, "red"), (0.99, "yellow"), (0.999, "green")],
            unit="percentunit",
        ),
        stat(
            "Monitor up",
            'min(up{job="contact-monitor"})',
            (17, 1, 3, 4),
            "Prometheus can scrape every contact-monitor instance.",
            [(None, "red"), (1, "green")],
        ),
        stat(
            "Registry reload",
            "min(contact_config_last_reload_successful)",
            (20, 1, 4, 4),
            "0 when the last change to the registry file was rejected.",
            [(None, "red"), (1, "green")],
        ),
        row("Channels", 5),
        panel(
            "state-timeline",
            "Channel state by service",
            [target(f"contact_channel_up{{{RESULT}}}", "{{service}} / {{channel}}")],
            (0, 6, 14, 10),
            "Damped up/down state of every channel, grouped by service.",
            fieldConfig={
                "defaults": {
                    "mappings": UP_DOWN,
                    "links": [FIELD_LINK],
                },
                "overrides": [],
            },
            options={"showValue": "never", "mergeValues": True},
        ),
        table(
            "Failing channels and why",
            [target(f"contact_probe_failure_info{{{RESULT}}} == 1", instant=True)],
            (14, 6, 10, 10),
            "Latest failure reason of every channel whose last probe failed; click for details.",
            CHANNEL_LINK,
        ),
        row("Drift: what the pages show", 16),
        table(
            "Deprecated contacts still published",
            [
                target(
                    f"(contact_deprecated_published{{{ORG}}} == 1) * on (org, channel) "
                    "group_left (contact, service) group by (org, channel, contact, service) "
                    "(contact_channel_info)",
                    instant=True,
                )
            ],
            (0, 17, 10, 8),
            "Each deprecated contact and the page that still shows it.",
            CHANNEL_LINK,
        ),
        timeseries(
            "Drift findings by type",
            [target(f"sum by (type) (contact_drift_findings{{{ORG}}})", "{{type}}")],
            (10, 17, 7, 8),
            "Findings over time: deprecated, unregistered, missing, unreachable.",
        ),
        table(
            "Source pages",
            [
                target(f"contact_source_up{{{ORG}}}", instant=True),
                target(f"contact_source_published_contacts{{{ORG}}}", instant=True, ref="B"),
            ],
            (17, 17, 7, 8),
            "Whether each official page could be read, and how many contacts it shows.",
        ),
        row("Availability against objective", 25),
        panel(
            "bargauge",
            "Availability by service (30 days) vs objective",
            [
                target(
                    f'service:contact_probe_success:avg_over_time_30d{{{ORG},service=~"$service"}}',
                    "{{service}}",
                ),
                target(
                    f'contact_service_availability_objective_ratio{{{ORG},service=~"$service"}}',
                    "objective {{service}}",
                    ref="B",
                ),
            ],
            (0, 26, 8, 8),
            "Share of successful probes per service; the objective is 99.9 % unless set.",
            fieldConfig={
                "defaults": {"unit": "percentunit", "min": 0.9, "max": 1},
                "overrides": [],
            },
        ),
        timeseries(
            "Error ratio by service (1 h)",
            [
                target(
                    f'service:contact_probe_errors:ratio_rate1h{{{ORG},service=~"$service"}}',
                    "{{service}}",
                )
            ],
            (8, 26, 8, 8),
            "Failed probes / all probes; burn-rate alerts use it.",
            unit="percentunit",
        ),
        table(
            "Channel availability 1 h / 1 d / 30 d",
            [
                target(f"channel:contact_probe_success:avg_over_time_1h{{{SEL}}}", instant=True),
                target(
                    f"channel:contact_probe_success:avg_over_time_1d{{{SEL}}}",
                    instant=True,
                    ref="B",
                ),
                target(
                    f"channel:contact_probe_success:avg_over_time_30d{{{SEL}}}",
                    instant=True,
                    ref="C",
                ),
            ],
            (16, 26, 8, 8),
            "Per channel, over three windows.",
            CHANNEL_LINK,
        ),
        row("Latency and certificates", 34),
        timeseries(
            "Probe duration",
            [target(f"contact_probe_duration_seconds{{{RESULT}}}", "{{channel}}")],
            (0, 35, 8, 8),
            "Duration of the latest probe of each channel.",
            unit="s",
        ),
        timeseries(
            "HTTP phases (mean over channels)",
            [target(f"avg by (phase) (contact_probe_http_phase_seconds{{{RESULT}}})", "{{phase}}")],
            (8, 35, 8, 8),
            "Connect, TLS, request, server and transfer time.",
            unit="s",
        ),
        panel(
            "bargauge",
            "Certificate days left",
            [
                target(
                    f"(contact_probe_tls_cert_expiry_timestamp_seconds{{{RESULT}}}"
                    " - time()) / 86400",
                    "{{channel}}",
                )
            ],
            (16, 35, 8, 8),
            "Days until each served certificate expires.",
            fieldConfig={
                "defaults": {
                    "unit": "d",
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            {"value": None, "color": "red"},
                            {"value": 3, "color": "orange"},
                            {"value": 14, "color": "green"},
                        ],
                    },
                },
                "overrides": [],
            },
        ),
        row("E-mail", 43),
        table(
            "MX records",
            [target(f"contact_probe_mx_records{{{RESULT}}}", instant=True)],
            (0, 44, 12, 7),
            "MX records of each e-mail channel's domain.",
            CHANNEL_LINK,
        ),
        table(
            "SMTP stage reached",
            [target(f"contact_probe_smtp_stage_info{{{RESULT}}} == 1", instant=True)],
            (12, 44, 12, 7),
            "How far the latest SMTP session got: done is healthy.",
            CHANNEL_LINK,
        ),
        row("Locations", 51),
        table(
            "Share of locations seeing each channel down",
            [
                target(
                    "(channel:contact_locations_down:count"
                    " / channel:contact_locations_probing:count) or on (org, channel)"
                    " (1 - max by (org, channel, kind, service) "
                    f"(contact_channel_up{{{RESULT}}}))",
                    instant=True,
                )
            ],
            (0, 52, 12, 8),
            "1 = every location agrees it is down (the quorum alert fires above 0.5); "
            "with one location, 0 or 1.",
            CHANNEL_LINK,
        ),
        timeseries(
            "Channels seen down, by location",
            [target(f"count by (location) (contact_channel_up{{{RESULT}}} == 0)", "{{location}}")],
            (12, 52, 12, 8),
            "A location alone with many failures is our network, not the channels.",
        ),
        row("Monitor health", 60),
        timeseries(
            "Scheduler lag",
            [
                target(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(contact_scheduler_lag_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                target(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(contact_scheduler_lag_seconds_bucket[$__rate_interval])))",
                    "p99",
                    ref="B",
                ),
            ],
            (0, 61, 8, 7),
            "Actual minus planned start of probes.",
            unit="s",
        ),
        timeseries(
            "Probes per second",
            [
                target(
                    f"sum by (result) (rate(contact_probes_total{{{RESULT}}}[$__rate_interval]))",
                    "{{result}}",
                )
            ],
            (8, 61, 8, 7),
            "Probe rate by result.",
            unit="ops",
        ),
        timeseries(
            "Monitor memory",
            [target('process_resident_memory_bytes{job="contact-monitor"}', "{{instance}}")],
            (16, 61, 8, 7),
            "Resident memory of each contact-monitor process.",
            unit="bytes",
        ),
    ]


# --- phone lines: SIP test calls (issue 16) -------------------------------------------


def phone_panels(y: int) -> list[dict]:
    """Post-dial delay and SIP answers of the test calls, below everything else."""
    phones = f'{RESULT},kind="phone"'
    return [
        row("Phone lines: SIP test calls", y),
        timeseries(
            "Post-dial delay",
            [target(f"contact_probe_sip_post_dial_delay_seconds{{{phones}}}", "{{channel}}")],
            (0, y + 1, 12, 8),
            "From the INVITE to the first ringing (180), early media (183) or answer (200) of "
            "each test call. A growing delay is a trunk or carrier problem callers hear as "
            "silence.",
            unit="s",
        ),
        table(
            "SIP answers",
            [
                target(f"contact_probe_sip_status_code{{{phones}}}", instant=True, ref="A"),
                target(f"contact_probe_sip_q850_cause{{{phones}}}", instant=True, ref="B"),
                target(f"contact_probe_failure_info{{{phones}}} == 1", instant=True, ref="C"),
            ],
            (12, y + 1, 12, 8),
            "Latest test call per line: SIP status code (180/183/200 reached; 404/410 not in "
            "service; 486 busy; 480 no answer; 503 trunk unavailable), Q.850 cause of the "
            "Reason header, and the failure reason.",
        ),
    ]


def dashboard() -> dict:
    return {
        "uid": "contact-monitor",
        "title": "Contact monitor",
        "tags": ["contact-monitor"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "description": "Published support contacts: reachability, drift, availability.",
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("org", "Organisation", "label_values(contact_channel_info, org)"),
                variable(
                    "service", "Service", 'label_values(contact_channel_info{org=~"$org"}, service)'
                ),
                variable(
                    "kind",
                    "Kind",
                    'label_values(contact_channel_info{org=~"$org",service=~"$service"}, kind)',
                ),
                variable(
                    "channel",
                    "Channel",
                    "label_values(contact_channel_info"
                    '{org=~"$org",service=~"$service",kind=~"$kind"}, channel)',
                ),
                variable("location", "Location", "label_values(contact_probe_success, location)"),
            ]
        },
        "panels": [{**p, "id": i} for i, p in enumerate([*panels(), *phone_panels(68)], start=1)],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
