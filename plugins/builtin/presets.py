"""Jurisdiction presets (辖区预设) as a built-in plugin.

A preset names the numbers one jurisdiction's work plan sets, grouped by the service that uses
them: "penalty" keys are `PenaltySettings` field names; "personnel" and "registry" keys are read
by those services. Every preset inherits "national" for what it does not set (the host does the
merge), and "national" itself is the law's defaults — an empty "penalty" section means exactly
`PenaltySettings()`.

Dates within a year are "MM-DD" strings, so a preset stays valid from one year to the next.
"""
from __future__ import annotations

import copy

from plugins.hookspecs import hookimpl

PRESETS: dict[str, dict[str, dict]] = {
    # 《行政处罚法》(2021) defaults; discretion standards with at least 3 tiers, no tier floor.
    "national": {
        "penalty": {},
        "personnel": {},
        "registry": {"min_tiers": 3, "lightest_tier_floor": 0.0},
    },
    # Seed 001: major penalty = fine >= 200,000 yuan or a listed kind, filed within 15 days;
    # 20 class hours of legal training, report by Jul 1, full rotation by Nov 15; discretion
    # standards filed by Aug 15; delegated township items evaluated by Dec 15.
    "seed001": {
        "penalty": {
            "major_fine_threshold": 200_000,
            "major_filing_days": 15,
            "major_kinds": (
                "confiscation", "licence_suspension", "licence_revocation", "qualification_lowered",
                "practice_restricted", "production_stopped", "closure",
            ),
        },
        "personnel": {
            "training_hours_per_year": 20,
            "training_report_due": "07-01",
            "training_due": "11-15",
        },
        "registry": {
            "min_tiers": 5,
            "standards_filing_due": "08-15",
            "delegated_review_due": "12-15",
        },
    },
    # Seed 000 (市政府55号令): stop production, revoke licence or fine >= 20,000 yuan; 60 days.
    "seed000": {
        "penalty": {
            "major_fine_threshold": 20_000,
            "major_filing_days": 60,
            "major_kinds": ("production_stopped", "licence_revocation"),
        },
    },
    # Seed 003: five tiers (从轻、较轻、一般、较重、严重); where the law gives only a maximum, the
    # lightest tier may not go below 20% of it; standards filed by Jul 30.
    "seed003": {
        "registry": {
            "min_tiers": 5,
            "lightest_tier_floor": 0.2,
            "standards_filing_due": "07-30",
        },
    },
}


@hookimpl
def zhifa_presets():
    # A copy, so no caller can change the presets of the whole process.
    return copy.deepcopy(PRESETS)
