"""The justice bureau's console (console/) in a real browser: Debian's chromium driven by Playwright,
against real servers started in-process (every declared service and the API, which serves the built
console at `/`). Logs in as each role, opens every page, follows a drill-down from a chart to a record,
checks that a department user cannot reach another department's record by URL, that no page logs a
console error, and that axe-core finds no serious or critical accessibility violation. Screenshots of the
main pages go to docs/screenshots/.
"""
from __future__ import annotations

import json

from services.kernel.manifest import manifests, service_processes
from tests.console_kit import ALONE, SHOTS, STHJ_CASE, STHJ_OFF, county, drive, people  # noqa: F401 (fixtures)
from tests.helpers import SCJG

# the pages each role's menu shows (the API's x-roles decide; the server enforces them)
RECORDS = ["行政检查", "检查计划", "行刑衔接", "投诉举报", "管辖争议", "规范性文件", "监控设备"]
MENU = {
    "web-sup": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "网上办案", "案卷评查", "评议考核", "月报季报", *RECORDS, "公示"],
    "web-aud": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "评议考核", "月报季报", *RECORDS, "审计日志", "公示"],
    "web-scjg": ["驾驶舱", "监督发现", "处罚案件", "执法人员", "执法事项", "监督案件", "网上办案", "月报季报", *RECORDS, "公示"],
    "web-ops": ["运维", "公示"],
}
SHOTS_OF = {"web-sup": {"驾驶舱": "overview", "监督发现": "findings"}, "web-ops": {"运维": "operations"}}


def test_every_role_opens_its_pages_without_errors_or_serious_accessibility_violations(people):
    seen = drive(people, "pages", timeout=360, users=list(MENU), shots_of=SHOTS_OF, texts_of={"web-ops": ["运维"]})
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
    # the operator's 运维 page lists every declared service process with its state (here none of them
    # serves its health port: the services run inside this test's process, so each row says why it went unheard)
    ops = seen["web-ops"]["pages"]["运维"]["text"]
    processes = [name for m in manifests() for name, _, port in service_processes(m) if port]
    assert "全套服务" in ops and f"{len(processes)} 个进程" in ops, ops
    assert all(name in ops for name in processes), (processes, ops)
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
