"""Coordination domain: monthly report data, case-file review draw and scoring, annual evaluation (pure)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.common.errors import DomainError, IllegalTransitionError, NotOwnerError
from services.common.facts import Fact
from services.coordination.domain import evaluation as ev
from services.coordination.domain import reports as rp
from services.coordination.domain import review as rv
from services.coordination.domain.settings import DEFAULT_SETTINGS, CoordinationSettings

SFJ, SCJG, STHJ = "511322-sfj", "511322-scjg", "511322-sthj"
AT = datetime.fromisoformat("2025-01-10T10:00:00+08:00")


def entry(key, dept, raised, resolved=None, log=(), severity="serious", source="penalty", open_=None, escalated=False):
    return {"finding_key": key, "rule_id": key.split(":")[0], "dept": dept, "source": source, "severity": severity,
            "raised_at": raised, "resolved_at": resolved, "log": list(log), "escalated": escalated,
            "open": (resolved is None) if open_ is None else open_}


ENTRIES = [
    entry("PEN-OFFICERS-MIN:case:1", SCJG, "2024-05-03T09:00:00+08:00", "2024-05-20T09:00:00+08:00"),
    entry("PEN-OFFICERS-MIN:case:2", SCJG, "2024-05-31T23:30:00+08:00", escalated=True),
    entry("PER-AUX-CREDENTIAL:credential:3", SCJG, "2024-04-02T09:00:00+08:00", source="personnel",
          log=[{"action": "dismissed", "at": "2024-05-05T10:00:00+08:00"}], open_=False),
    entry("PEN-FILING-LATE:case:4", STHJ, "2024-05-10T09:00:00+08:00"),
    entry("PEN-FILING-LATE:case:5", SCJG, "2024-04-10T09:00:00+08:00"),
]


def test_monthly_report_counts_findings_cases_complaints_and_documents_of_one_department():
    cases = [{"opened_on": "2024-05-06", "closed_on": None, "tracks": [
        {"dept": SCJG, "documents": [{"issued_on": "2024-05-06"}], "late": [{"what": "reply", "due": "2024-05-17",
                                                                            "on": "2024-05-20"}]}]}]
    complaints = [{"dept": SCJG, "routed_on": "2024-05-07", "answered_on": "2024-06-02", "late": [
        {"what": "answer", "due": "2024-05-28", "on": "2024-06-02"}], "feedback_on": None, "satisfied": None}]
    documents = [{"dept": SCJG, "issued_on": "2024-04-01", "filed_on": "2024-05-06", "filed_late": True}]
    report = rp.monthly_report("2024-05", SCJG, entries=ENTRIES, cases=cases, complaints=complaints,
                               documents=documents)
    f = report["findings"]
    assert (f["raised"], f["resolved"], f["open_at_end"], f["escalated_open"]) == (2, 1, 2, 1)
    assert f["by_source"] == {"penalty": 2} and f["top_rules"] == [("PEN-OFFICERS-MIN", 2)]
    assert report["supervision"] == {"opened": 1, "closed": 0, "documents": 1, "replies_late": 1,
                                     "rectifications_late": 0}
    assert report["complaints"]["routed"] == 1 and report["complaints"]["answered"] == 0
    assert report["normative_documents"] == {"issued": 0, "filed": 1, "filed_late": 1}
    assert report["trend"]["previous"] == "2024-04"
    assert report["trend"]["items"]["findings_raised"] == {"now": 2, "before": 2, "change": 0}
    assert report["penalty_cases"] == {"unavailable": True}     # the penalty service did not answer
    assert report["inspections"] == {"unavailable": True} and report["handovers"] == {"unavailable": True}
    assert report["trend"]["items"]["inspections"] == {"now": None, "before": None, "change": None}
    summaries = [{"dept": SCJG, "filed_at": "2024-05-02T09:00:00+08:00", "decided_at": "2024-05-20T09:00:00+08:00",
                  "fine_amount": 5000, "closed_at": None},
                 {"dept": SCJG, "filed_at": "2024-04-02T09:00:00+08:00", "decided_at": "2024-05-31T16:00:00+08:00",
                  "fine_amount": 2000.5, "closed_at": "2024-06-01T09:00:00+08:00"},
                 {"dept": STHJ, "filed_at": "2024-05-03T09:00:00+08:00"}]
    with_cases = rp.monthly_report("2024-05", SCJG, entries=ENTRIES, cases=cases, complaints=complaints,
                                   documents=documents, penalty_cases=summaries)
    assert with_cases["penalty_cases"] == {"filed": 1, "decided": 2, "closed": 0, "fines": 7000.5}
    county = rp.county_report(rp.quarter_months("2024-Q2"), entries=ENTRIES, cases=cases, complaints=complaints,
                              documents=documents, penalty_cases=summaries)
    assert county["county"]["penalty_cases"] == {"filed": 3, "decided": 2, "closed": 1, "fines": 7000.5}
    assert county["county"]["findings"]["raised"] == 5 and [d["dept"] for d in county["departments"]] == [SCJG, STHJ]
    with pytest.raises(DomainError):
        rp.month_bounds("2024-13")
    with pytest.raises(DomainError):
        rp.month_bounds("9999-12")      # no overflow past the last year a report may cover
    with pytest.raises(DomainError):
        rp.quarter_months("2024-Q5")


# the inspection service's `month_figures` and the handover service's `month_counters` (per dept and '*')
INSPECTIONS = {
    SCJG: {"2024-03": {"inspections": 9, "joint": 9}, "2024-04": {"inspections": 4, "joint": 1, "drawn": 2},
           "2024-05": {"inspections": 5, "joint": 2, "drawn": 5, "remote": 1}},
    STHJ: {"2024-05": {"inspections": 2, "joint": 2}},
    "*": {"2024-04": {"inspections": 4, "joint": 1}, "2024-05": {"inspections": 6, "joint": 2}},
}
HANDOVERS = {
    SCJG: {"2024-04": {"raised": 1}, "2024-05": {"raised": 2, "transferred": 1, "received": 1}},
    "*": {"2024-05": {"raised": 2, "transferred": 1, "received": 1}, "2024-06": {"transferred": 1}},
}


def test_reports_count_inspections_and_handovers_by_month_with_the_trend_against_the_period_before():
    report = rp.monthly_report("2024-05", SCJG, entries=ENTRIES, cases=[], complaints=[], documents=[],
                               inspections=INSPECTIONS, handovers=HANDOVERS)
    assert report["inspections"] == {"inspections": 5, "joint": 2, "drawn": 5, "remote": 1, "joint_rate": 0.4}
    assert report["handovers"] == {"by_state": {"raised": 2, "received": 1, "transferred": 1}, "raised": 2,
                                   "transferred": 1}
    items = report["trend"]["items"]
    assert items["inspections"] == {"now": 5, "before": 4, "change": 1}
    assert items["joint_rate"] == {"now": 0.4, "before": 0.25, "change": 0.15}
    assert items["handovers_transferred"] == {"now": 1, "before": 0, "change": 1}
    # a department without inspections that month has no rate (not 0 %)
    quiet = rp.monthly_report("2024-06", STHJ, entries=[], cases=[], complaints=[], documents=[],
                              inspections=INSPECTIONS, handovers=HANDOVERS)
    assert quiet["inspections"]["joint_rate"] is None and quiet["trend"]["items"]["joint_rate"]["change"] is None
    assert quiet["trend"]["items"]["inspections"] == {"now": 0, "before": 2, "change": -2}

    q2 = rp.county_report(rp.quarter_months("2024-Q2"), entries=ENTRIES, cases=[], complaints=[], documents=[],
                          inspections=INSPECTIONS, handovers=HANDOVERS)
    assert q2["county"]["inspections"]["inspections"] == 10 and q2["county"]["inspections"]["joint_rate"] == 0.3
    assert q2["county"]["handovers"]["transferred"] == 2
    assert q2["county"]["trend"]["previous_months"] == ["2024-01", "2024-02", "2024-03"]
    rows = {r["dept"]: r for r in q2["departments"]}
    assert set(rows) == {SCJG, STHJ}
    assert rows[SCJG]["inspections"]["inspections"] == 9 and rows[SCJG]["trend"]["items"]["inspections"] == {
        "now": 9, "before": 9, "change": 0}
    assert rows[STHJ]["handovers"] == {"by_state": {}, "raised": 0, "transferred": 0}


def test_previous_periods():
    assert rp.previous_months(["2024-01"]) == ["2023-12"]
    assert rp.previous_months(rp.quarter_months("2024-Q1")) == ["2023-10", "2023-11", "2023-12"]


# ---- case-file review -------------------------------------------------------------------------------------------

POP = {SCJG: [f"C{i:03d}" for i in range(40)], STHJ: [f"E{i:03d}" for i in range(3)]}


@hsettings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(1, 10), st.randoms(use_true_random=False))
def test_the_draw_is_reproducible_whatever_the_population_order(seed, per_dept, rnd):
    shuffled = {d: rnd.sample(ids, len(ids)) for d, ids in reversed(list(POP.items()))}
    a, b = rv.draw(POP, per_dept, seed), rv.draw(shuffled, per_dept, seed)
    assert a == b and len(a[SCJG]) == per_dept and len(a[STHJ]) == min(3, per_dept)
    assert rv.population_digest(POP) == rv.population_digest(shuffled)


def test_different_seeds_draw_different_files():
    assert rv.draw(POP, 5, "2024-一") != rv.draw(POP, 5, "2024-二")


def test_prefill_and_scoring_with_vetoes():
    checklist = DEFAULT_SETTINGS.review_checklist
    assert rv.prefill(checklist, ["PEN-OFFICERS-MIN", "PEN-FILING-LATE", "PER-X"]) == {
        "two_officers": ["PEN-OFFICERS-MIN"], "time_limits": ["PEN-FILING-LATE"]}
    assert rv.score(checklist, []) == {"points": 100, "vetoes": [], "grade": "excellent"}
    assert rv.score(checklist, ["time_limits", "discretion"]) == {"points": 90, "vetoes": [], "grade": "excellent"}
    assert rv.score(checklist, ["two_officers"])["grade"] == "fail"       # a veto item fails the file at 90 points
    with pytest.raises(DomainError):
        rv.score(checklist, ["no_such_item"])
    with pytest.raises(ValueError):
        CoordinationSettings.from_mapping(review_checklist=[{"item": "a", "points": 50}])


def test_a_plan_records_its_draw_and_scores_per_department():
    facts = []
    drawn = rv.record_draw(None, "PC-2024", year=2024, per_dept=2, seed="seed-1", population=POP,
                           finding_rules={"C001": ["PEN-OFFICERS-MIN"]}, at=AT, dept=SFJ, event_id="d")
    facts.append(drawn)
    plan = rv.plan_from_facts(facts)
    assert plan.population_size == 43 and sorted(plan.files) == sorted(rv.draw(POP, 2, "seed-1")[SCJG]
                                                                       + rv.draw(POP, 2, "seed-1")[STHJ])
    with pytest.raises(IllegalTransitionError):
        rv.record_draw(plan, "PC-2024", year=2024, per_dept=2, seed="x", population=POP, finding_rules={}, at=AT,
                       dept=SFJ, event_id="d2")
    with pytest.raises(NotOwnerError):
        rv.record_draw(None, "PC-X", year=2024, per_dept=2, seed="x", population=POP, finding_rules={}, at=AT,
                       dept=SCJG, event_id="d3")
    first = sorted(f for f in plan.files if f.startswith("C"))[0]
    facts.append(rv.record_score(plan, "PC-2024", case_id=first, failed=["evidence"], at=AT, dept=SFJ, event_id="s"))
    other = sorted(f for f in plan.files if f.startswith("E"))[0]
    facts.append(rv.record_score(plan, "PC-2024", case_id=other, failed=["record"], at=AT, dept=SFJ, event_id="s2"))
    results = rv.results_by_dept(rv.plan_from_facts([Fact(f.event_id, f.type, f.occurred_at, f.dept, f.payload, seq=i)
                                                     for i, f in enumerate(facts)]))
    assert results[SCJG] == {"sampled": 2, "scored": 1, "average": 0.0, "failed": 1, "vetoed": 1}
    assert results[STHJ]["average"] == 95.0


# ---- evaluation ----------------------------------------------------------------------------------------------------

def test_evaluation_scores_with_evidence_and_ranking():
    indicators = DEFAULT_SETTINGS.evaluation_indicators
    cases = [{"tracks": [{"dept": SCJG, "documents": [
        {"reply_due": "2024-05-17", "rectification_required": True, "rectification_due": "2024-06-17"}],
        "late": [{"what": "reply", "due": "2024-05-17", "on": "2024-05-20"}]}]}]
    entries = [entry("PEN-OFFICERS-MIN:case:2", SCJG, "2024-05-31T23:30:00+08:00")]
    computed = {d: ev.metrics_for(d, 2024, date(2024, 12, 31), cases=cases, complaints=[], documents=[], entries=entries,
                                  review_results={SCJG: {"average": 80.0, "sampled": 5, "scored": 5, "vetoed": 0}},
                                  indicator={"per_item": 10}) for d in (SCJG, STHJ)}
    assert computed[SCJG]["supervision_on_time"] == (50.0, {"on_time": 1, "total": 2})
    assert computed[SCJG]["findings_open"][0] == 90.0 and computed[STHJ]["case_review"] == (None, {"note": "未评查"})
    rows = ev.score_departments(indicators, computed, {(SCJG, "training"): {"score": 80, "evidence": "培训记录齐全"}})
    scjg = next(r for r in rows if r["dept"] == SCJG)
    # 25×0.5 + 20×0.9 + 15 + 10 + 20×0.8 + 10×0.8
    assert scjg["total"] == 12.5 + 18 + 15 + 10 + 16 + 8 and scjg["complete"] is True
    sthj = next(r for r in rows if r["dept"] == STHJ)
    assert sthj["complete"] is False and sthj["total"] == 25 + 20 + 15 + 10
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["dept"] == SCJG
    with pytest.raises(ValueError):
        CoordinationSettings.from_mapping(evaluation_indicators=[{"indicator": "a", "weight": 50, "source": "entered"}])


def test_only_entered_indicators_take_a_reviewers_score():
    indicators = DEFAULT_SETTINGS.evaluation_indicators
    fact = ev.enter_score(None, "2024", target=SCJG, indicator="training", value=85, evidence="培训台账", at=AT,
                          dept=SFJ, event_id="e", indicators=indicators)
    assert ev.year_from_facts([fact]).entered[(SCJG, "training")]["score"] == 85
    with pytest.raises(IllegalTransitionError):
        ev.enter_score(None, "2024", target=SCJG, indicator="supervision", value=85, evidence="x", at=AT, dept=SFJ,
                       event_id="e", indicators=indicators)
    with pytest.raises(DomainError):
        ev.enter_score(None, "2024", target=SCJG, indicator="training", value=101, evidence="x", at=AT, dept=SFJ,
                       event_id="e", indicators=indicators)
    with pytest.raises(NotOwnerError):
        ev.enter_score(None, "2024", target=SCJG, indicator="training", value=85, evidence="x", at=AT, dept=SCJG,
                       event_id="e", indicators=indicators)


def test_ties_share_a_rank():
    rows = ev.score_departments([{"indicator": "t", "label": "t", "weight": 100, "source": "entered"}],
                                {SCJG: {}, STHJ: {}, "511322-zjj": {}},
                                {(SCJG, "t"): {"score": 80, "evidence": "x"}, (STHJ, "t"): {"score": 80, "evidence": "y"}})
    assert [(r["dept"], r["rank"]) for r in rows] == [(SCJG, 1), (STHJ, 1), ("511322-zjj", 3)]


# ---- monthly report submissions ------------------------------------------------------------------------------------

from services.coordination.domain import reporting as rpt  # noqa: E402


def test_missing_monthly_reports_after_the_10th_are_findings_of_each_department():
    opened = rpt.open_month(None, "2024-05", roster=[SCJG, STHJ, SFJ], at=AT, dept=SFJ, event_id="o")
    assert opened.payload["roster"] == [SCJG, STHJ]            # the bureau does not report to itself
    early = rpt.submit(rpt.month_from_facts([opened]), "2024-05", at=datetime.fromisoformat("2024-06-07T09:00:00+08:00"),
                       dept=SCJG, event_id="s")
    m = rpt.month_from_facts([opened, early])
    assert rpt.due("2024-05") == datetime(2024, 6, 10).date()
    assert rpt.evaluate(m, datetime.fromisoformat("2024-06-10T23:00:00+08:00")) == []
    [f] = rpt.evaluate(m, datetime.fromisoformat("2024-06-11T08:00:00+08:00"))
    assert (f.rule_id, f.dept, f.subject_id) == (rpt.RULE_MISSING, STHJ, "2024-05:511322-sthj")
    assert rpt.next_due(m, datetime.fromisoformat("2024-06-01T08:00:00+08:00")).isoformat().startswith("2024-06-11")
    with pytest.raises(IllegalTransitionError):
        rpt.submit(m, "2024-05", at=AT, dept=SCJG, event_id="again")
    with pytest.raises(NotOwnerError):
        rpt.open_month(None, "2024-06", roster=[SCJG], at=AT, dept=SCJG, event_id="x")
    late = rpt.month_from_facts([opened, early, rpt.submit(m, "2024-05", at=AT, dept=STHJ, event_id="l")])
    assert rpt.evaluate(late, AT) == [] and rpt.snapshot(late, AT)["late"] == [STHJ]
    with pytest.raises(ValueError):
        CoordinationSettings.from_mapping(monthly_report_day=31)
