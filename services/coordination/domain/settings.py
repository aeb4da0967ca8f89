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

DOC_KINDS = ("notice", "opinion", "decision")   # 监督通知书 / 意见书 / 决定书


@dataclass(frozen=True)
class CoordinationSettings(SettingsBase):
    SECTION: ClassVar[str] = "coordination"

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
    # count the limits above in working days (China's official calendar) rather than calendar days
    workdays: bool = True

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        for name, value in self.to_dict().items():
            if name == "workdays":
                if not isinstance(value, bool):
                    raise ValueError(f"coordination setting {name} must be true or false")
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


DEFAULT_SETTINGS = CoordinationSettings()
