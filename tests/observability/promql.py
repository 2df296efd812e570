"""What the observability tests need from the rules and the dashboard: the PromQL they hold, the metric names that
PromQL reads (a small tokenizer), and Debian's `promtool` / `prometheus` binaries."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "shopsync.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# PromQL words that are not metric names: functions, aggregations and their modifiers, operators, keywords.
KEYWORDS = frozenset({
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "atan2", "inf", "nan",
})
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})  # followed by label names
_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)   # string literals (label values, regexes)
  | (?P<braces>\{[^{}]*\})                                     # label matchers: {job="x", status=~"a|b"}
  | (?P<brackets>\[[^\]]*\])                                   # ranges and subqueries: [5m], [10m:1m]
  | (?P<duration>\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)\b)
  | (?P<number>\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b)
  | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are neither functions (followed by `(`), nor
    keywords, nor inside label matchers, strings or ranges; `{__name__="x"}` selectors count too."""
    names: set[str] = set()
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr) if not m.group().isspace()]
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        i += 1
        if kind == "braces":
            names.update(re.findall(r'__name__\s*=\s*"([^"]+)"', text))
        if kind != "name" or (following == "(" and text.lower() not in GROUPING):
            continue  # not a name, or a function / an aggregation written `sum(...)`
        if text.lower() in GROUPING and following == "(":
            while i < len(tokens) and tokens[i][1] != ")":  # label names: `by (group, topic)`
                i += 1
            continue
        if text.lower() not in KEYWORDS:
            names.add(text)
    return names


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel with queries, rows' nested panels included."""
    doc = orjson.loads(DASHBOARD.read_bytes())
    panels: list[dict[str, Any]] = []
    for panel in doc["panels"]:
        panels.extend([panel, *panel.get("panels", [])])
    return [p for p in panels if p.get("targets")]


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard, with Grafana's `$__rate_interval` made concrete."""
    return [(panel["title"], target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m"))
            for panel in dashboard_panels() for target in panel["targets"]]


def referenced_metrics() -> dict[str, set[str]]:
    """Metric name → where it is used (alert names and panel titles)."""
    found: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            found.setdefault(name, set()).add(f"alert {rule['alert']}")
    for title, expr in panel_queries():
        for name in metric_names(expr):
            found.setdefault(name, set()).add(f"panel {title!r}")
    return found


def binary(name: str) -> str:
    """The path of Debian's `prometheus` package binary `name`. In CI (`CI` set) a missing one fails the test;
    elsewhere it skips it (`apt-get install prometheus` to run it)."""
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not installed: `apt-get install -y prometheus` (Debian's package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
