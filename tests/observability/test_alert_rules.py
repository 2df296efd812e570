"""deploy/prometheus/alerts.yml: valid for Prometheus, every alert unit-tested, summarized and linked to a runbook
that exists in docs/operations.md."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.observability.promql import ALERT_TESTS, ALERTS, OPERATIONS, alert_rules, binary, metric_names


@pytest.mark.integration  # runs promtool
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([binary("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration  # runs promtool
def test_promtool_unit_tests_of_every_alert_pass() -> None:
    done = subprocess.run([binary("promtool"), "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "alerts no test expects to fire"
    assert alerts - quiet == set(), "alerts no test expects to stay quiet"


def test_every_alert_has_a_summary_and_a_runbook_section_in_operations_md() -> None:
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/operations.md" and anchor in anchors, f"{rule['alert']}: no runbook section {anchor}"
        assert anchor == rule["alert"].lower(), rule["alert"]


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (group) (kafka_consumer_lag) > 100', {"kafka_consumer_lag"}),
    ('sum(rate(gateway_requests_total{result=~"overloaded|unavailable"}[5m])) / sum(rate(x_total[5m]))',
     {"gateway_requests_total", "x_total"}),
    ('histogram_quantile(0.99, sum by (le) (rate(gateway_request_seconds_bucket[$__rate_interval])))',
     {"gateway_request_seconds_bucket"}),
    ("up == 0", {"up"}),
    ('min by (shop_id) (a_seconds) - time() < 7 * 86400 or on(job) b', {"a_seconds", "b"}),
    ('{__name__="dlq_records_total", job="ingest"}', {"dlq_records_total"}),
    ('sum without (instance) (increase(c_total{reason="by (x)"}[1h] offset 5m))', {"c_total"}),
])
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.integration  # runs promtool
def test_promtool_accepts_the_scrape_config() -> None:
    config = ALERTS.parent / "prometheus.yml"
    done = subprocess.run([binary("promtool"), "check", "config", str(config)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
