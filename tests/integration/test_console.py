"""The justice bureau's console (console/) in a real browser: Debian's chromium driven by Playwright,
against real servers started in-process (every declared service and the API, which serves the built
console at `/`). Logs in as each role, opens every page, follows a drill-down from a chart to a record,
checks that a department user cannot reach another department's record by URL, that no page logs a
console error, and that axe-core finds no serious or critical accessibility violation. Screenshots of the
main pages go to docs/screenshots/.
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


# -- the browser --------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "console" / "e2e" / "driver.py"
SHOTS = ROOT / "docs" / "screenshots"
PEOPLE = {"web-sup": ("supervisor", None), "web-aud": ("auditor", None), "web-ops": ("operator", None),
          "web-scjg": ("dept_user", SCJG)}
PASSWORD = "zhifa-console-test"
# the pages each role's menu shows (the API's x-roles decide; the server enforces them)
MENU = {
    "web-sup": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "公示"],
    "web-aud": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "审计日志", "公示"],
    "web-scjg": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "公示"],
    "web-ops": ["运维", "公示"],
}
SHOTS_OF = {"web-sup": {"驾驶舱": "overview", "监督发现": "findings"}, "web-ops": {"运维": "operations"}}


@pytest.fixture
def people(county):
    """People accounts with passwords (the browser logs in through the login page)."""
    assert (ROOT / "console" / "dist" / "index.html").is_file(), "console not built: scripts/bootstrap.sh console"
    assert Path(CHROMIUM).is_file(), "Debian chromium missing: scripts/bootstrap.sh browser"
    for name, (role, dept) in PEOPLE.items():
        accounts.create_user(county.db, name, role, utcnow(), dept=dept, password=PASSWORD)
    return county


CHROMIUM = "/usr/bin/chromium"


def drive(kit, scenario: str, timeout: float = 120, **spec) -> dict:
    """Run a browser scenario (console/e2e/driver.py) in its own process; the servers of this process go on
    serving while it runs (eventlet: wait with green sleeps, never a blocking wait)."""
    payload = json.dumps({"scenario": scenario, "base": kit.base, "password": PASSWORD, "shots": str(SHOTS),
                          **spec}, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        (Path(tmp) / "in.json").write_text(payload)
        with open(Path(tmp) / "in.json") as stdin, open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen([sys.executable, str(DRIVER)], stdin=stdin, stdout=stdout, stderr=stderr, cwd=ROOT)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                eventlet.sleep(0.2)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                pytest.fail(f"browser scenario {scenario} took over {timeout}s: {err.read_text()[-3000:]}")
        assert proc.returncode == 0, err.read_text()[-4000:]
        return json.loads(out.read_text())


def test_every_role_opens_its_pages_without_errors_or_serious_accessibility_violations(people):
    seen = drive(people, "pages", users=list(MENU), shots_of=SHOTS_OF)
    problems = []
    for user, menu in MENU.items():
        got = seen[user]
        assert got["menu"] == menu, (user, got["menu"])
        for entry in menu:
            page = got["pages"][entry]
            if not page["title"].startswith(entry) or page["alerts"] or page["axe"]:
                problems.append((user, entry, page))
        if got["errors"]:
            problems.append((user, "console", got["errors"]))
    assert problems == [], json.dumps(problems, ensure_ascii=False, indent=1)
    # what each role's pages show, from the real services
    assert seen["web-sup"]["pages"]["驾驶舱"]["hash"] == "/overview"
    for name in ("overview", "findings", "operations"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000


def test_a_chart_drills_down_to_its_list_and_the_record_and_a_department_sees_only_its_own(people):
    seen = drive(people, "drilldown", supervisor="web-sup", dept_user="web-scjg", dept=SCJG,
                 finding_rule="PEN-OFFICERS-MIN", own_case=ALONE, other_case=STHJ_CASE, other_officer=STHJ_OFF,
                 shots_of=True)
    # the pie's most severe sector → the findings of that severity → the record they are about
    assert seen["list_hash"] == "/findings?severity=critical", seen["list_hash"]
    assert len(seen["list_rows"]) >= 1 and all("严重" in r for r in seen["list_rows"]), seen["list_rows"]
    assert seen["record_hash"] == f"/cases/{STHJ_CASE}"
    assert seen["record_title"] == "案件 营环立〔2026〕1号"
    assert "PEN-ITEM-NOT-HELD" in seen["record_text"] and "立案" in seen["record_text"]
    # triage: the critical finding is marked as read (已阅) and keeps its place in the inbox
    assert "PEN-ITEM-NOT-HELD" in seen["after_acknowledge"] and "已阅" in seen["after_acknowledge"], seen
    # a supervision case opened from the SCJG finding shows in the supervisor's list and the department's
    assert "refused" not in seen, seen.get("refused")
    assert "PEN-OFFICERS-MIN" in seen["supervision_after_open"] or "1 次执法行为" in seen["supervision_after_open"]
    assert "1 次执法行为" in seen["dept_supervision"], seen["dept_supervision"]
    assert seen["sup_errors"] == [], seen["sup_errors"]
    # the department user's own case in full (its party's ID unmasked), another department's not at all
    assert seen["own_case_title"] == "案件 营市监立〔2026〕2号" and "91511322MA3C4X0002" in seen["own_case_text"]
    for key in ("other_case", "other_officer"):
        assert seen[key]["alerts"] and "未找到" in seen[key]["alerts"][0], seen[key]
        assert "营环立" not in seen[key]["text"] and "陈静" not in seen[key]["text"], seen[key]
    assert all("404" in e for e in seen["dept_errors"]) and len(seen["dept_errors"]) == 2, seen["dept_errors"]


def test_public_pages_need_no_login_and_other_pages_send_to_the_login(people):
    seen = drive(people, "public", dept=SCJG, shots_of=True)
    assert seen["title"].startswith("公示") and seen["menu"] == []
    assert "对生产经营不符合食品安全标准食品的行政处罚" in seen["text"] and "330217001000" in seen["text"]
    assert seen["axe"] == [], seen["axe"]
    assert seen["cases_hash"].startswith("/login?next=") and seen["errors"] == []
