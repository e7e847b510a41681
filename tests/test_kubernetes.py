"""The Kubernetes manifests, validated offline against the Kubernetes schemas (the PyPI
package kubernetes-validate carries them), since no cluster runs here."""

from __future__ import annotations

import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
CORE_FILES = ["configmap.yaml", "statefulset.yaml", "service.yaml", "poddisruptionbudget.yaml"]


def manifest(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.parametrize("name", CORE_FILES)
def test_manifest_valid_when_checked_against_kubernetes_schema(name: str):
    """Each built-in resource validates strictly (unknown fields are errors)."""
    kubernetes_validate.validate(manifest(name), K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    """kubectl apply -k applies all of them."""
    listed = set(manifest("kustomization.yaml")["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}


def test_configmap_carries_the_shipped_registry():
    """The ConfigMap's channels.yaml is config/channels.yaml, byte for byte."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_configmap

    assert (
        manifest("configmap.yaml")["data"]["channels.yaml"]
        == (ROOT / "config" / "channels.yaml").read_text()
    )
    assert (DEPLOY / "configmap.yaml").read_text() == build_configmap.render()


def test_statefulset_shards_by_ordinal_and_probes_health():
    """Replicas = shards; liveness on /healthz, readiness on /readyz; registry mounted."""
    spec = manifest("statefulset.yaml")["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["CONTACT_MONITOR_SHARDS"]) == spec["replicas"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--config=/etc/contact-monitor/channels.yaml" in container["args"]
    assert container["resources"]["limits"]["memory"]
    assert (
        manifest("statefulset.yaml")["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        == manifest("configmap.yaml")["metadata"]["name"]
    )


def test_podmonitor_selects_the_pods_and_their_metrics_port():
    """The Prometheus Operator's PodMonitor (a CRD: checked by hand) scrapes port metrics."""
    monitor = manifest("podmonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    pod = manifest("statefulset.yaml")["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
