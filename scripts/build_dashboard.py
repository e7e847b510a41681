"""Writes dashboards/contact-monitor.json, the Grafana dashboard, with Grafana's own
`grafana-foundation-sdk` (its builders follow Grafana's dashboard schema), from this
description.

Run `python scripts/build_dashboard.py` after editing; a test keeps the JSON in step, and
the stack test runs every panel's query against a real Prometheus. A panel is a few lines:
one of `stat`, `table`, `timeseries`, `bargauge`, `state_timeline` with its queries
(`q(...)`), width and height; rows and panels are laid out left to right by the SDK.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    prometheus,
    statetimeline,
)
from grafana_foundation_sdk.builders import stat as sdk_stat
from grafana_foundation_sdk.builders import table as sdk_table
from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent.parent / "dashboards" / "contact-monitor.json"
DS = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'org=~"$org",service=~"$service",kind=~"$kind",channel=~"$channel"'
ORG = 'org=~"$org"'
RESULT = SEL + ',location=~"$location"'  # probe results carry a location, registry facts not
ACTIVE = "unless on (org, channel) (contact_channel_deprecated == 1)"
PLANNED = "unless on (org, channel) (contact_channel_in_maintenance == 1)"
FIELD_LINK = DashboardLink("Details of ${__field.labels.channel}").url(
    "/d/contact-monitor/contact-monitor?var-org=${__field.labels.org}"
    "&var-channel=${__field.labels.channel}&${datasource:queryparam}"
)
CHANNEL_LINK = DashboardLink("Details of ${__data.fields.org}/${__data.fields.channel}").url(
    "/d/contact-monitor/contact-monitor?var-org=${__data.fields.org}"
    "&var-channel=${__data.fields.channel}&${datasource:queryparam}"
)
UP_DOWN = [
    models.ValueMap(
        {
            "0": models.ValueMappingResult(text="DOWN", color="red"),
            "1": models.ValueMappingResult(text="up", color="green"),
        }
    )
]
Steps = list[tuple[float | None, str]]
Size = tuple[int, int]  # width (of 24), height


# --- panel kinds ------------------------------------------------------------------------


def q(expr: str, legend: str = "__auto", *, instant: bool = False) -> prometheus.Dataquery:
    """A Prometheus query; `instant` ones come back as a table of the latest values."""
    query = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DS)
    if instant:
        query = query.instant().format(PromQueryFormat.TABLE)
    return query


def _common(panel: Any, title: str, description: str, queries: list, size: Size) -> Any:
    panel = panel.title(title).description(description).datasource(DS)
    for ref, query in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query.ref_id(ref))
    return panel.span(size[0]).height(size[1])


def thresholds(steps: Steps) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=v, color=c) for v, c in steps])
    )


def stat(title: str, expr: str, size: Size, description: str, steps: Steps, unit: str = "short"):
    return (
        _common(sdk_stat.Panel(), title, description, [q(expr, instant=True)], size)
        .unit(unit)
        .thresholds(thresholds(steps))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def table(title: str, queries: list, size: Size, description: str, linked: bool = False):
    panel = _common(sdk_table.Panel(), title, description, queries, size)
    panel = panel.with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(
        models.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": {"Time": True, "__name__": True, "job": True}},
        )
    )
    return panel.data_links([CHANNEL_LINK]) if linked else panel


def timeseries(title: str, queries: list, size: Size, description: str, unit: str = "short"):
    return _common(sdk_timeseries.Panel(), title, description, queries, size).unit(unit)


def bargauge_panel(title: str, queries: list, size: Size, description: str):
    return _common(bargauge.Panel(), title, description, queries, size)


def state_timeline(title: str, queries: list, size: Size, description: str):
    return _common(statetimeline.Panel(), title, description, queries, size)


def variable(name: str, label: str, query: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


# --- the dashboard ----------------------------------------------------------------------


def rows() -> list[tuple[str, list[Any]]]:
    """Every row with its panels, in order."""
    return [
        (
            "Overview",
            [
                stat(
                    "Channels down",
                    f"count((contact_channel_up{{{RESULT}}} == 0) {ACTIVE} {PLANNED}) or vector(0)",
                    (4, 4),
                    "Active channels whose damped state is down, outside maintenance windows.",
                    [(None, "green"), (1, "red")],
                ),
                stat(
                    "Deprecated contacts still published",
                    f"count(contact_deprecated_published{{{ORG}}} == 1) or vector(0)",
                    (4, 4),
                    "Deprecated contacts (like 8 (800) 234-70-00) that an official page still "
                    "shows.",
                    [(None, "green"), (1, "orange")],
                ),
                stat(
                    "Drift findings",
                    f"sum(contact_drift_findings{{{ORG}}}) or vector(0)",
                    (3, 4),
                    "All current differences between the registry and the pages.",
                    [(None, "green"), (1, "yellow")],
                ),
                stat(
                    "In maintenance",
                    f"count(contact_channel_in_maintenance{{{SEL}}} == 1) or vector(0)",
                    (3, 4),
                    "Channels inside a maintenance window: alerts quiet, uptime leaves it out.",
                    [(None, "green"), (1, "blue")],
                ),
                stat(
                    "Availability, 30 days",
                    "min(service:contact_probe_success:avg_over_time_30d"
                    f'{{{ORG},service=~"$service"}})',
                    (4, 4),
                    "Worst service's share of successful probes over 30 days (maintenance "
                    "windows left out).",
                    [(None, "red"), (0.99, "yellow"), (0.999, "green")],
                    unit="percentunit",
                ),
                stat(
                    "Monitor up",
                    'min(up{job="contact-monitor"})',
                    (3, 4),
                    "Prometheus can scrape every contact-monitor instance.",
                    [(None, "red"), (1, "green")],
                ),
                stat(
                    "Registry reload",
                    "min(contact_config_last_reload_successful)",
                    (3, 4),
                    "0 when the last change to the registry file was rejected.",
                    [(None, "red"), (1, "green")],
                ),
            ],
        ),
        (
            "Channels",
            [
                state_timeline(
                    "Channel state by service",
                    [q(f"contact_channel_up{{{RESULT}}}", "{{service}} / {{channel}}")],
                    (14, 10),
                    "Damped up/down state of every channel, grouped by service.",
                )
                .mappings(UP_DOWN)
                .data_links([FIELD_LINK])
                .show_value(common_models.VisibilityMode.NEVER)
                .merge_values(True),
                table(
                    "Failing channels and why",
                    [q(f"contact_probe_failure_info{{{RESULT}}} == 1", instant=True)],
                    (10, 10),
                    "Latest failure reason of every channel whose last probe failed; click "
                    "for details.",
                    linked=True,
                ),
            ],
        ),
        (
            "Drift: what the pages show",
            [
                table(
                    "Deprecated contacts still published",
                    [
                        q(
                            f"(contact_deprecated_published{{{ORG}}} == 1) * on (org, channel) "
                            "group_left (contact, service) group by (org, channel, contact, "
                            "service) (contact_channel_info)",
                            instant=True,
                        )
                    ],
                    (10, 8),
                    "Each deprecated contact and the page that still shows it.",
                    linked=True,
                ),
                timeseries(
                    "Drift findings by type",
                    [q(f"sum by (type) (contact_drift_findings{{{ORG}}})", "{{type}}")],
                    (7, 8),
                    "Findings over time: deprecated, unregistered, missing, unreachable.",
                ),
                table(
                    "Source pages",
                    [
                        q(f"contact_source_up{{{ORG}}}", instant=True),
                        q(f"contact_source_published_contacts{{{ORG}}}", instant=True),
                    ],
                    (7, 8),
                    "Whether each official page could be read, and how many contacts it shows.",
                ),
            ],
        ),
        (
            "Availability against objective",
            [
                bargauge_panel(
                    "Availability by service (30 days) vs objective",
                    [
                        q(
                            "service:contact_probe_success:avg_over_time_30d"
                            f'{{{ORG},service=~"$service"}}',
                            "{{service}}",
                        ),
                        q(
                            "contact_service_availability_objective_ratio"
                            f'{{{ORG},service=~"$service"}}',
                            "objective {{service}}",
                        ),
                    ],
                    (8, 8),
                    "Share of successful probes per service, maintenance windows left out; "
                    "the objective is 99.9 % unless set.",
                )
                .unit("percentunit")
                .min(0.9)
                .max(1),
                timeseries(
                    "Error ratio by service (1 h)",
                    [
                        q(
                            "service:contact_probe_errors:ratio_rate1h"
                            f'{{{ORG},service=~"$service"}}',
                            "{{service}}",
                        )
                    ],
                    (8, 8),
                    "Failed probes / all probes outside maintenance; burn-rate alerts use it.",
                    unit="percentunit",
                ),
                table(
                    "Channel availability 1 h / 1 d / 30 d",
                    [
                        q(
                            f"channel:contact_probe_success:avg_over_time_{window}{{{SEL}}}",
                            instant=True,
                        )
                        for window in ("1h", "1d", "30d")
                    ],
                    (8, 8),
                    "Per channel, over three windows.",
                    linked=True,
                ),
            ],
        ),
        (
            "Latency and certificates",
            [
                timeseries(
                    "Probe duration",
                    [q(f"contact_probe_duration_seconds{{{RESULT}}}", "{{channel}}")],
                    (8, 8),
                    "Duration of the latest probe of each channel.",
                    unit="s",
                ),
                timeseries(
                    "HTTP phases (mean over channels)",
                    [
                        q(
                            f"avg by (phase) (contact_probe_http_phase_seconds{{{RESULT}}})",
                            "{{phase}}",
                        )
                    ],
                    (8, 8),
                    "Connect, TLS, request, server and transfer time.",
                    unit="s",
                ),
                bargauge_panel(
                    "Certificate days left",
                    [
                        q(
                            f"(contact_probe_tls_cert_expiry_timestamp_seconds{{{RESULT}}}"
                            " - time()) / 86400",
                            "{{channel}}",
                        )
                    ],
                    (8, 8),
                    "Days until each served certificate expires.",
                )
                .unit("d")
                .thresholds(thresholds([(None, "red"), (3, "orange"), (14, "green")])),
            ],
        ),
        (
            "E-mail",
            [
                table(
                    "MX records",
                    [q(f"contact_probe_mx_records{{{RESULT}}}", instant=True)],
                    (12, 7),
                    "MX records of each e-mail channel's domain.",
                    linked=True,
                ),
                table(
                    "SMTP stage reached",
                    [q(f"contact_probe_smtp_stage_info{{{RESULT}}} == 1", instant=True)],
                    (12, 7),
                    "How far the latest SMTP session got: done is healthy.",
                    linked=True,
                ),
            ],
        ),
        (
            "Locations",
            [
                table(
                    "Share of locations seeing each channel down",
                    [
                        q(
                            "(channel:contact_locations_down:count"
                            " / channel:contact_locations_probing:count) or on (org, channel)"
                            " (1 - max by (org, channel, kind, service) "
                            f"(contact_channel_up{{{RESULT}}}))",
                            instant=True,
                        )
                    ],
                    (12, 8),
                    "1 = every location agrees it is down (the quorum alert fires above 0.5); "
                    "with one location, 0 or 1.",
                    linked=True,
                ),
                timeseries(
                    "Channels seen down, by location",
                    [
                        q(
                            f"count by (location) (contact_channel_up{{{RESULT}}} == 0)",
                            "{{location}}",
                        )
                    ],
                    (12, 8),
                    "A location alone with many failures is our network, not the channels.",
                ),
            ],
        ),
        (
            "Phone lines: SIP test calls",
            [
                timeseries(
                    "Post-dial delay",
                    [
                        q(
                            f'contact_probe_sip_post_dial_delay_seconds{{{RESULT},kind="phone"}}',
                            "{{channel}}",
                        )
                    ],
                    (12, 8),
                    "From the INVITE to the first ringing (180), early media (183) or answer (200) "
                    "of each test call. A growing delay is a trunk or carrier problem callers hear "
                    "as silence.",
                    unit="s",
                ),
                table(
                    "SIP answers",
                    [
                        q(f'contact_probe_sip_status_code{{{RESULT},kind="phone"}}', instant=True),
                        q(f'contact_probe_sip_q850_cause{{{RESULT},kind="phone"}}', instant=True),
                        q(
                            f'contact_probe_failure_info{{{RESULT},kind="phone"}} == 1',
                            instant=True,
                        ),
                    ],
                    (12, 8),
                    "Latest test call per line: SIP status code (180/183/200 reached; 404/410 not "
                    "in service; 486 busy; 480 no answer; 503 trunk unavailable), Q.850 cause of "
                    "the Reason header, and the failure reason.",
                    linked=True,
                ),
            ],
        ),
        (
            "Monitor health",
            [
                timeseries(
                    "Scheduler lag",
                    [
                        q(
                            f"histogram_quantile({quantile}, sum by (le) "
                            "(rate(contact_scheduler_lag_seconds_bucket[$__rate_interval])))",
                            name,
                        )
                        for quantile, name in (("0.5", "p50"), ("0.99", "p99"))
                    ],
                    (8, 7),
                    "Actual minus planned start of probes.",
                    unit="s",
                ),
                timeseries(
                    "Probes per second",
                    [
                        q(
                            "sum by (result) "
                            f"(rate(contact_probes_total{{{RESULT}}}[$__rate_interval]))",
                            "{{result}}",
                        )
                    ],
                    (8, 7),
                    "Probe rate by result (maintenance: inside a maintenance window).",
                    unit="ops",
                ),
                timeseries(
                    "Monitor memory",
                    [q('process_resident_memory_bytes{job="contact-monitor"}', "{{instance}}")],
                    (8, 7),
                    "Resident memory of each contact-monitor process.",
                    unit="bytes",
                ),
            ],
        ),
    ]


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    builder = (
        Dashboard("Contact monitor")
        .uid("contact-monitor")
        .tags(["contact-monitor"])
        .description("Published support contacts: reachability, drift, availability.")
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("")
        .version(1)
        .annotations([])
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(variable("org", "Organisation", "label_values(contact_channel_info, org)"))
        .with_variable(
            variable(
                "service", "Service", 'label_values(contact_channel_info{org=~"$org"}, service)'
            )
        )
        .with_variable(
            variable(
                "kind",
                "Kind",
                'label_values(contact_channel_info{org=~"$org",service=~"$service"}, kind)',
            )
        )
        .with_variable(
            variable(
                "channel",
                "Channel",
                "label_values(contact_channel_info"
                '{org=~"$org",service=~"$service",kind=~"$kind"}, channel)',
            )
        )
        .with_variable(
            variable("location", "Location", "label_values(contact_probe_success, location)")
        )
    )
    for title, panels in rows():
        builder = builder.with_row(Row(title))
        for panel in panels:
            builder = builder.with_panel(panel)
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    return model


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
