"""End to end: the monitor on loopback targets, scraped by Debian's real Prometheus with the
shipped rules, alerting Debian's real Alertmanager with the shipped configuration (only the
addresses and the scrape/evaluation intervals rewritten), and every dashboard query answered."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import MAIL_DOMAIN, ServiceProcess, wait_for
from servers import HttpServer, page
from sip_network import PASSWORD as SIP_PASSWORD
from sip_network import SipNetwork

ROOT = Path(__file__).parent.parent
RATE_INTERVAL = "15s"  # what Grafana's $__rate_interval becomes at a 1 s scrape interval


def write_registry(
    path: Path,
    http: HttpServer,
    https: HttpServer,
    closed_port: int,
    dns_port: int,
    smtp_port: int,
    ca_file: Path,
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {
                    "interval": "1s",
                    "source_interval": "1s",
                    "timeout": "1s",
                    "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port},
                    "tls": {"ca_file": str(ca_file)},
                },
                "organizations": [
                    {
                        "id": "ozon",
                        "sources": [{"id": "help-contacts", "url": http.url("/contacts")}],
                        "channels": [
                            {
                                "id": "bank-hotline",
                                "kind": "phone",
                                "service": "bank",
                                "phone": "8 800 555-89-82",
                                "published_on": ["help-contacts"],
                            },
                            {
                                "id": "marketplace-hotline-old",
                                "kind": "phone",
                                "service": "marketplace",
                                "phone": "8 (800) 234-70-00",
                                "status": "deprecated",
                                "replaced_by": "marketplace-chat",
                            },
                            {
                                "id": "marketplace-chat",
                                "kind": "chat",
                                "service": "marketplace",
                                "url": https.url("/my/messenger"),
                                "expect": {"body_regex": "Сообщения"},
                            },
                            {
                                "id": "seller-portal",
                                "kind": "web",
                                "service": "sellers",
                                "url": f"http://127.0.0.1:{closed_port}/",
                            },
                            {
                                "id": "b2b-email",
                                "kind": "email",
                                "service": "b2b",
                                "email": f"b2b@{MAIL_DOMAIN}",
                                "smtp": "connect",
                                "smtp_port": smtp_port,
                            },
                        ],
                    }
                ],
            },
            allow_unicode=True,
        )
    )
    return path


def add_sip_lines(registry: Path, network: SipNetwork) -> None:
    """Two hotlines on SIP test calls through the loopback trunk: one rings (post-dial
    delay), one is busy with a Q.850 cause (the dashboard's SIP panels have data)."""
    data = yaml.safe_load(registry.read_text())
    data["defaults"]["sip"] = {
        "trunk": network.trunk(),
        "auth": {"username": "monitor", "password_env": "SIP_PASSWORD"},
    }
    for ident, far_end in (
        ("bank-hotline-sip", "ring"),
        ("sellers-hotline-sip", "486 Busy Here|17"),
    ):
        data["organizations"][0]["channels"].append(
            {"id": ident, "kind": "phone", "phone": network.numbers[far_end], "check": "sip"}
        )
    registry.write_text(yaml.safe_dump(data, allow_unicode=True))


def prometheus_config(tmp_path: Path, monitor_port: int, alertmanager_port: int) -> Path:
    """The shipped prometheus.yml with loopback addresses and 1 s intervals."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "config" / "prometheus" / "rules", rules)
    config = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules / "*.rules.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{alertmanager_port}"
    ]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{monitor_port}"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(tmp_path: Path, webhook_port: int) -> Path:
    """The shipped alertmanager.yml with its webhooks on loopback."""
    text = (ROOT / "config" / "alertmanager" / "alertmanager.yml").read_text()
    path = tmp_path / "alertmanager.yml"
    path.write_text(text.replace("http://webhook:5001", f"http://127.0.0.1:{webhook_port}"))
    return path


def dashboard_queries() -> list[str]:
    dashboard = json.loads((ROOT / "dashboards" / "contact-monitor.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return [
        re.sub(r"\$(org|service|kind|channel|location)\b", ".*", e).replace(
            "$__rate_interval", RATE_INTERVAL
        )
        for e in exprs
    ]


def firing(prometheus: ServiceProcess, alertname: str, **labels: str) -> bool:
    alerts = prometheus.get("/api/v1/alerts")["data"]["alerts"]
    return any(
        a["labels"]["alertname"] == alertname
        and a["state"] == "firing"
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in alerts
    )


def received(alertmanager: ServiceProcess, alertname: str, **labels: str) -> bool:
    return any(
        a["labels"]["alertname"] == alertname
        and all(a["labels"].get(k) == v for k, v in labels.items())
        for a in alertmanager.get("/api/v2/alerts")
    )


def test_alerts_fire_and_dashboard_answers_when_stack_runs(
    tmp_path: Path,
    http_server: HttpServer,
    https_server: HttpServer,
    closed_port: int,
    dns_port: int,
    smtp_server: int,
    ca_file: Path,
    start_daemon: Any,
    start_prometheus: Any,
    start_alertmanager: Any,
    sip_network: SipNetwork,
    monkeypatch: pytest.MonkeyPatch,
):
    """A down channel and a published deprecated number fire in Prometheus and arrive in
    Alertmanager; the healthy channel does not fire; every dashboard query returns data."""
    http_server.routes["/contacts"] = page(
        "<p>Банк: 8 800 555-89-82</p><footer>Маркетплейс: +7 (800) 234 7000</footer>"
    )
    https_server.routes["/my/messenger"] = page("<h1>Сообщения</h1>")
    registry = write_registry(
        tmp_path / "channels.yaml",
        http_server,
        https_server,
        closed_port,
        dns_port,
        smtp_server,
        ca_file,
    )
    add_sip_lines(registry, sip_network)
    monkeypatch.setenv("SIP_PASSWORD", SIP_PASSWORD)
    monitor = start_daemon(registry)
    # Delivery to receivers is Alertmanager's own business; the test reads its API.
    alertmanager = start_alertmanager(alertmanager_config(tmp_path, closed_port))
    prometheus = start_prometheus(prometheus_config(tmp_path, monitor.port, alertmanager.port))

    wait_for(
        lambda: firing(
            prometheus,
            "ContactDeprecatedPublished",
            channel="marketplace-hotline-old",
            source="help-contacts",
            service="marketplace",
        ),
        "deprecated alert firing",
        timeout=60,
    )
    wait_for(
        lambda: firing(prometheus, "ContactChannelDown", channel="seller-portal"),
        "channel-down alert firing",
        timeout=120,
    )
    wait_for(
        lambda: received(
            alertmanager, "ContactChannelDown", channel="seller-portal", severity="critical"
        ),
        "channel down in Alertmanager",
        timeout=30,
    )
    wait_for(
        lambda: received(
            alertmanager, "ContactDeprecatedPublished", channel="marketplace-hotline-old"
        ),
        "deprecated in Alertmanager",
        timeout=30,
    )
    assert not firing(prometheus, "ContactChannelDown", channel="marketplace-chat")

    empty = [
        q
        for q in dashboard_queries()
        if not prometheus.get("/api/v1/query", query=q)["data"]["result"]
    ]
    assert empty == [], f"dashboard queries without data: {empty}"
