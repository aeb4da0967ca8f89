"""Every number a penalty rule uses. Defaults are the national law (《行政处罚法》2021);
jurisdiction presets and department plugins override them by field name (see plugins/)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from services.common.settings import SettingsBase

TUPLE_FIELDS = frozenset({"major_kinds", "hearing_kinds", "simple_kinds", "av_mandatory_kinds"})


@dataclass(frozen=True)
class PenaltySettings(SettingsBase):
    SECTION: ClassVar[str] = "penalty"
    TUPLE_FIELDS: ClassVar[frozenset[str]] = TUPLE_FIELDS

    min_officers: int = 2                      # Art. 42
    decision_days: int = 90                    # Art. 60, calendar days from filing
    decision_extension_days: int = 30          # 市场监管: +30 days with approval
    hearing_request_wd: int = 5                # Art. 64(1)
    hearing_notice_wd: int = 7                 # Art. 64(2)
    hearing_fine_person: float = 10_000        # Art. 63 "较大数额" (provincial; configurable)
    hearing_fine_org: float = 100_000
    simple_limit_person: float = 200           # Art. 51
    simple_limit_org: float = 3_000
    service_wd: int = 7                        # Art. 61
    payment_days: int = 15                     # Art. 67
    late_fee_rate_per_day: float = 0.03        # Art. 72, capped at the fine
    publication_penalty_wd: int = 7            # seed 002; 国办发〔2018〕118号
    publication_other_wd: int = 20
    withdrawal_wd: int = 3                     # Art. 48
    major_fine_threshold: float = 200_000      # seed 001 (seed 000: 20,000)
    major_filing_days: int = 15                # seed 001 (seed 000: 60)
    major_kinds: tuple[str, ...] = (           # penalty kinds that are always "major"
        "confiscation", "licence_suspension", "licence_revocation", "qualification_lowered",
        "practice_restricted", "production_stopped", "closure",
    )
    duplicate_fine_window_days: int = 365      # Art. 29 look-back for "same act fined twice"
    filing_wd: int | None = None               # 及时立案: set by a department plugin (市场监管 15)
    filing_extension_wd: int = 0               # 市场监管 +15 with approval
    hearing_kinds: tuple[str, ...] = (         # Art. 63(3)(4): kinds that always give a hearing right
        "qualification_lowered", "licence_revocation", "production_stopped", "closure",
        "practice_restricted",
    )
    simple_kinds: tuple[str, ...] = ("warning", "fine")        # Art. 51: all 当场处罚 may impose
    av_mandatory_kinds: tuple[str, ...] = ("seizure", "forced_demolition")  # seed 002: full AV
    publish_simple_procedure: bool = False     # 当场处罚 decisions are not published by default
    held_fact_grace_days: int = 3              # a fact waiting for its prerequisite longer is reported
    arrival_settle_seconds: int = 10           # facts arriving within this of each other "arrived together"
    utc_offset_hours: int = 8                  # dates and day limits are reckoned in China time
