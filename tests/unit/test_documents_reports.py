"""Report documents (月报 / 季报): who may make which report (DOC-REPORT-OWNER), the printed fields
from the coordination domain's figures, and the filled GB/T 9704 template as DOCX and PDF
(pdftotext shows the Chinese title and the figures; page 1 looked at with pdftoppm)."""
from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date

import docx
import pytest

from services.common.errors import DomainError
from services.coordination.domain import reports as rp
from services.documents import reports
from services.documents.render import TEMPLATES_DIR, docx_to_pdf, fill_docx, template_variables
from tests.unit.test_documents_render import red_and_dark_pixels

SFJ, SCJG, STHJ = "511322-sfj", "511322-scjg", "511322-sthj"
TODAY = date(2026, 11, 30)
ENTRIES = [{"finding_key": f"PEN-FILING-LATE:case:{i}", "rule_id": "PEN-FILING-LATE", "dept": SCJG, "source": "penalty",
            "severity": "warning", "raised_at": f"2026-10-{i + 1:02d}T09:00:00+08:00", "resolved_at": None, "log": [],
            "escalated": False, "open": True} for i in range(3)]
PENALTY = [{"dept": SCJG, "filed_at": "2026-10-03T09:00:00+08:00", "decided_at": "2026-10-20T09:00:00+08:00",
            "fine_amount": 12000, "closed_at": None},
           {"dept": STHJ, "filed_at": "2026-09-03T09:00:00+08:00", "decided_at": None, "closed_at": None}]
INSPECTIONS = {SCJG: {"2026-09": {"inspections": 10, "joint": 2}, "2026-10": {"inspections": 8, "joint": 6}},
               STHJ: {"2026-10": {"inspections": 4, "joint": 2}},
               "*": {"2026-09": {"inspections": 10, "joint": 2}, "2026-10": {"inspections": 10, "joint": 6}}}
HANDOVERS = {SCJG: {"2026-10": {"raised": 1, "transferred": 1}}, "*": {"2026-10": {"raised": 1, "transferred": 1}}}
NAMES = {SCJG: "营山县市场监督管理局", STHJ: "营山生态环境局"}


def data(**over):
    return {"entries": ENTRIES, "cases": [], "complaints": [], "documents": [], "penalty_cases": PENALTY,
            "inspections": INSPECTIONS, "handovers": HANDOVERS, **over}


def test_who_may_make_which_report():
    assert reports.report_request("monthly_report", "2026-10", SCJG, TODAY)["county"] is False
    assert reports.report_request("monthly_report", "2026-10", SFJ, TODAY)["county"] is True
    assert reports.report_request("quarterly_report", "2026-Q3", SFJ, TODAY)["first_day"] == date(2026, 7, 1)
    with pytest.raises(DomainError) as err:
        reports.report_request("quarterly_report", "2026-Q3", SCJG, TODAY)     # the county's, not a department's
    assert err.value.code == "forbidden" and err.value.field == "dept"
    assert reports.report_request("quarterly_report", "2026-Q3", SFJ, TODAY, "supervisor")["county"] is True
    for role in ("dept_user", "auditor"):                                      # a bureau account that is no supervisor
        with pytest.raises(DomainError) as err:
            reports.report_request("monthly_report", "2026-10", SFJ, TODAY, role)
        assert err.value.code == "forbidden"
    assert reports.report_request("monthly_report", "2026-10", SCJG, TODAY, "dept_user")["county"] is False
    for kind, bad in (("monthly_report", "2026-13"), ("monthly_report", "2026-Q3"), ("quarterly_report", "2026-10"),
                      ("monthly_report", "2026-12")):                         # December has not begun yet
        with pytest.raises(DomainError) as err:
            reports.report_request(kind, bad, SFJ, TODAY)
        assert err.value.field == "subject_id" and err.value.code == "invalid_value"


def test_fields_of_a_department_report_print_its_figures_and_the_trend():
    report = rp.monthly_report("2026-10", SCJG, **data())
    f = reports.report_fields("monthly_report", "2026-10", report, scope_name=NAMES[SCJG], dept_names=NAMES)
    assert f["report_title"] == "2026年10月行政执法工作月报"
    assert f["period_text"] == "2026年10月1日至2026年10月31日"
    rows = {r["label"]: r for r in f["rows"]}
    assert rows["行政检查（次）"] == {"label": "行政检查（次）", "now": "8", "before": "10", "change": "-2"}
    assert rows["联合检查率"] == {"label": "联合检查率", "now": "75.0%", "before": "20.0%", "change": "+55.0个百分点"}
    assert rows["移送涉嫌犯罪案件（件）"]["now"] == "1" and rows["新增监督发现（条）"]["change"] == "+3"
    assert rows["罚没款金额（元）"]["now"] == "12,000"
    assert f["dept_rows"] == [{"dept": NAMES[SCJG], "filed": "1", "decided": "1", "inspections": "8", "joint_rate": "75.0%",
                               "transferred": "1", "findings": "3"}]
    assert "开展行政检查8次，其中联合检查6次，联合检查率75.0%" in f["summary"] and "“上期”为2026年9月" in f["notes"]


def test_a_source_that_did_not_answer_prints_a_dash_and_says_so():
    report = rp.county_report(["2026-10"], **data(inspections=None, penalty_cases=None))
    f = reports.report_fields("monthly_report", "2026-10", report, scope_name="全县", dept_names=NAMES)
    rows = {r["label"]: r for r in f["rows"]}
    assert rows["行政检查（次）"] == {"label": "行政检查（次）", "now": "—", "before": "—", "change": "—"}
    assert "行政处罚案件、行政检查数据暂不可用" in f["notes"] and "行政检查" not in f["summary"]
    assert f["report_title"] == "2026年10月全县行政执法工作月报" and f["dept_rows"][-1]["dept"] == "合计（全县）"


def render_quarter() -> tuple[bytes, dict]:
    months = rp.quarter_months("2026-Q4")
    report = rp.county_report(months, **data())
    fields = reports.report_fields("quarterly_report", "2026-Q4", report, scope_name="全县", dept_names=NAMES)
    fields.update(agency_name="营山县司法局", doc_number="营司季报〔2026〕1号", issued_on="2026年11月30日")
    return fill_docx((TEMPLATES_DIR / "quarterly_report.docx").read_bytes(), fields, "行政执法工作季报"), fields


def test_the_report_templates_take_the_computed_fields_and_fill_their_tables():
    for kind in reports.REPORT_KINDS:
        assert template_variables((TEMPLATES_DIR / f"{kind}.docx").read_bytes()) == (
            (reports.COMPUTED - {"scope_name"}) | {"agency_name", "doc_number", "issued_on"})
    data_, fields = render_quarter()
    d = docx.Document(io.BytesIO(data_))
    summary, per_dept = d.tables
    assert len(summary.rows) == 1 + len(reports.ROWS)                 # header + one row per figure
    assert [c.text for c in per_dept.rows[0].cells][0] == "部门"
    assert [c.text for c in per_dept.rows[-1].cells][:4] == ["合计（全县）", "1", "1", "10"]
    assert len(per_dept.rows) == 1 + len(fields["dept_rows"])
    assert "{%" not in "".join(c.text for t in d.tables for r in t.rows for c in r.cells)


@pytest.mark.skipif(not shutil.which("soffice") or not shutil.which("pdftotext"), reason="bootstrap docs step")
def test_the_pdf_shows_the_chinese_title_and_the_figures(tmp_path):
    pdf = docx_to_pdf(render_quarter()[0])
    (tmp_path / "q.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "q.pdf"), "-"], capture_output=True,
                          check=True).stdout.decode()
    flat = "".join(text.split())
    assert "2026年第四季度全县行政执法工作季报" in flat and "营司季报〔2026〕1号" in flat and "营山县司法局" in flat
    assert "联合检查率" in flat and "60.0%" in flat and "营山县市场监督管理局" in flat   # 6 of 10, the county's rate
    assert "合计（全县）" in flat and "2026年11月30日" in flat

    # page 1 as a picture: the red 版头 and the text are on it; every font embedded
    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / "q.pdf"), str(tmp_path / "page")],
                   check=True)
    (picture,) = tmp_path.glob("page*.ppm")
    red, dark = red_and_dark_pixels(picture.read_bytes())
    assert red > 200 and dark > 2000, (red, dark)
    fonts = subprocess.run(["pdffonts", str(tmp_path / "q.pdf")], capture_output=True, check=True).stdout.decode()
    assert all(" yes " in line for line in fonts.splitlines()[2:]), fonts


def test_a_profile_in_use_by_another_process_is_waited_for_never_shared(tmp_path):
    import fcntl

    from services.documents.render import ConverterUnavailable, _profile_lock

    profile = tmp_path / "lo-profile-0"
    with open(f"{profile}.lock", "a") as other:          # another process converting with this profile
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConverterUnavailable):
            with _profile_lock(profile, timeout=0.5):
                pass
        fcntl.flock(other, fcntl.LOCK_UN)
    with _profile_lock(profile, timeout=0.5):            # free again: taken at once
        with pytest.raises(ConverterUnavailable):
            with _profile_lock(profile, timeout=0.3):    # and held while in use
                pass
