"""Alert rules are tested with Prometheus's own tool (Debian package `prometheus`, installed by
scripts/bootstrap.sh): every alert fires on a synthetic bad series and stays silent on a healthy
one (infra/prometheus/alerts_test.yml), and every alert links to a runbook that exists."""
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"


def _promtool() -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool missing: run scripts/bootstrap.sh (installs Debian's prometheus package)"
    return tool


def _alerts() -> list[dict]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_rules_pass_promtool_check():
    out = subprocess.run([_promtool(), "check", "rules", str(PROM / "alerts.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_and_stays_silent_in_promtool_unit_tests():
    out = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=PROM, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text(encoding="utf-8"))["tests"]
    fired, silent = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in _alerts()}
    assert names - fired == set(), f"alerts never shown firing: {names - fired}"
    # a silent case: an explicit empty expectation, or a healthy series beside a firing one
    healthy_beside = {"ZhifaProcessDown", "ZhifaIngressRejectionRateHigh", "ZhifaHandlerErrorRateHigh",
                      "ZhifaHandlerLatencyP99High", "ZhifaDeadlineSweepLagging"}
    assert names - silent - healthy_beside == set(), f"alerts never shown silent: {names - silent - healthy_beside}"


def test_every_alert_links_an_existing_runbook_with_the_sections_an_operator_needs():
    for rule in _alerts():
        url = rule["annotations"].get("runbook_url")
        assert url, f"{rule['alert']} has no runbook_url"
        page = ROOT / url
        assert page.is_file(), f"{rule['alert']}: {url} does not exist"
        text = page.read_text(encoding="utf-8")
        for heading in ("## What it means", "## How to confirm", "## What to do"):
            assert heading in text, f"{url} lacks '{heading}'"
        assert rule["alert"] in text, f"{url} does not name its alert"


def test_alert_texts_point_at_routes_that_exist_not_at_a_missing_console():
    for rule in _alerts():
        for text in rule["annotations"].values():
            assert not re.search(r"\bin the console\b", text), f"{rule['alert']}: '{text}'"
