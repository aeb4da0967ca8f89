"""The monitoring stack against real series: Debian's Prometheus scrapes a running suite (config
from services.monitor, the same `make monitor` uses), and after a short load every panel of the
Grafana dashboard returns data — so the dashboard is proved against real series even where Grafana
itself cannot run. The alert rules load into that Prometheus without error."""
import json
import shutil
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from nameko import config as nameko_config

from services.gateway.service import GatewayService
from services.monitor import command, local_config, write_config
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.helpers import credential_issued, envelope, officer_registered, publish, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra" / "grafana" / "dashboards" / "zhifa-overview.json"


def panel_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$service", ".*")
            out.append((panel["title"], expr))
    return out


@pytest.fixture
def prometheus(servers, zhifa_config, tmp_path, free_port):
    """Prometheus scraping this test process's suite (its HTTP port serves every metric of the
    process) and the broker's rabbitmq_prometheus endpoint, every second."""
    assert shutil.which("prometheus"), "prometheus missing: run scripts/bootstrap.sh (Debian package prometheus)"
    listen = f"127.0.0.1:{free_port()}"
    rabbit = servers.get("RABBIT_PROMETHEUS_URI") or "http://127.0.0.1:15702/metrics"
    cfg = local_config({"suite": zhifa_config["WEB_SERVER_ADDRESS"]}, rabbit, interval="1s")
    proc = subprocess.Popen(command(write_config(tmp_path, cfg), tmp_path / "data", listen),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    base = f"http://{listen}"
    try:
        wait_for(lambda: _ready(base), timeout=30)
        yield {"base": base, "log": tmp_path / "prometheus.log"}
    finally:
        stop_process(proc)


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/-/ready", timeout=1).ok
    except requests.RequestException:
        return False


def query(base: str, expr: str) -> list:
    reply = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert reply["status"] == "success", (expr, reply)
    return reply["data"]["result"]


def test_every_dashboard_panel_has_data_after_a_short_load(zhifa_config, container_factory, prometheus):
    patch = nameko_config.patch({"FINDINGS_RECOUNT_SECONDS": 1, "DEADLINE_SWEEP_SECONDS": 1}, clear=False)
    patch.start()
    try:
        for cls in (GatewayService, PersonnelService, RegistryService):
            container_factory(cls).start()
        soon = (date.today() + timedelta(days=10)).isoformat()
        good = [officer_registered("511322-scjg-9001"),
                credential_issued("511322-scjg-9001", "川A5113229001", valid_to=soon)]  # expiring: a finding
        refused = envelope("standard.published", {  # contract-valid, refused by the registry: dead letter
            "item_code": "330217009999", "effective_from": "2024-03-01", "standard_no": "营市监规〔2024〕9号",
            "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False},
            "tiers": [{"tier": "normal", "name": "一般", "conditions": "一般情节", "amount": {"min": 50000, "max": 60000}}]})
        publish(zhifa_config["AMQP_URI"], good + [refused, good[0]])      # one duplicate
        publish(zhifa_config["AMQP_URI"], [b"{not json"], routing_keys=["511322-scjg.officer.registered"])
        base = prometheus["base"]
        wait_for(lambda: query(base, "zhifa_dead_letters_total"), timeout=30)
        wait_for(lambda: query(base, 'zhifa_findings_open{service="personnel"}'), timeout=30)
        time.sleep(3)  # a few more scrapes, so rate() has two samples of everything

        empty = [(title, expr) for title, expr in panel_queries() if not query(base, expr)]
        assert empty == [], f"dashboard panels without data: {empty}"
        rules = requests.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
        loaded = {r["name"] for g in rules for r in g["rules"]}
        assert {"ZhifaProcessDown", "ZhifaCriticalFindingsOpen", "ZhifaQueueBacklog"} <= loaded
        assert all(r.get("health") == "ok" for g in rules for r in g["rules"]), rules
    finally:
        patch.stop()
