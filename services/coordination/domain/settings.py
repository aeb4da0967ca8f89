"""Every number a coordination rule uses (司法局协调监督): presets and department plugins override them.

Day limits of 《行政执法监督条例》(国务院令第825号) could not be verified against the official text
when this was written (DOMAIN.md asks to verify before coding): the defaults below are assumptions
taken from common county practice and are configuration, never constants in rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar

from services.common.findings import SEVERITIES
from services.common.settings import SettingsBase
from services.common.workdays import DEFAULT_CALENDAR, WorkdayCalendar
from services.coordination.domain.evaluation import DEFAULT_INDICATORS, check_indicators

DOC_KINDS = ("notice", "opinion", "decision")   # 监督通知书 / 意见书 / 决定书

# Case-file review checklist (案卷评查标准): item, label, points (sum 100), veto (一票否决) and the
# suite's own rules that already show the item failed on a case (pre-filled for the reviewer).
DEFAULT_CHECKLIST = (
    {"item": "agency", "label": "执法主体合法、未超越职权", "points": 15, "veto": True, "rules": ["PEN-ITEM-NOT-HELD"]},
    {"item": "credential", "label": "执法人员持有效执法证件", "points": 10, "veto": True,
     "rules": ["PEN-OFFICER-CREDENTIAL"]},
    {"item": "two_officers", "label": "调查取证执法人员不少于两人", "points": 10, "veto": True,
     "rules": ["PEN-OFFICERS-MIN"]},
    {"item": "handover", "label": "涉嫌犯罪的依法移送", "points": 10, "veto": True, "rules": ["PEN-CRIME-NO-HANDOVER"]},
    {"item": "evidence", "label": "事实清楚、证据确凿充分", "points": 15, "veto": True, "rules": []},
    {"item": "law", "label": "适用法律依据正确", "points": 10, "veto": True, "rules": []},
    {"item": "procedure", "label": "程序合法（告知、听证、法制审核、集体讨论）", "points": 15, "veto": True,
     "rules": ["PEN-HEARING-NOT-NOTIFIED", "PEN-HEARING-WINDOW", "PEN-LEGAL-REVIEW-MISSING",
               "PEN-COLLECTIVE-MISSING", "PEN-SIMPLE-OVER-LIMIT"]},
    {"item": "discretion", "label": "裁量适当", "points": 5, "veto": False, "rules": ["PEN-FINE-OUT-OF-TIER",
                                                                                    "PEN-DOUBLE-FINE"]},
    {"item": "time_limits", "label": "办案期限合规", "points": 5, "veto": False,
     "rules": ["PEN-FILING-LATE", "PEN-DECISION-OVERDUE", "PEN-SERVICE-LATE"]},
    {"item": "record", "label": "全过程记录完整、案卷规范", "points": 5, "veto": False, "rules": ["PEN-AV-MISSING"]},
)


@dataclass(frozen=True)
class CoordinationSettings(SettingsBase):
    SECTION: ClassVar[str] = "coordination"
    TUPLE_FIELDS: ClassVar[frozenset[str]] = frozenset({"review_checklist", "evaluation_indicators", "reporting_depts"})

    # findings inbox: a finding not yet handled (assigned, dismissed, merged, resolved) within this
    # many days of being raised escalates (升级督办)
    response_days_critical: int = 1
    response_days_serious: int = 3
    response_days_warning: int = 10
    response_days_info: int = 30
    # supervision cases: the department's written reply per document kind, and rectification
    # when the document asks for it and names no date of its own
    notice_reply_days: int = 10
    opinion_reply_days: int = 15
    decision_reply_days: int = 15
    rectification_days: int = 30
    # complaints (投诉举报, 12345): routing by the bureau, acknowledgement and answer by the department
    complaint_route_days: int = 1
    complaint_ack_days: int = 2
    complaint_answer_days: int = 15
    complaint_repeat_count: int = 3           # complaints about one party/officer within the window: a signal
    complaint_repeat_window_days: int = 90
    # jurisdiction disputes (管辖争议): the other party answers, then agreement or referral upwards
    dispute_answer_days: int = 5
    dispute_resolve_days: int = 30            # calendar days from raising to agreement or referral
    # normative documents (规范性文件) filed with the bureau within N calendar days of issue (seed 000)
    normative_filing_days: int = 30
    # monthly reports (月报): due on this day of the next month (seed 001: the 10th); the roster of
    # departments that must report, and the justice bureau's own department code that opens each
    # month on its behalf (empty: the service opens nothing, months open with a first submission)
    monthly_report_day: int = 10
    reporting_depts: tuple = ()
    bureau_dept: str = ""
    # case-file review (案卷评查): files per department, grades, the checklist (seed 000: 100 files in all)
    review_per_dept: int = 5
    review_pass_score: int = 60
    review_excellent_score: int = 90
    review_checklist: tuple = DEFAULT_CHECKLIST
    # annual evaluation (评议考核): the indicator system (services/coordination/domain/evaluation.py)
    evaluation_indicators: tuple = DEFAULT_INDICATORS
    # count the limits above in working days (China's official calendar) rather than calendar days
    workdays: bool = True

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        for name, value in self.to_dict().items():
            if name == "review_checklist":
                _check_checklist(value)
            elif name == "evaluation_indicators":
                check_indicators(value)
            elif name == "reporting_depts":
                if not all(isinstance(d, str) and d for d in value):
                    raise ValueError("coordination setting reporting_depts must list department codes")
            elif name == "bureau_dept":
                if not isinstance(value, str):
                    raise ValueError("coordination setting bureau_dept must be a department code")
            elif name == "workdays":
                if not isinstance(value, bool):
                    raise ValueError(f"coordination setting {name} must be true or false")
            elif name == "monthly_report_day" and not (isinstance(value, int) and 1 <= value <= 28):
                raise ValueError("coordination setting monthly_report_day must be a day between 1 and 28")
            elif not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 366:
                # every other setting is a day count (or a count) within a year
                raise ValueError(f"coordination setting {name} must be an integer between 1 and 366, got {value!r}")

    def response_days(self, severity: str) -> int:
        if severity not in SEVERITIES:
            severity = "info"
        return getattr(self, f"response_days_{severity}")

    def reply_days(self, doc_kind: str) -> int:
        return getattr(self, f"{doc_kind}_reply_days")

    def add_days(self, start: date, n: int, calendar: WorkdayCalendar = DEFAULT_CALENDAR) -> date:
        """The day n (working) days after `start`: the last day a limit of n days allows."""
        return calendar.add_workdays(start, n) if self.workdays else start + timedelta(days=n)


def _check_checklist(items: tuple) -> None:
    ids = [i.get("item") for i in items if isinstance(i, dict)]
    if len(ids) != len(items) or not all(isinstance(x, str) and x for x in ids) or len(set(ids)) != len(ids):
        raise ValueError("coordination setting review_checklist: every item needs a unique 'item' id")
    for i in items:
        if not isinstance(i.get("points"), int) or isinstance(i.get("points"), bool) or i["points"] < 0:
            raise ValueError(f"review_checklist item {i['item']}: points must be a non-negative integer")
    if sum(i["points"] for i in items) != 100:
        raise ValueError("coordination setting review_checklist: points must add up to 100")


DEFAULT_SETTINGS = CoordinationSettings()
