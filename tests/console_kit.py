"""Browser-test kit of the console (console/): the county the console tests land, the people who log in
through the login page, and `drive`, which runs a browser scenario of console/e2e in its own process.

Shared by tests/integration/test_console*.py (import the fixtures `county` and `people` by name):

    from tests.console_kit import county, drive, people  # noqa: F401 (pytest fixtures)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import eventlet
import pytest

from services.api import accounts
from services.kernel.clock import utcnow
from tests.api_kit import start_api, start_declared
from tests.helpers import SCJG, STHJ, credential_issued, envelope, officer_registered, wait_for
from tests.integration.test_penalty import CODE, item_published, land, now, standard_published, story

OFF1, OFF2, OFF3 = "511322-scjg-0101", "511322-scjg-0102", "511322-scjg-0103"
STHJ_OFF = "511322-sthj-0301"
GOOD, ALONE, OPEN = "511322-scjg-2026-0001", "511322-scjg-2026-0002", "511322-scjg-2026-0003"
STHJ_CASE = "511322-sthj-2026-0301"

ROOT = Path(__file__).resolve().parents[1]
E2E = ROOT / "console" / "e2e"
DRIVER = E2E / "driver.py"
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "zhifa-console-test"
# people who log in through the login page: name -> (role, dept)
PEOPLE = {"web-sup": ("supervisor", None), "web-aud": ("auditor", None), "web-ops": ("operator", None),
          "web-scjg": ("dept_user", SCJG), "web-sthj": ("dept_user", STHJ)}


@pytest.fixture
def county(zhifa_config, container_factory):
    """Every declared service and the API; one item with a five-tier standard, three SCJG officers (one
    credential suspended) and one STHJ officer; an SCJG case without fault, one handled by a single officer
    (a finding), one just filed, and a filed STHJ case."""
    start_declared(container_factory)
    kit = start_api(zhifa_config, container_factory)
    s = {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config}
    land(s, "registry", "items", item_published(), standard_published())
    for officer_id, number, name in ((OFF1, "川A5113220101", "李明"), (OFF2, "川A5113220102", "张华"),
                                     (OFF3, "川A5113220103", "赵强")):
        land(s, "personnel", "officers", officer_registered(officer_id, name=name), credential_issued(officer_id, number))
    land(s, "personnel", "officers", envelope("credential.suspended", {
        "officer_id": OFF3, "credential_no": "川A5113220103", "suspended_on": "2025-01-01", "reason": "涉嫌违纪，暂扣证件"}))
    land(s, "personnel", "officers", officer_registered(STHJ_OFF, dept=STHJ, name="陈静"),
         credential_issued(STHJ_OFF, "川A5113220301", dept=STHJ, areas=("environment",)))
    land(s, "penalty", "cases", *story(GOOD, n=1))
    land(s, "penalty", "cases", *story(ALONE, officers=(OFF1,), n=2, start=now() - timedelta(days=8)))
    land(s, "penalty", "cases", story(OPEN, n=3, start=now() - timedelta(days=1))[0])
    land(s, "penalty", "cases", envelope("case.filed", {
        "case_id": STHJ_CASE, "item_code": CODE, "case_no": "营环立〔2026〕1号", "summary": "超标排放",
        "party": {"type": "org", "id": "91511322MA3C4X9999", "name": "某化工厂"}}, STHJ,
        occurred_at=now().isoformat()))
    wait_for(lambda: kit.get("/api/v1/findings", as_="sup").json()["total"] >= 1, timeout=20)
    return kit


@pytest.fixture
def people(county):
    """People accounts with passwords (the browser logs in through the login page)."""
    assert (ROOT / "console" / "dist" / "index.html").is_file(), "console not built: scripts/bootstrap.sh console"
    assert Path(CHROMIUM).is_file(), "Debian chromium missing: scripts/bootstrap.sh browser"
    for name, (role, dept) in PEOPLE.items():
        accounts.create_user(county.db, name, role, utcnow(), dept=dept, password=PASSWORD)
    return county


def drive(kit, scenario: str, timeout: float = 120, driver: Path = DRIVER, **spec) -> dict:
    """Run a browser scenario (console/e2e/driver.py, or another script of console/e2e built on it) in its
    own process; the servers of this process go on serving while it runs (eventlet: wait with green sleeps,
    never a blocking wait)."""
    payload = json.dumps({"scenario": scenario, "base": kit.base, "password": PASSWORD, "shots": str(SHOTS),
                          **spec}, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        (Path(tmp) / "in.json").write_text(payload)
        with open(Path(tmp) / "in.json") as stdin, open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen([sys.executable, str(driver)], stdin=stdin, stdout=stdout, stderr=stderr, cwd=ROOT)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                eventlet.sleep(0.2)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                pytest.fail(f"browser scenario {scenario} took over {timeout}s: {err.read_text()[-3000:]}")
        assert proc.returncode == 0, err.read_text()[-4000:]
        return json.loads(out.read_text())
