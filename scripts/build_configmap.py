"""Writes deploy/kubernetes/configmap.yaml from config/channels.yaml.

Run `python scripts/build_configmap.py` after editing the registry; a test keeps them equal.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "config" / "channels.yaml"
OUT = ROOT / "deploy" / "kubernetes" / "configmap.yaml"
HEADER = """\
# The registry as a ConfigMap (a copy of config/channels.yaml; tests keep them equal).
# Editing it and applying reloads every replica: the file watcher sees the change.
apiVersion: v1
kind: ConfigMap
metadata:
  name: contact-monitor-registry
  labels:
    app.kubernetes.io/name: contact-monitor
data:
  channels.yaml: |
"""


def render() -> str:
    lines = SOURCE.read_text().splitlines(keepends=True)
    return HEADER + "".join("    " + line if line.strip() else "\n" for line in lines)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
