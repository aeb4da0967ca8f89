"""Browser-test kit of the console (console/): the county the console tests land, the people who log in
through the login page, and `drive`, which runs a browser scenario of console/e2e in the run's one browser
process (console/e2e/driver.py --serve).

Shared by tests/integration/test_console*.py (import the fixtures `county` and `people` by name):

    from tests.console_kit import county, drive, people  # noqa: F401 (pytest fixtures)
"""
from __future__ import annotations

import atexit
import json
import shutil
import socket
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
from tests.helpers import SCJG, STHJ, credential_issued, envelope, officer_registered, stop_process, wait_for
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


class _BrowserServer:
    """console/e2e/driver.py --serve: one chromium for the whole test run, started at the first scenario (a
    scenario's tabs are browser contexts of their own). Restarted after a scenario that timed out or after
    the process died; stopped when the test run ends."""

    def __init__(self):
        self.proc = None
        self.port = None
        self.dir = None

    def ensure(self) -> int:
        if self.proc is not None and self.proc.poll() is None:
            return self.port
        self.stop()
        self.dir = tempfile.mkdtemp(prefix="zhifa-browser-")
        port_file, self.err = Path(self.dir) / "port", Path(self.dir) / "err.txt"
        with open(self.err, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, str(DRIVER), "--serve", str(port_file)],
                                         stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=ROOT)
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"browser server did not start: {self.log()}")
            eventlet.sleep(0.05)
        self.port = int(port_file.read_text())
        return self.port

    def log(self) -> str:
        return self.err.read_text()[-3000:] if self.dir and self.err.is_file() else ""

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


_browser = _BrowserServer()
atexit.register(_browser.stop)


def drive(kit, scenario: str, timeout: float = 120, driver: Path = DRIVER, **spec) -> dict:
    """Run a browser scenario (of console/e2e/driver.py, or another script of console/e2e built on it, by its
    SCENARIOS) in the run's browser process; the servers of this process go on serving while it runs (the
    answer is awaited on a green socket, never a blocking wait)."""
    request = {"script": Path(driver).stem, "spec": {"scenario": scenario, "base": kit.base, "password": PASSWORD,
                                                    "shots": str(SHOTS), **spec}}
    port = _browser.ensure()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
            with conn.makefile("rb") as stream:
                line = stream.readline()
    except (socket.timeout, OSError) as exc:
        log = _browser.log()
        _browser.stop()
        pytest.fail(f"browser scenario {scenario} took over {timeout}s or its browser process failed ({exc!r}): {log}")
    if not line:
        log = _browser.log()
        _browser.stop()
        pytest.fail(f"browser process ended during scenario {scenario}: {log}")
    reply = json.loads(line)
    assert "error" not in reply, reply["error"][-4000:]
    return reply["result"]
