"""Inspection domain: folds of plans, pools, draws, enterprises and units; every rule fires when it
should and stays silent otherwise. Pure: no I/O."""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.common.errors import InvalidFactError, NotOwnerError
from services.common.facts import Fact
from services.common.qualification import holder_from_payload
from services.inspection import domain as d
from services.inspection import draw as dr
from services.inspection.domain import InspectionSettings, ItemCheck, Lookups

CST = timezone(timedelta(hours=8))
SCJG, WSJK, SFJ = "370322-scjg", "370322-wsjk", "370322-sfj"
ENT = "91370322MA3C4XYZ1K"
S = InspectionSettings()
_ids = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text if "T" in text else f"{text}T09:00").replace(tzinfo=CST)


def fact(type_, when, dept=SCJG, **payload) -> Fact:
    return Fact(f"e{next(_ids)}", type_, at(when), dept, payload)


def officer(officer_id, kind="officer", areas=("market",), valid_to="2030-01-01", revoked=None):
    cred = {"number": f"C-{officer_id}", "areas": list(areas), "regions": [], "issuer_level": "provincial",
            "filing_required": False, "filed_at": None, "valid_from": "2020-01-01", "valid_to": valid_to,
            "issued_at": "2020-01-01T00:00:00+08:00", "ended_as": "revoked" if revoked else None,
            "ended_at": f"{revoked}T00:00:00+08:00" if revoked else None, "status": "valid", "usable": []}
    return holder_from_payload({"officer_id": officer_id, "dept": SCJG, "name": f"人员{officer_id}", "kind": kind,
                                "statuses": [{"since": "2019-01-01T00:00:00+08:00", "status": "active"}],
                                "credentials": [cred]})


OFFICERS = {o.officer_id: o for o in (officer("O1"), officer("O2"), officer("AUX", kind="auxiliary"),
                                      officer("OLD", revoked="2026-01-01"), officer("ENV", areas=("environment",)))}


def item(dept, code, at_):
    if code == "J1":
        return ItemCheck(held=dept in (SCJG, WSJK), reason="" if dept in (SCJG, WSJK) else "该事项不属于本部门",
                         category="inspection", area="market")
    if code == "P1":
        return ItemCheck(held=True, reason="", category="penalty", area="market")
    return None


LOOKUPS = Lookups(officer=OFFICERS.get, item=item)


def registered(inspection_id="I1", when="2026-04-08T09:30", dept=SCJG, officers=("O1", "O2"), items=("J1",),
               kind="routine", registered="2026-04-08T12:00", approval="2026-04-07T16:00", **kw) -> Fact:
    payload = {"inspection_id": inspection_id, "target": {"id": ENT, "name": "惠民超市"}, "kind": kind,
               "officers": list(officers), "item_codes": list(items), "started_at": at(when).isoformat(),
               "ended_at": (at(when) + timedelta(hours=1)).isoformat(), **kw}
    if approval:
        payload["approval"] = {"approved_by": "王建国", "approved_at": at(approval).isoformat()}
    return fact(d.INSPECTION_REGISTERED, registered, dept, **payload)


def rules(found):
    return sorted(f.rule_id for f in found)


def evaluate(*facts, as_of="2026-04-20", settings=S):
    ent = d.enterprise_from_facts(ENT, list(facts))
    return d.evaluate_enterprise(ent, LOOKUPS, settings, at(as_of))


# ---- inspection records -------------------------------------------------------------------------------

def test_a_lawful_inspection_raises_nothing():
    assert evaluate(registered()) == []


def test_unqualified_inspectors_and_too_few_officers():
    found = evaluate(registered(officers=("O1", "AUX")))
    assert rules(found) == [d.INSPECTOR_UNQUALIFIED, d.OFFICERS_MIN]
    assert "辅助人员" in found[0].message
    assert rules(evaluate(registered(officers=("O1", "OLD")))) == [d.INSPECTOR_UNQUALIFIED, d.OFFICERS_MIN]
    assert rules(evaluate(registered(officers=("O1", "ENV")))) == [d.INSPECTOR_UNQUALIFIED, d.OFFICERS_MIN]
    assert rules(evaluate(registered(officers=("O1", "NOBODY")))) == [d.INSPECTOR_UNQUALIFIED, d.OFFICERS_MIN]
    third = evaluate(registered(third_parties=["某检测公司"]))
    assert rules(third) == [d.INSPECTOR_UNQUALIFIED] and "第三方" in third[0].message


def test_revoked_credential_counts_only_after_revocation():
    assert evaluate(registered(officers=("O1", "OLD"), when="2025-12-30T09:00", registered="2025-12-30T12:00",
                               approval="2025-12-29T09:00"), as_of="2026-01-05") == []


def test_min_officers_is_configurable():
    assert evaluate(registered(officers=("O1",)), settings=InspectionSettings.from_mapping(min_officers=1)) == []


def test_items_not_published_not_held_or_not_inspection_items():
    assert rules(evaluate(registered(items=("NOPE",)))) == [d.ITEM_NOT_HELD]
    assert rules(evaluate(registered(items=("P1",)))) == [d.ITEM_NOT_HELD]
    assert evaluate(registered(items=("P1",)), settings=InspectionSettings.from_mapping(item_categories=[])) == []
    assert rules(evaluate(registered(dept="370322-cgj"))) == [d.ITEM_NOT_HELD]


def test_approval_in_advance_or_within_hours_for_emergencies():
    assert rules(evaluate(registered(approval=None))) == [d.NOT_APPROVED]
    assert rules(evaluate(registered(approval="2026-04-08T15:00"))) == [d.NOT_APPROVED]
    # emergency: approval may follow within 24 h; missing is only a finding once the 24 h are over
    assert evaluate(registered(emergency=True, approval="2026-04-09T08:00")) == []
    assert evaluate(registered(emergency=True, approval=None), as_of="2026-04-08T20:00") == []
    assert rules(evaluate(registered(emergency=True, approval=None), as_of="2026-04-09T10:00")) == [d.NOT_APPROVED]
    late = [registered(emergency=True, approval=None),
            fact(d.INSPECTION_APPROVED, "2026-04-12", inspection_id="I1", target_id=ENT, approved_by="王建国",
                 approved_at=at("2026-04-12").isoformat())]
    assert rules(evaluate(*late)) == [d.NOT_APPROVED]
    ent = d.enterprise_from_facts(ENT, [registered(emergency=True, approval=None)])
    assert d.enterprise_due_at(ent, S, at("2026-04-08T11:00")) == at("2026-04-09T09:30")


def test_late_registration_needs_a_reason():
    assert rules(evaluate(registered(registered="2026-04-15"))) == [d.REGISTRATION_LATE]
    assert evaluate(registered(registered="2026-04-15", late_reason="现场处置突发事件，事后补登")) == []
    assert evaluate(registered(registered="2026-04-11")) == []  # within 3 days


def test_frequency_cap_per_department_kind_and_year():
    three = [registered(f"I{n}", when=f"2026-0{n + 3}-10T09:00", registered=f"2026-0{n + 3}-10T12:00",
                        approval=f"2026-0{n + 3}-09T09:00") for n in range(1, 4)]
    found = evaluate(*three, as_of="2026-08-01")
    assert rules(found) == [d.FREQUENCY_CAP]
    assert found[0].evidence["count"] == 3 and found[0].subject_id == f"{ENT}:{SCJG}:2026:routine"
    # special inspections ordered from above are excepted; other kinds uncapped by default
    excepted = three[:2] + [registered("I9", kind="special", ordered_from_above=True, when="2026-06-10T09:00",
                                       registered="2026-06-10T12:00", approval="2026-06-09T09:00")]
    assert evaluate(*excepted, as_of="2026-08-01") == []
    assert evaluate(*three, as_of="2026-08-01", settings=InspectionSettings.from_mapping(yearly_caps={"routine": 3})) == []


def test_repeat_inspection_by_another_department_within_the_window():
    first = registered("I1")
    second = registered("I2", dept=WSJK, when="2026-04-20T09:00", registered="2026-04-20T12:00",
                        approval="2026-04-19T09:00")
    found = evaluate(first, second, as_of="2026-04-25")
    assert rules(found) == [d.REPEAT_INSPECTION] and found[0].dept == WSJK and found[0].subject_id == "I2"
    far = registered("I2", dept=WSJK, when="2026-05-20T09:00", registered="2026-05-20T12:00", approval="2026-05-19T09:00")
    assert evaluate(first, far, as_of="2026-06-01") == []
    joint = registered("I1", joint_depts=[WSJK])  # a joint partner inspecting again is not a repeat
    assert evaluate(joint, second, as_of="2026-04-25") == []
    case = registered("I2", dept=WSJK, kind="case", when="2026-04-20T09:00", registered="2026-04-20T12:00",
                      approval="2026-04-19T09:00")
    assert evaluate(first, case, as_of="2026-04-25") == []


def test_facts_about_unknown_inspections_are_held_and_other_departments_refused():
    ent = d.enterprise_from_facts(ENT, [fact(d.INSPECTION_CONCLUDED, "2026-04-09", inspection_id="I1", target_id=ENT,
                                             outcome="no_problem")])
    assert ent.held and not ent.inspections
    with pytest.raises(NotOwnerError):
        d.enterprise_from_facts(ENT, [registered(), fact(d.INSPECTION_CONCLUDED, "2026-04-09", WSJK,
                                                         inspection_id="I1", target_id=ENT, outcome="no_problem")])
    with pytest.raises(InvalidFactError):
        d.enterprise_from_facts(ENT, [registered(ended_at="2026-04-01T09:00:00+08:00")])


def test_outcome_links_the_penalty_case():
    ent = d.enterprise_from_facts(ENT, [registered(), fact(d.INSPECTION_CONCLUDED, "2026-04-09", inspection_id="I1",
                                                           target_id=ENT, outcome="case_filed", case_id="C-42")])
    assert ent.inspections["I1"].outcome == "case_filed" and ent.inspections["I1"].case_id == "C-42"


# ---- plans -------------------------------------------------------------------------------------------------

def plan_fact(kind="quarterly", plan_id="P1", dept=SCJG, when="2026-03-01", period=("2026-04-01", "2026-06-30"),
              targets=(ENT,), **kw):
    return fact(d.PLAN_REGISTERED, when, dept, plan_id=plan_id, kind=kind, title="计划", item_codes=["J1"],
                period_from=period[0], period_to=period[1], targets=[{"id": t, "name": "惠民超市"} for t in targets], **kw)


def plan_findings(*facts, as_of):
    plan = d.plan_from_facts("P1", list(facts))
    return d.evaluate_plan(plan, S, at(as_of))


def test_routine_plan_filed_seven_working_days_before_it_starts():
    # 2026-04-01 (Wed): 7 working days before is 2026-03-23 (Mon)
    plan = d.plan_from_facts("P1", [plan_fact()])
    assert d.plan_filing_deadline(plan, S).isoformat() == "2026-03-23"
    assert plan_findings(plan_fact(), as_of="2026-03-23T23:00") == []
    assert rules(plan_findings(plan_fact(), as_of="2026-03-24")) == [d.PLAN_NOT_FILED]
    filed = fact(d.PLAN_FILED, "2026-03-20", SFJ, plan_id="P1", filed_on="2026-03-20")  # the bureau may report it
    assert plan_findings(plan_fact(), filed, as_of="2026-05-01") == []
    late = fact(d.PLAN_FILED, "2026-03-27", plan_id="P1", filed_on="2026-03-27")
    assert rules(plan_findings(plan_fact(), late, as_of="2026-05-01")) == [d.PLAN_NOT_FILED]
    assert d.plan_due_at(plan, S, at("2026-03-10")) == at("2026-03-24T00:00")
    # ad hoc plans have no filing lead
    assert plan_findings(plan_fact(kind="ad_hoc"), as_of="2026-05-01") == []


def test_annual_plan_published_by_end_of_march():
    annual = plan_fact(kind="annual", when="2026-01-05", period=("2026-01-15", "2026-12-31"))
    filed = fact(d.PLAN_FILED, "2026-01-05", plan_id="P1", filed_on="2026-01-05")
    assert plan_findings(annual, filed, as_of="2026-03-31T20:00") == []
    assert rules(plan_findings(annual, filed, as_of="2026-04-01")) == [d.ANNUAL_NOT_PUBLISHED]
    published = fact(d.PLAN_PUBLISHED, "2026-03-10", plan_id="P1", published_on="2026-03-10")
    assert plan_findings(annual, filed, published, as_of="2026-04-01") == []


def test_special_plan_needs_approval_before_it_starts():
    special = plan_fact(kind="special")
    assert plan_findings(special, as_of="2026-03-30") == []
    assert rules(plan_findings(special, as_of="2026-04-01")) == [d.SPECIAL_NOT_APPROVED]
    approved = fact(d.PLAN_APPROVED, "2026-03-25", plan_id="P1", approved_on="2026-03-25", approver="王建国")
    assert plan_findings(special, approved, as_of="2026-04-02") == []
    cancelled = fact(d.PLAN_CANCELLED, "2026-03-25", plan_id="P1", cancelled_on="2026-03-25", reason="合并")
    assert plan_findings(special, cancelled, as_of="2026-04-02") == []


def test_plan_owned_by_its_department():
    with pytest.raises(NotOwnerError):
        d.plan_from_facts("P1", [plan_fact(), fact(d.PLAN_PUBLISHED, "2026-03-10", WSJK, plan_id="P1",
                                                   published_on="2026-03-10")])


def planned(plan, when="2026-03-01"):
    return [Fact(f"e{next(_ids)}", d.INSPECTION_PLANNED, at(when), plan.dept, p) for p in d.planned_payloads(plan)]


def test_overlapping_plans_of_two_departments_are_suggested_as_one_joint_inspection_before_they_happen():
    a = d.plan_from_facts("P1", [plan_fact()])
    b = d.plan_from_facts("P2", [plan_fact(plan_id="P2", dept=WSJK, period=("2026-05-01", "2026-05-31"))])
    found = evaluate(*planned(a), *planned(b), as_of="2026-03-15")
    assert rules(found) == [d.JOINT_SUGGESTED] and found[0].dept == WSJK and found[0].evidence["with_plans"] == ["P1"]
    joint = d.plan_from_facts("P2", [plan_fact(plan_id="P2", dept=WSJK, period=("2026-05-01", "2026-05-31"),
                                               joint_depts=[SCJG])])
    assert evaluate(*planned(a), *planned(joint), as_of="2026-03-15") == []
    far = d.plan_from_facts("P2", [plan_fact(plan_id="P2", dept=WSJK, period=("2026-09-01", "2026-09-30"))])
    assert evaluate(*planned(a), *planned(far), as_of="2026-03-15") == []
    assert evaluate(*planned(a), *planned(b), as_of="2026-06-01") == []  # both over: the repeat rule takes over


# ---- draws -------------------------------------------------------------------------------------------------

SEED = "ab" * 32


def announcement():
    return {"draw_id": "D1", "dept": SCJG, "plan_id": "P1",
            "targets": [{"id": f"9137032200000000{n:02d}", "name": f"企业{n}", "grade": "AB"[n % 2]} for n in range(10)],
            "inspectors": [{"id": f"O{n}", "name": None} for n in range(4)],
            "params": {"ratios": {"*": 0.5}, "inspectors_per_target": 2}, "conflicts": [],
            "seed": {"method": "commit_reveal", "commitment": dr.seed_commitment(SEED)}}


def draw_facts(seed=SEED, result=None, attempts=1):
    a = announcement()
    out = []
    for n in range(1, attempts + 1):
        out.append(fact(d.DRAW_ANNOUNCED, f"2026-03-0{n}T09:00", draw_id="D1", plan_id="P1", announcement=a,
                        announcement_digest=dr.digest(a), reason="名录有误，重新公告" if n > 1 else None))
        res = result or dr.compute_result(a, SEED)
        out.append(fact(d.DRAW_PERFORMED, f"2026-03-0{n}T10:00", draw_id="D1", attempt=n, seed=seed, result=res,
                        result_digest=dr.digest(res)))
    return out


def test_a_performed_draw_must_be_published_within_20_working_days():
    draw = d.draw_from_facts("D1", draw_facts())
    deadline = d.draw_publication_deadline(draw.current, S)
    assert deadline.isoformat() == "2026-03-27"  # performed Sunday 03-01: 20 working days from Monday
    assert d.evaluate_draw(draw, S, at("2026-03-27T20:00")) == []
    assert rules(d.evaluate_draw(draw, S, at("2026-03-28"))) == [d.DRAW_NOT_PUBLISHED]
    published = d.draw_from_facts("D1", draw_facts() + [fact(d.DRAW_PUBLISHED, "2026-03-10", draw_id="D1", attempt=1,
                                                             published_on="2026-03-10")])
    assert d.evaluate_draw(published, S, at("2026-06-01")) == []
    assert dr.verify(published.record(published.current)).ok


def test_a_reported_draw_that_does_not_verify_is_critical():
    fake = {"targets": [], "assignments": [], "shortages": []}
    draw = d.draw_from_facts("D1", draw_facts(result=fake))
    found = d.evaluate_draw(draw, S, at("2026-03-05"))
    assert rules(found) == [d.DRAW_UNVERIFIABLE] and found[0].severity == "critical"
    assert rules(d.evaluate_draw(d.draw_from_facts("D1", draw_facts(seed="guess")), S, at("2026-03-05"))) == [
        d.DRAW_UNVERIFIABLE]


def test_every_attempt_is_recorded_and_a_second_one_is_a_finding():
    draw = d.draw_from_facts("D1", draw_facts(attempts=2))
    assert [a.number for a in draw.attempts] == [1, 2]
    found = d.evaluate_draw(draw, S, at("2026-03-05"))
    assert rules(found) == [d.DRAW_REPEATED]
    record = draw.record(draw.current)
    assert record["attempt"] == 2 and len(record["previous_attempts"]) == 1 and dr.verify(record).ok
    drawn = d.drawn_payloads(draw)
    assert len(drawn) == 6 and all(len(p["officers"]) == 2 for p in drawn)


# ---- units -------------------------------------------------------------------------------------------------

def unit_fact(type_, on, **kw):
    return Fact(f"e{next(_ids)}", type_, at(on), SCJG, {"dept": SCJG, "on": on, **kw})


def test_unit_without_records_for_one_then_two_years():
    facts = [unit_fact(d.UNIT_TRACKED, "2024-01-10"), unit_fact(d.UNIT_REGISTERED, "2024-03-01"),
             unit_fact(d.UNIT_ANNUAL, "2024-01-10", year=2024, plan_id="A24"),
             unit_fact(d.UNIT_ANNUAL, "2025-01-10", year=2025, plan_id="A25"),
             unit_fact(d.UNIT_ANNUAL, "2026-01-10", year=2026, plan_id="A26")]
    unit = d.unit_from_facts(SCJG, facts)
    assert d.evaluate_unit(unit, S, at("2025-02-28")) == []
    one = d.evaluate_unit(unit, S, at("2025-03-01"))
    assert rules(one) == [d.UNIT_NO_RECORDS_1Y] and one[0].evidence["consequence"] == "no_new_credentials"
    two = d.evaluate_unit(unit, S, at("2026-03-01"))
    assert rules(two) == [d.UNIT_NO_RECORDS_2Y] and two[0].evidence["consequence"] == "recall_credentials"
    assert d.unit_due_at(unit, S, at("2025-02-01")) == at("2025-03-01T00:00")


def test_unit_annual_plan_missing_and_special_cap():
    unit = d.unit_from_facts(SCJG, [unit_fact(d.UNIT_TRACKED, "2026-01-10"), unit_fact(d.UNIT_REGISTERED, "2026-03-30")]
                             + [unit_fact(d.UNIT_SPECIAL, "2026-02-01", year=2026, plan_id=f"S{n}",
                                          ordered_from_above=n == 0) for n in range(4)])
    found = d.evaluate_unit(unit, S, at("2026-04-01"))
    assert rules(found) == [d.ANNUAL_PLAN_MISSING, d.SPECIAL_CAP]
    assert found[1].evidence["plans"] == ["S1", "S2", "S3"]
    assert rules(d.evaluate_unit(unit, S, at("2026-03-31T20:00"))) == [d.SPECIAL_CAP]


def test_settings_refuse_impossible_numbers():
    with pytest.raises(ValueError):
        InspectionSettings.from_mapping(unit_idle_recall_days=100)
    with pytest.raises(ValueError):
        InspectionSettings.from_mapping(yearly_caps={"visits": 1})
    with pytest.raises(ValueError):
        InspectionSettings.from_mapping(no_such_number=1)


@hsettings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_enterprise_fold_is_independent_of_arrival_order(rnd: random.Random):
    facts = [registered("I1"), registered("I2", dept=WSJK, when="2026-04-20T09:00", registered="2026-04-20T12:00",
                                          approval=None),
             fact(d.INSPECTION_CONCLUDED, "2026-04-21", WSJK, inspection_id="I2", target_id=ENT, outcome="case_filed",
                  case_id="C1"),
             fact(d.INSPECTION_APPROVED, "2026-04-19", WSJK, inspection_id="I2", target_id=ENT, approved_by="张",
                  approved_at=at("2026-04-19").isoformat())]
    shuffled = list(facts)
    rnd.shuffle(shuffled)
    a, b = d.enterprise_from_facts(ENT, facts), d.enterprise_from_facts(ENT, shuffled)
    assert a.to_dict() == b.to_dict()
    assert rules(d.evaluate_enterprise(a, LOOKUPS, S, at("2026-05-01"))) == [d.REPEAT_INSPECTION]


# ---- rules as plugins -------------------------------------------------------------------------------

def test_rule_table_covers_every_rule_and_matches_the_per_aggregate_evaluation():
    ids = [rule for rule, _ in d.RULE_FUNCTIONS]
    assert len(ids) == len(set(ids)) and set(ids) == set(d.RULES)
    ent = d.enterprise_from_facts(ENT, [registered(officers=("O1", "AUX")), registered(
        "I2", dept=WSJK, when="2026-04-20T09:00", registered="2026-04-20T12:00", approval=None)])
    as_of = at("2026-04-25")
    assert d.evaluate(ent, as_of, S, LOOKUPS) == sorted(d.evaluate_enterprise(ent, LOOKUPS, S, as_of), key=lambda f: f.key)
    plan = d.plan_from_facts("P1", [plan_fact(kind="special")])
    assert rules(d.evaluate(plan, at("2026-04-02"), S)) == [d.SPECIAL_NOT_APPROVED]  # special: no filing lead


def test_a_department_plugin_switches_off_or_replaces_a_rule_for_its_own_findings_only():
    ent = d.enterprise_from_facts(ENT, [registered(approval=None), registered(
        "I2", dept=WSJK, when="2026-04-20T09:00", registered="2026-04-20T12:00", approval=None)])

    def lenient(agg, as_of, settings_for, lookups):  # a stand-in for a county's own approval rule
        return []

    def rules_for(dept):
        table = dict(d.RULE_FUNCTIONS)
        if dept == WSJK:
            table[d.NOT_APPROVED] = lenient
            table.pop(d.REPEAT_INSPECTION)
        return list(table.items())

    found = d.evaluate(ent, at("2026-04-25"), S, LOOKUPS, rules_for)
    assert [(f.rule_id, f.dept) for f in found] == [(d.NOT_APPROVED, SCJG)]


def test_a_joint_inspection_rests_on_each_partners_items_and_officers():
    def joint_item(dept, code, at_):
        if code == "H1":  # a health item held by WSJK only, area health
            return ItemCheck(held=dept == WSJK, reason="" if dept == WSJK else "该事项不属于本部门",
                             category="inspection", area="health")
        return item(dept, code, at_)

    health = officer("H", areas=("health",))
    look = Lookups(officer={**OFFICERS, "H": health}.get, item=joint_item)
    joint = registered(officers=("O1", "H"), items=("J1", "H1"), joint_depts=[WSJK])
    ent = d.enterprise_from_facts(ENT, [joint])
    assert d.evaluate_enterprise(ent, look, S, at("2026-04-20")) == []
    alone = registered(officers=("O1", "H"), items=("J1", "H1"))  # the same without WSJK in it
    found = d.evaluate_enterprise(d.enterprise_from_facts(ENT, [alone]), look, S, at("2026-04-20"))
    assert rules(found) == [d.ITEM_NOT_HELD] and "H1" in found[0].evidence["items"]


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SCJG, WSJK, "370322-cgj"]), st.integers(0, 364),
                          st.sampled_from(["routine", "special", "case"]), st.booleans()), max_size=12))
def test_frequency_and_repeat_findings_follow_their_definitions(visits):
    start = at("2026-01-01T09:00")
    facts = []
    for n, (dept, day, kind, from_above) in enumerate(visits):
        when = start + timedelta(days=day)
        facts.append(registered(f"I{n}", dept=dept, kind=kind, ordered_from_above=from_above,
                                when=when.isoformat()[:16], registered=(when + timedelta(hours=2)).isoformat()[:16],
                                approval=(when - timedelta(hours=2)).isoformat()[:16]))
    ent = d.enterprise_from_facts(ENT, facts)
    found = d.evaluate_enterprise(ent, LOOKUPS, S, at("2027-01-05"))
    counts: dict[tuple[str, str], int] = {}
    for dept, _, kind, from_above in visits:
        if not from_above:
            counts[(dept, kind)] = counts.get((dept, kind), 0) + 1
    over = {f"{ENT}:{dept}:2026:{kind}" for (dept, kind), n in counts.items() if n > dict(S.yearly_caps).get(kind, n)}
    assert {f.subject_id for f in found if f.rule_id == d.FREQUENCY_CAP} == over
    ordered = sorted(ent.inspections.values(), key=lambda i: (i.started_at, i.inspection_id))
    repeats = {later.inspection_id for j, later in enumerate(ordered) if later.kind in S.repeat_counted_kinds
               and any(e.kind in S.repeat_counted_kinds and e.dept != later.dept
                       and (later.day - e.day).days <= S.repeat_window_days for e in ordered[:j])}
    assert {f.subject_id for f in found if f.rule_id == d.REPEAT_INSPECTION} == repeats


def test_an_outcome_without_a_registration_means_not_inspected():
    concluded = fact(d.INSPECTION_CONCLUDED, "2026-04-09", inspection_id="I1", target_id=ENT, outcome="ordered_to_correct")
    ent = d.enterprise_from_facts(ENT, [concluded])
    assert evaluate(concluded, as_of="2026-04-11") == []
    found = evaluate(concluded, as_of="2026-04-12T10:00")
    assert rules(found) == [d.NOT_REGISTERED] and found[0].subject_id == "I1" and "未登记视为未检查" in found[0].message
    assert d.enterprise_due_at(ent, S, at("2026-04-10")) == at("2026-04-12T09:00")
    # registered late (with a reason): the outcome now belongs to a registered inspection
    late = registered(registered="2026-04-13", late_reason="系统故障，事后补登")
    assert evaluate(concluded, late, as_of="2026-04-20") == []


def test_a_department_known_only_by_a_held_fact_gets_its_rules_and_its_findings():
    concluded = fact(d.INSPECTION_CONCLUDED, "2026-04-09", WSJK, inspection_id="I9", target_id=ENT, outcome="no_problem")
    ent = d.enterprise_from_facts(ENT, [concluded])
    assert ent.depts == [WSJK]
    found = d.evaluate(ent, at("2026-04-20"), S, LOOKUPS, rules_for=lambda dept: d.RULE_FUNCTIONS)
    assert [(f.rule_id, f.dept) for f in found] == [(d.NOT_REGISTERED, WSJK)]


def arrived(f: Fact, when: str) -> Fact:
    from dataclasses import replace

    return replace(f, received_at=at(when))


def test_absences_wait_until_the_facts_that_arrived_together_settle():
    # a year-old plan replayed today: registered and published arrive seconds apart on different queues
    annual = arrived(plan_fact(kind="annual", when="2025-01-05", period=("2025-01-20", "2025-12-31")), "2026-05-01T10:00")
    filed = arrived(fact(d.PLAN_FILED, "2025-01-06", plan_id="P1", filed_on="2025-01-06"), "2026-05-01T10:00")
    plan = d.plan_from_facts("P1", [annual, filed])
    now = at("2026-05-01T10:00") + timedelta(seconds=3)
    assert d.evaluate_plan(plan, S, now) == []                        # the publication may be in the batch
    assert d.plan_due_at(plan, S, now) == at("2026-05-01T10:00") + timedelta(seconds=10)
    assert rules(d.evaluate_plan(plan, S, now + timedelta(seconds=8))) == [d.ANNUAL_NOT_PUBLISHED]
    # a breach certain from the facts themselves is found at once
    late = arrived(fact(d.PLAN_PUBLISHED, "2025-04-20", plan_id="P1", published_on="2025-04-20"), "2026-05-01T10:00")
    assert rules(d.evaluate_plan(d.plan_from_facts("P1", [annual, filed, late]), S, now)) == [d.ANNUAL_NOT_PUBLISHED]


def test_an_outcome_waits_for_its_registration_from_when_it_arrived():
    concluded = arrived(fact(d.INSPECTION_CONCLUDED, "2025-04-09", inspection_id="I1", target_id=ENT,
                             outcome="no_problem"), "2026-05-01T10:00")
    ent = d.enterprise_from_facts(ENT, [concluded])
    assert d.evaluate_enterprise(ent, LOOKUPS, S, at("2026-05-02")) == []
    assert rules(d.evaluate_enterprise(ent, LOOKUPS, S, at("2026-05-04T10:00"))) == [d.NOT_REGISTERED]
