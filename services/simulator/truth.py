"""Ground truth (应发现的监督发现): what the suite must hold open for a simulation at `as_of`.

Computed from what the generator intended, never by running the rules:
- injected breaches (`Simulation.expectations`), each open while `since <= as_of < until`;
- ambient findings that time alone brings once the simulated year is over, from the generator's
  plans: a later year's training hours (nobody has trained in a year that was not simulated),
  credentials nearing expiry, delegated items due for a later year's evaluation.

`as_of` must not be before the end of the simulated year: inside the year, deadlines of clean
cases are still running and the truth would need the whole timeline, which the report does not.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from services.simulator.generator import CST, Simulation, personnel_settings, registry_settings

INJECTED = "injected"
AMBIENT = "ambient"


@dataclass(frozen=True)
class ExpectedFinding:
    rule_id: str
    subject_type: str
    subject_id: str
    dept: str
    origin: str = INJECTED
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule_id, self.subject_type, self.subject_id, self.dept)

    def to_dict(self) -> dict:
        return {"rule_id": self.rule_id, "subject_type": self.subject_type, "subject_id": self.subject_id,
                "dept": self.dept, "origin": self.origin, "note": self.note}


def _day(at: datetime) -> date:
    return at.astimezone(CST).date()


def _month_day(year: int, text: str) -> date:
    month, day = (int(p) for p in text.split("-"))
    return date(year, month, day)


# Rules whose grace period runs from when a fact arrived (docs/consistency.md)
ARRIVAL_GRACE_RULES = frozenset({"PEN-FACT-HELD", "PER-FACT-HELD", "PER-FACT-CONFLICT"})


def expected_findings(sim: Simulation, as_of: datetime | None = None,
                      arrived_at: datetime | None = None) -> list[ExpectedFinding]:
    """Every finding that must be open at `as_of` (default: the end of the simulated year).

    `arrived_at`: when the stream was sent to a live suite. A waiting fact is reported only after
    its grace period counted from its arrival, so held-fact findings are expected only when
    `arrived_at` + grace has passed by `as_of` (offline, facts carry no arrival: from occurrence).
    """
    as_of = as_of or sim.end
    if as_of.utcoffset() is None:
        raise ValueError("as_of must carry a time zone")
    if as_of < sim.end:
        raise ValueError(f"as_of {as_of.isoformat()} is inside the simulated year; judge it at {sim.end.isoformat()} or later")
    out = [ExpectedFinding(e.rule_id, e.subject_type, e.subject_id, e.dept, INJECTED, e.note)
           for e in sim.expectations if e.since <= as_of and (e.until is None or as_of < e.until)]
    if arrived_at is not None:
        grace = timedelta(days=personnel_settings(sim.config.preset).held_fact_grace_days)
        if arrived_at + grace > as_of:
            out = [f for f in out if f.rule_id not in ARRIVAL_GRACE_RULES]
    out += _ambient_training(sim, as_of)
    out += _ambient_expiry(sim, as_of)
    out += _ambient_evaluation(sim, as_of)
    unique = {f.key: f for f in out}
    return sorted(unique.values(), key=lambda f: f.key)


def _ambient_training(sim: Simulation, as_of: datetime) -> list[ExpectedFinding]:
    settings = personnel_settings(sim.config.preset)
    today, year = _day(as_of), sim.config.year
    out = []
    due_now = _month_day(today.year, settings.training_due)
    judged = today.year if today > due_now else today.year - 1
    checks = [("PER-TRAIN-HOURS", judged, _month_day(judged, settings.training_due))]
    if settings.training_report_due is not None:
        report = _month_day(today.year, settings.training_report_due)
        if report < today <= due_now:
            checks.append(("PER-TRAIN-PROGRESS", today.year, report))
    for rule, judged_year, since in checks:
        if judged_year <= year:
            continue  # the simulated year itself: only injected shortfalls
        for o in sim.officers:
            owes = (o.kind in settings.training_kinds and o.status_at(as_of) == "active"
                    and o.registered_at.astimezone(CST).date() <= since)
            if owes and o.training.get(judged_year, 0) < settings.training_hours_per_year:
                out.append(ExpectedFinding(rule, "training_year", f"{o.officer_id}/{judged_year}", o.dept, AMBIENT,
                                           f"{judged_year}年度未在模拟范围内，没有培训记录"))
    return out


def _ambient_expiry(sim: Simulation, as_of: datetime) -> list[ExpectedFinding]:
    settings = personnel_settings(sim.config.preset)
    today, out = _day(as_of), []
    for o in sim.officers:
        if o.status_at(as_of) != "active":
            continue
        for c in o.credentials:
            if c.live_on(today) and (c.valid_to - today).days <= settings.expiry_warning_days:
                out.append(ExpectedFinding("PER-CRED-EXPIRING", "credential", c.number, o.dept, AMBIENT,
                                           f"证件将于 {c.valid_to} 到期"))
    return out


def _ambient_evaluation(sim: Simulation, as_of: datetime) -> list[ExpectedFinding]:
    settings = registry_settings(sim.config.preset)
    today, out = _day(as_of), []
    deadline = date(today.year, *settings.delegated_evaluation_deadline)
    if today <= deadline:
        deadline = date(today.year - 1, *settings.delegated_evaluation_deadline)
    if deadline.year <= sim.config.year:
        return out
    for item in sim.items:
        in_force = item.effective_from <= deadline and (item.repealed_on is None or deadline < item.repealed_on)
        evaluated = any(date(deadline.year, 1, 1) <= e <= today for e in item.evaluations)
        if item.delegated and in_force and not evaluated:
            out.append(ExpectedFinding("REG-DELEGATED-NOT-EVALUATED", "item", item.code, item.dept, AMBIENT,
                                       f"{deadline.year}年度未在模拟范围内，没有评估记录"))
    return out


def truth_document(sim: Simulation, as_of: datetime | None = None) -> dict:
    """The truth as a JSON-friendly document (written beside the stream)."""
    as_of = as_of or sim.end
    expected = expected_findings(sim, as_of)
    return {
        "config": sim.config.to_dict(),
        "county": sim.county.name,
        "as_of": as_of.isoformat(),
        "events": len(sim.events),
        "expected": [f.to_dict() for f in expected],
        "injected": [e.to_dict() for e in sim.expectations],
    }


def write_truth(path: str, sim: Simulation, as_of: datetime | None = None) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(truth_document(sim, as_of), fh, ensure_ascii=False, indent=2)


def keys(findings: Iterable[ExpectedFinding]) -> set[tuple[str, str, str, str]]:
    return {f.key for f in findings}

