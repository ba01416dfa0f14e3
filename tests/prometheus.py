"""Reading what an exporter serves and what the Grafana dashboard asks for."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["DASHBOARD", "dashboard_metric_names", "sample_names", "samples", "scrape"]

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "messplus.json"
_METRIC = re.compile(r"\bmessplus_[a-z0-9_]+\b")
# Sample names a family of each type is exposed under (prometheus_client's text format).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def dashboard_metric_names(path: Path = DASHBOARD) -> set[str]:
    """Every messplus_ name in the dashboard's queries (panel targets and variables)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for child_key, child in node.items():
                walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        elif isinstance(node, str) and key in {"expr", "query", "definition"}:
            found.update(_METRIC.findall(node))

    walk(json.loads(path.read_text()))
    return found


def sample_names(exposition: str) -> set[str]:
    """Every sample name the exposition declares, with or without samples behind it."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The values of one sample name, keyed by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


def scrape(url: str, timeout_s: float = 30.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read().decode()
