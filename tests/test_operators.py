"""The operators' files checked by the real tools: promtool, amtool, docker-compose; the
dashboard and runbooks checked for completeness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
PROM = ROOT / "config" / "prometheus"
RULES = PROM / "rules" / "contact-monitor.rules.yml"
RULE_TESTS = PROM / "tests" / "contact-monitor.test.yml"
AM_CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"
DASHBOARD = ROOT / "dashboards" / "contact-monitor.json"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: `make test` installs it (scripts/setup-system.sh)"
    return path


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check_when_loaded():
    """`promtool check rules` accepts every rule."""
    done = run(tool("promtool"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_config_passes_promtool_check_when_loaded():
    """`promtool check config` accepts prometheus.yml and the rule files it names."""
    done = run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_every_alert_passes_its_unit_tests_when_promtool_runs_them():
    """`promtool test rules` passes every firing and non-firing case."""
    done = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_quiet_when_unit_tests_are_read():
    """Each alert has a firing case (with severity and service labels) and a quiet case."""
    cases = [
        c
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for c in test.get("alert_rule_test", [])
    ]
    for rule in alerts():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        firing = [a for c in mine for a in c["exp_alerts"]]
        assert firing, f"{rule['alert']} never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} never tested quiet"
        for expected in firing:
            assert {"severity", "service"} <= set(expected["exp_labels"]), rule["alert"]


def test_every_alert_has_labels_and_annotations_when_defined():
    """severity, summary, description and a runbook_url into docs/runbooks.md, for each."""
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", runbooks, re.M)}
    for rule in alerts():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        assert annotations["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"no runbook section for {rule['alert']}"


def test_alertmanager_config_passes_amtool_when_checked():
    """`amtool check-config` accepts the example Alertmanager configuration."""
    done = run(tool("amtool"), "check-config", str(AM_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ContactChannelDown", "service=bank", "severity=critical"], "bank-oncall"),
        (["alertname=ContactChannelDown", "service=sellers", "severity=critical"], "pager"),
        (
            ["alertname=ContactDeprecatedPublished", "service=marketplace", "severity=warning"],
            "maintainers",
        ),
        (
            [
                "alertname=ContactSourceUnreachable",
                "service=published-contacts",
                "severity=warning",
            ],
            "maintainers",
        ),
        (
            [
                "alertname=ContactMonitorConfigReloadFailed",
                "service=contact-monitor",
                "severity=warning",
            ],
            "tickets",
        ),
    ],
)
def test_alert_routed_by_severity_and_service_when_matched(labels: list[str], receiver: str):
    """Critical pages (the bank to its own on-call), drift to maintainers, the rest to tickets."""
    done = run(tool("amtool"), "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert done.stdout.strip() == receiver, done.stdout + done.stderr


def test_compose_file_is_valid_when_docker_compose_reads_it():
    """`docker-compose config` accepts docker-compose.yml; every port is on loopback."""
    done = run(tool("docker-compose"), "-f", "docker-compose.yml", "config")
    assert done.returncode == 0, done.stdout + done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"contact-monitor", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_dashboard_json_is_current_when_generator_runs():
    """dashboards/contact-monitor.json is what scripts/build_dashboard.py writes."""
    done = run(
        sys.executable,
        "-c",
        "import sys; sys.path.insert(0, 'scripts'); "
        "import build_dashboard; print(build_dashboard.render(), end='')",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == DASHBOARD.read_text()


def test_dashboard_uses_datasource_variable_when_imported():
    """Every panel and target names ${datasource}; org, service, kind, channel are variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"org", "service", "kind", "channel", "location"} <= set(variables)

    assert dashboard["schemaVersion"] >= 39
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]


def test_grafana_provisioning_points_at_the_dashboard_when_mounted():
    """The provisioning files name the Prometheus data source and the dashboards folder."""
    provisioning = ROOT / "config" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "contact-monitor.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
