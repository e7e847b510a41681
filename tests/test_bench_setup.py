"""The benchmark's own pieces that can be checked without running it: its generated
registries are valid, and its histogram arithmetic matches Prometheus's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trustme

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))

from run import histogram_quantile, mixed_kinds, write_registry
from targets import Targets

from monitor.loader import load_registry


def test_generated_registry_is_valid_when_it_has_10000_channels(tmp_path: Path):
    """The 10,000-channel registry loads, with the intended mix of kinds."""
    targets = Targets(1, 2, 3, 4, tmp_path / "ca.pem", {})
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))  # the registry loads it
    path = write_registry(tmp_path / "r.yaml", mixed_kinds(10_000), targets, 60.0)
    channels = load_registry(path).organizations[0].channels
    assert len(channels) == 10_000
    assert sum(c.kind in ("web", "chat") for c in channels) == 8500


def test_quantile_interpolates_within_bucket_when_computed_like_prometheus():
    """Half of 100 observations below 0.1 and all below 0.2: p50 = 0.1, p99 = 0.198."""
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.198)
