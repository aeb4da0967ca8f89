"""Browser scenarios of the console's work pages (tests/integration/test_console_work.py), built on
driver.py's Tab and run(): a 网上办案 case through its forms (with a field the server refuses), a
supervision case from a finding to closure by the supervisor and the department, a case-file review
scored, an evaluation score entered, the report pages, and every work page as each role."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from driver import Tab, run


def item(tab: Tab, label: str):
    """The form item whose label is exactly `label`."""
    return tab.page.locator(".el-form-item").filter(
        has=tab.page.locator(".el-form-item__label", has_text=re.compile(f"^{re.escape(label)}$"))).first


def fill(tab: Tab, label: str, value: str):
    box = item(tab, label).locator("input, textarea").first
    box.fill(value)
    box.press("Tab")


def choose(tab: Tab, label: str, *options: str):
    """Pick option(s) of the select of the form item `label`."""
    item(tab, label).locator(".el-select__wrapper").click()
    for text in options:  # an option's label starts with `text` (an officer: "李明（511322-scjg-0101）")
        option(tab, text)
    tab.page.keyboard.press("Escape")  # a multiple select stays open; a single one has closed already
    tab.page.wait_for_timeout(300)     # the dropdown fades out: its options must not be taken for the next one's


def option(tab: Tab, text: str):
    tab.page.locator(".el-select-dropdown__item:visible", has_text=re.compile(f"^{re.escape(text)}")).first.click()


def command(tab: Tab, title: str):
    """Switch the case's form to another command."""
    tab.page.locator("#command-select").click()
    tab.page.locator(".el-select-dropdown__item:visible", has_text=re.compile(f"^{re.escape(title)}$")).click()
    tab.page.wait_for_timeout(300)


def success(tab: Tab, timeout: float = 15000) -> str:
    """Wait for the success notice and let the page settle; its text."""
    message = tab.page.locator(".el-message--success").first
    message.wait_for(timeout=timeout)
    text = message.inner_text()
    tab.settle()
    return text


def submit(tab: Tab, name: str):
    tab.page.get_by_role("button", name=name).click()


def top(tab: Tab):
    """Scroll the content back to its top (for a screenshot of the page's head)."""
    tab.page.evaluate("() => document.querySelector('main').scrollTo(0, 0)")
    tab.page.wait_for_timeout(200)


def go(tab: Tab, path: str):
    """Open a console path; Tab.open settles until its page has replaced the one before (a hash change renders
    the new page a moment later, after its code is loaded)."""
    tab.open(path)


def visit(tab: Tab, path: str) -> dict:
    go(tab, path)
    return {"title": tab.title(), "alerts": tab.alerts(), "axe": tab.axe(), "hash": tab.hash()}


def casework(browser, spec: dict) -> dict:
    """A department user files a case and takes it to a decision through the forms; one decision the server
    refuses on a field (a fine without the fine kind) shows the server's message on that field."""
    out: dict = {}
    tab = Tab(browser, spec)
    tab.login(spec["dept_user"])
    out["list"] = visit(tab, "/work/cases")
    tab.page.get_by_role("button", name="新立案件（立案）").click()
    tab.page.wait_for_url(lambda url: "/work/cases/new" in url)
    tab.settle()
    out["new"] = {"title": tab.title(), "axe": tab.axe()}
    fill(tab, "案件编号", spec["case_id"])
    fill(tab, "执法事项编码", spec["item_code"])
    choose(tab, "当事人类型", "法人或其他组织")
    fill(tab, "当事人证件号码", spec["party_id"])
    fill(tab, "当事人名称", spec["party_name"])
    fill(tab, "简要案情", "群众举报销售过期食品（网上办案）")
    submit(tab, "提交：立案")
    success(tab)
    tab.page.wait_for_url(lambda url: f"/work/cases/{spec['case_id']}" in url)
    tab.settle()
    out["after_file"] = tab.page.locator("[data-test=stage]").inner_text()

    # 调查取证 (the default command on a filed case) with two officers
    choose(tab, "执法行为类型", "调查取证")
    choose(tab, "执法人员", *spec["officer_names"])
    fill(tab, "情况说明", "现场检查，提取证据")
    submit(tab, "提交：调查取证")
    success(tab)
    out["after_act"] = tab.page.locator("[data-test=stage]").inner_text()

    # 告知 without hearing right, fine proposed
    command(tab, "告知")
    choose(tab, "拟处罚种类", "罚款")
    submit(tab, "提交：告知")
    success(tab)
    out["after_notify"] = tab.page.locator("[data-test=stage]").inner_text()

    # 作出处罚决定: first a fine with only 警告 as its kind — the server refuses and names the field
    command(tab, "作出处罚决定")
    fill(tab, "决定书文号", spec["decision_no"])
    choose(tab, "处罚种类", "警告")
    # the party is pre-filled from the case
    out["prefilled_party"] = [item(tab, name).locator("input").first.input_value() for name in ("当事人证件号码", "当事人名称")]
    fill(tab, "违法行为编码", "FOOD-EXPIRED-SALE")
    fill(tab, "罚款金额（元）", str(spec["fine"]))
    out["requests_before_refusal"] = tab.page.evaluate("() => window.__zhifaPending")
    submit(tab, "提交：作出处罚决定")
    refused = item(tab, "处罚种类").locator(".el-form-item__error")
    refused.wait_for()
    out["field_error"] = refused.inner_text()
    out["error_items"] = tab.page.locator(".el-form-item.is-error .el-form-item__label").all_inner_texts()
    out["general_alert"] = tab.alerts()
    out["stage_after_refusal"] = tab.page.locator("[data-test=stage]").inner_text()
    refused.evaluate("e => e.scrollIntoView({block: 'center'})")
    tab.shot("casework-refused")
    # add 罚款 and decide
    choose(tab, "处罚种类", "罚款")
    submit(tab, "提交：作出处罚决定")
    success(tab)
    out["after_decide"] = tab.page.locator("[data-test=stage]").inner_text()
    out["timeline"] = tab.main_text()
    out["axe"] = tab.axe()
    top(tab)
    tab.shot("casework")
    out["errors"] = tab.errors
    tab.close()
    return out


def supervision(browser, spec: dict) -> dict:
    """The supervisor opens a supervision case from a department's finding and issues a notice (rendered
    as DOCX/PDF, downloaded); the department sees it in its own view, replies and reports the rectification;
    the supervisor verifies and closes."""
    out: dict = {}
    sup = Tab(browser, spec)
    sup.login(spec["supervisor"])
    go(sup, f"/findings?dept={spec['dept']}")
    row = sup.page.locator(".el-table__fixed-right tr, .el-table__body-wrapper tr", has_text=spec["finding_rule"]).last
    row.get_by_role("button", name="立监督案件").click()
    sup.page.locator(".el-message-box").get_by_role("button", name="确定").click()
    sup.page.wait_for_url(lambda url: "/supervision/JD-" in url)
    sup.settle()
    out["case_hash"] = sup.hash()
    out["opened_text"] = sup.main_text()
    fill(sup, "主要内容", "调查取证仅一名执法人员，违反《行政处罚法》第四十二条")
    fill(sup, "联系人", "王监督")
    fill(sup, "联系电话", "0817-1234567")
    submit(sup, "制发行政执法监督通知书")
    out["issued"] = success(sup, timeout=120000)  # LibreOffice renders the PDF: tens of seconds on a busy machine
    out["after_issue"] = {"status": sup.page.locator("[data-test=track-status]").first.inner_text(), "text": sup.main_text()}
    out["sup_axe"] = sup.axe()
    top(sup)
    sup.shot("supervision-case")
    # the notice's PDF, as a browser downloads it
    with sup.page.expect_download() as got:
        sup.page.locator("main a", has_text=re.compile("^PDF$")).first.click()
    target = Path(spec["downloads"]) / "notice.pdf"
    got.value.save_as(str(target))
    out["pdf"] = str(target)
    out["pdf_name"] = got.value.suggested_filename

    dep = Tab(browser, spec)
    dep.login(spec["dept_user"])
    go(dep, "/supervision")
    out["dept_list"] = dep.main_text()
    dep.page.locator("main a.link", has_text="JD-").first.click()
    dep.page.wait_for_url(lambda url: "/supervision/JD-" in url)
    dep.settle()
    out["dept_case"] = dep.main_text()
    # the notice is addressed to the department (受文部门): listed on its page with its downloads
    with dep.page.expect_download() as got:
        dep.page.locator("main a", has_text=re.compile("^PDF$")).first.click()
    out["dept_pdf_name"] = got.value.suggested_filename
    fill(dep, "答复内容", "已收到监督通知书，正在组织整改")
    fill(dep, "整改计划", "补充第二名执法人员，重新调查取证")
    submit(dep, "提交答复")
    success(dep)
    out["after_reply"] = dep.page.locator("[data-test=track-status]").first.inner_text()
    fill(dep, "整改情况", "已补充执法人员并重新取证")
    submit(dep, "提交整改报告")
    success(dep)
    out["after_rectify"] = dep.page.locator("[data-test=track-status]").first.inner_text()
    out["dept_axe"] = dep.axe()
    top(dep)
    dep.shot("supervision-dept")
    out["dept_errors"] = dep.errors
    dep.close()

    sup.page.reload()  # the supervisor's tab still shows the case as it was before the department acted
    sup.settle()
    fill(sup, "核查意见", "整改到位")
    submit(sup, "提交核查")
    success(sup)
    out["after_verify"] = sup.page.locator("[data-test=track-status]").first.inner_text()
    fill(sup, "办结结论", "部门已纠正，监督案件办结")
    submit(sup, "办结监督案件")
    success(sup)
    out["closed"] = sup.page.locator("[data-test=case-status]").inner_text()
    out["closed_text"] = sup.main_text()
    out["sup_errors"] = sup.errors
    sup.close()
    return out


def review(browser, spec: dict) -> dict:
    """The supervisor draws the year's case files, scores one against the checklist (its pre-filled veto
    item kept), then enters an evaluation score; the report page."""
    out: dict = {}
    tab = Tab(browser, spec)
    tab.login(spec["supervisor"])
    go(tab, "/review")
    tab.page.get_by_role("button", name="抽取评查案卷").click()
    success(tab)
    tab.page.wait_for_url(lambda url: "plan=" in url)
    tab.settle()
    out["plan_text"] = tab.main_text()
    row = tab.page.locator(".el-table__body-wrapper tr", has_text=spec["scored_case"]).first
    row.get_by_role("button", name="评分").click()
    card = tab.page.locator(".score-card")
    card.wait_for()
    out["checked"] = card.locator(".el-checkbox.is-checked").all_inner_texts()
    out["preview"] = card.inner_text()
    card.get_by_label("评查意见").fill("调查取证仅一名执法人员")
    card.get_by_role("button", name="提交评分").click()
    success(tab)
    out["scored_row"] = tab.page.locator(".el-table__body-wrapper tr", has_text=spec["scored_case"]).first.inner_text()
    out["review_axe"] = tab.axe()
    top(tab)
    tab.shot("review")

    go(tab, "/evaluation")
    choose(tab, "被考核部门", spec["dept_name"])
    fill(tab, "评分依据", "培训台账齐全，制度健全")
    submit(tab, "录入")
    success(tab)
    out["evaluation"] = tab.main_text()
    tab.page.locator(".el-table__expand-icon").first.click()
    out["evidence"] = tab.page.locator(".evidence").first.inner_text()
    out["evaluation_axe"] = tab.axe()
    tab.shot("evaluation")

    go(tab, f"/reports?month={spec['month']}")
    out["report"] = tab.main_text()
    out["report_axe"] = tab.axe()
    tab.shot("reports")
    # the county's monthly report as a document (numbered, DOCX and PDF), listed with its downloads
    tab.page.get_by_role("button", name="生成月报文书（DOCX/PDF）").click()
    success(tab, timeout=120000)
    docs = tab.page.locator(".el-table", has=tab.page.locator("th", has_text="制作时间")).last
    out["report_docs"] = docs.inner_text()
    out["report_links"] = docs.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    out["errors"] = tab.errors
    tab.close()
    return out


def pages(browser, spec: dict) -> dict:
    """Each person: its menu, and each work page (name -> path) it opens: title, alerts, axe."""
    out = {}
    for user, paths in spec["pages"].items():
        tab = Tab(browser, spec)
        tab.login(user)
        out[user] = {"menu": tab.menu(), "pages": {name: visit(tab, path) for name, path in paths.items()}}
        out[user]["errors"] = tab.errors
        tab.close()
    return out


SCENARIOS = {"casework": casework, "supervision": supervision, "review": review, "pages": pages}

if __name__ == "__main__":
    sys.exit(run(SCENARIOS))
