"""Penalty rules: each fires when it should and stays silent when it should not.

Dates around National Day 2026 are deliberate: Oct 1–7 are holidays and Saturday Oct 10 is a
make-up working day, so a Monday–Friday count would give different answers.
"""
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.common.errors import DomainError
from services.common.findings import Finding
from services.common.workdays import WorkdayCalendar
from services.penalty.domain import case as pc
from services.penalty.domain import rules as r
from services.penalty.domain.case import Case, fold
from services.penalty.domain.rules import CaseFacts, ItemView, due_dates, evaluate, late_fee
from services.penalty.domain.settings import PenaltySettings
from tests.unit.test_penalty_case import CID, DEPT, PARTY, TEAM, Story, at, fact

S = PenaltySettings()
SEED_000 = PenaltySettings.from_mapping(major_fine_threshold=20_000, major_filing_days=60,
                                        major_kinds=["licence_revocation", "production_stopped"])
CAL = WorkdayCalendar()
PERSON = {"type": "person", "id": "370322199001011234", "name": "孙某"}
ITEM = ItemView("C1", legal_basis="《食品安全法》第一百二十四条", area="食品安全", tiers={"一般": (5000, 20000)})
GOOD_ITEMS = CaseFacts(items={"C1": ITEM})


def found(case: Case, as_of: str, facts: CaseFacts = CaseFacts(), settings: PenaltySettings = S) -> dict[str, Finding]:
    return {f.rule_id: f for f in evaluate(case, facts, settings, at(as_of), CAL)}


def filed(when="2026-03-02T10:00", act="2026-03-03T09:00", act_kind="evidence", officers=TEAM, **file_kw) -> Story:
    s = Story()
    s.do(pc.file_case, when, item_code="C1", party=PARTY, **file_kw)
    s.do(pc.record_act, act, act_kind=act_kind, officers=officers)
    return s


def decided(when="2026-04-15T10:00", *, notice="2026-03-20T10:00", hearing_right=False, story=None,
            **decide_kw) -> Story:
    s = story or filed()
    s.do(pc.notify, notice, hearing_right=hearing_right)
    kw = dict(decision_no="高市监罚〔2026〕42号", kinds=["fine"], fine_amount=1000, party=PARTY,
              act_code="FOOD-EXPIRED-SALE")
    s.do(pc.decide, when, **{**kw, **decide_kw})
    return s


def autumn(when="2026-09-29T10:00", notice="2026-09-21T10:00", **decide_kw) -> Story:
    """A decision on Tue 2026-09-29, just before the National Day holiday."""
    return decided(when, notice=notice, story=filed("2026-09-01T10:00", "2026-09-02T10:00"), **decide_kw)


# -- people --

def test_fewer_than_two_officers_is_a_finding_and_auxiliaries_do_not_count():
    alone = filed(officers=["37032200123"])
    alone.do(pc.record_act, "2026-03-04T09:00", act_kind="on_site", officers=["37032200123"], auxiliaries=["FZ001"])
    f = found(alone.case, "2026-03-05T00:00")[r.OFFICERS_MIN]
    assert f.severity == "serious" and f.evidence["min_officers"] == 2
    assert [a["officers"] for a in f.evidence["acts"]] == [1, 1]
    assert r.OFFICERS_MIN not in found(filed().case, "2026-03-05T00:00")


def test_officer_without_valid_credential_is_a_finding():
    facts = CaseFacts(credentials={"37032200123": (True, ()), "37032200456": (False, ["证件已过期"])}, items={"C1": ITEM})
    f = found(filed().case, "2026-03-05T00:00", facts)[r.OFFICER_CREDENTIAL]
    assert f.evidence["violations"] == [{"officer_id": "37032200456", "event_id": "e002",
                                         "at": "2026-03-03T09:00:00+08:00", "reasons": ["证件已过期"]}]
    # an officer the personnel projection does not know has no credential
    assert r.OFFICER_CREDENTIAL in found(filed().case, "2026-03-05T00:00", CaseFacts(credentials={}))


def test_valid_credentials_are_checked_against_the_items_area_at_the_act_time():
    calls = []

    def verdict(officer_id, area, when):
        calls.append((officer_id, area, when))
        return True, ()

    facts = CaseFacts(credentials=verdict, items={"C1": ITEM})
    assert r.OFFICER_CREDENTIAL not in found(filed().case, "2026-03-05T00:00", facts)
    assert calls == [(o, "食品安全", at("2026-03-03T09:00")) for o in TEAM]
    assert r.OFFICER_CREDENTIAL not in found(filed().case, "2026-03-05T00:00")  # no projection: unknown, silent


@pytest.mark.parametrize("items, reason", [
    ({}, "事项不在本部门权力清单中"),
    ({"C1": ItemView("C1", held=False, legal_basis="x")}, "本部门当时不具有该事项的执法权"),
    ({"C1": ItemView("C1", legal_basis="")}, "事项没有执法依据"),
    ({"C1": ItemView("C1", legal_basis="x", category="inspection")}, "事项类别为 inspection，不是行政处罚"),
])
def test_item_not_held_or_without_basis_is_a_finding(items, reason):
    f = found(filed().case, "2026-03-05T00:00", CaseFacts(items=items))[r.ITEM_NOT_HELD]
    assert f.severity == "critical" and f.evidence["items"][0]["reasons"] == [reason]


def test_item_is_judged_at_the_decision_time():
    def registry(dept, code, when):  # the item was removed from the department's list on Apr 1
        return ItemView(code, held=when < at("2026-04-01T00:00"), legal_basis="x")

    facts = CaseFacts(items=registry)
    assert r.ITEM_NOT_HELD not in found(filed().case, "2026-03-05T00:00", facts)
    assert r.ITEM_NOT_HELD in found(decided().case, "2026-04-16T00:00", facts)
    assert r.ITEM_NOT_HELD not in found(decided().case, "2026-04-16T00:00", GOOD_ITEMS)


# -- filing and the 90-day decision limit --

def test_filing_late_counts_working_days_over_mid_autumn_and_national_day():
    # discovered Thu 2026-09-10; 15 wd count make-up Sunday Sep 20 and skip Mid-Autumn (Sep 25–27)
    # and National Day (Oct 1–7) -> last day Thu Oct 8
    plugin = PenaltySettings.from_mapping(filing_wd=15, filing_extension_wd=15)
    on_time = filed("2026-10-08T17:00", "2026-10-08T18:00", discovered_at=at("2026-09-10T10:00"))
    late = filed("2026-10-09T09:00", "2026-10-09T10:00", discovered_at=at("2026-09-10T10:00"))
    assert r.FILING_LATE not in found(on_time.case, "2026-10-12T00:00", settings=plugin)
    assert found(late.case, "2026-10-12T00:00", settings=plugin)[r.FILING_LATE].evidence["last_day"] == "2026-10-08"
    extended = filed("2026-10-09T09:00", "2026-10-09T10:00", discovered_at=at("2026-09-10T10:00"),
                     filing_extension_approved=True)
    assert r.FILING_LATE not in found(extended.case, "2026-10-12T00:00", settings=plugin)
    assert r.FILING_LATE not in found(late.case, "2026-10-12T00:00")  # no department number: no rule


def test_undecided_case_becomes_overdue_after_90_days_with_no_new_fact():
    s = filed("2026-01-10T10:00", "2026-01-11T10:00")
    case = s.case
    assert due_dates(case, S, CAL)[r.DECISION_OVERDUE] == at("2026-04-11T00:00")
    assert r.DECISION_OVERDUE not in found(case, "2026-04-10T23:59")
    f = found(case, "2026-04-11T00:00")[r.DECISION_OVERDUE]
    assert f.evidence["last_day"] == "2026-04-10" and f.evidence["decided_at"] is None
    assert "仍未作出处理决定" in f.message


def test_decision_after_the_limit_is_a_finding_and_within_it_is_not():
    late = decided("2026-04-12T10:00", story=filed("2026-01-10T10:00", "2026-01-11T10:00"))
    in_time = decided("2026-04-10T16:00", story=filed("2026-01-10T10:00", "2026-01-11T10:00"))
    assert "才作出处理" in found(late.case, "2026-04-13T00:00")[r.DECISION_OVERDUE].message
    assert r.DECISION_OVERDUE not in found(in_time.case, "2026-12-31T00:00")


def test_only_approved_extension_counts_and_it_is_capped():
    s = filed("2026-01-10T10:00", "2026-01-11T10:00")
    s.do(pc.extend, "2026-04-01T10:00", days=60, approved=False)
    assert due_dates(s.case, S, CAL)[r.DECISION_OVERDUE] == at("2026-04-11T00:00")
    s.do(pc.extend, "2026-04-02T10:00", days=60, approved=True, approver="王建国")
    assert due_dates(s.case, S, CAL)[r.DECISION_OVERDUE] == at("2026-05-11T00:00")  # 90 + 30 (cap)
    f = found(s.case, "2026-05-11T00:00")[r.DECISION_OVERDUE]
    assert f.evidence["extension_days"] == 30


def test_suspension_testing_and_hearing_time_are_excluded_once():
    s = filed("2026-01-10T10:00", "2026-01-11T10:00")
    s.do(pc.suspend, "2026-02-01T09:00")
    s.do(pc.resume, "2026-02-11T09:00")             # Feb 1–10: 10 days
    s.do(pc.start_testing, "2026-02-11T10:00", kind="appraisal")
    s.do(pc.complete_testing, "2026-02-15T10:00")   # Feb 11–14: 4 more
    s.do(pc.notify, "2026-03-01T10:00", hearing_right=True)
    s.do(pc.request_hearing, "2026-03-02T10:00")
    s.do(pc.notify_hearing, "2026-03-03T10:00", hearing_at=at("2026-03-20T09:00"))
    s.do(pc.hold_hearing, "2026-03-20T09:00")        # Mar 2–19: 18 more
    assert r.excluded_days(s.case, S, at("2026-12-31T00:00")) == 32
    assert due_dates(s.case, S, CAL)[r.DECISION_OVERDUE] == at("2026-05-13T00:00")  # Apr 10 + 32 days
    assert r.DECISION_OVERDUE not in found(s.case, "2026-05-12T23:59")
    assert found(s.case, "2026-05-13T00:00")[r.DECISION_OVERDUE].evidence["excluded_days"] == 32


def test_open_suspension_stops_the_clock_and_has_no_due_date():
    s = filed("2026-01-10T10:00", "2026-01-11T10:00")
    s.do(pc.suspend, "2026-02-01T09:00")
    assert r.DECISION_OVERDUE not in due_dates(s.case, S, CAL)
    assert r.DECISION_OVERDUE not in found(s.case, "2026-12-31T00:00")
    # resumed Nov 2: Jan 11–31 used 21 days (Feb 1 to Nov 1 excluded), 69 left counting Nov 2 -> Jan 9
    s.do(pc.resume, "2026-11-02T09:00")
    assert due_dates(s.case, S, CAL)[r.DECISION_OVERDUE] == at("2027-01-10T00:00")


# -- hearing, review, discussion --

def test_hearing_right_not_notified_is_a_finding():
    assert r.HEARING_NOT_NOTIFIED in found(decided(fine_amount=10000, party=PERSON).case, "2026-04-16T00:00")
    assert r.HEARING_NOT_NOTIFIED in found(decided(kinds=["licence_revocation"], fine_amount=0).case, "2026-04-16T00:00")
    notified = decided(fine_amount=10000, party=PERSON, hearing_right=True).case
    assert r.HEARING_NOT_NOTIFIED not in found(notified, "2026-04-16T00:00")
    assert r.HEARING_NOT_NOTIFIED not in found(decided(fine_amount=50000).case, "2026-04-16T00:00")  # org: 100,000


def test_deciding_before_the_5_workday_request_window_closes_is_a_finding():
    # notice Tue Sep 29; 5 wd: Sep 30, Oct 8, 9, 10 (make-up Saturday), 12 -> window ends Mon Oct 12
    early = autumn("2026-10-12T16:00", notice="2026-09-29T10:00", hearing_right=True).case
    f = found(early, "2026-10-13T00:00")[r.HEARING_WINDOW]
    assert f.evidence["problems"][0]["request_last_day"] == "2026-10-12"
    s = filed("2026-09-01T10:00", "2026-09-02T10:00")
    s.do(pc.notify, "2026-09-29T10:00", hearing_right=True)
    s.do(pc.decide, "2026-10-13T09:00", decision_no="N1", kinds=["fine"], fine_amount=1000, party=PARTY, act_code="A")
    assert r.HEARING_WINDOW not in found(s.case, "2026-10-14T00:00")
    waived = autumn("2026-10-12T16:00", notice="2026-09-29T10:00", hearing_right=True, hearing_waived=True).case
    assert r.HEARING_WINDOW not in found(waived, "2026-10-13T00:00")


def hearing(notified: str | None, held: str) -> Case:
    s = filed("2026-09-01T10:00", "2026-09-02T10:00")
    s.do(pc.notify, "2026-09-03T10:00", hearing_right=True)
    s.do(pc.request_hearing, "2026-09-04T10:00")
    if notified:
        s.do(pc.notify_hearing, notified, hearing_at=at(held))
    s.do(pc.hold_hearing, held)
    return s.case


def test_hearing_must_be_notified_7_workdays_ahead():
    # notified Tue Sep 29: Sep 30, Oct 8, 9, 10, 12, 13, 14 -> the 7th working day is Oct 14
    assert r.HEARING_WINDOW not in found(hearing("2026-09-29T10:00", "2026-10-14T09:00"), "2026-10-15T00:00")
    f = found(hearing("2026-09-29T10:00", "2026-10-13T09:00"), "2026-10-15T00:00")[r.HEARING_WINDOW]
    assert f.evidence["problems"][0]["workdays"] == 6
    assert "未通知" in found(hearing(None, "2026-10-13T09:00"), "2026-10-15T00:00")[r.HEARING_WINDOW].message


def test_decision_after_a_hearing_needs_a_passed_legal_review():
    def after_hearing(review_passed=None):
        s = filed()
        s.do(pc.notify, "2026-03-20T10:00", hearing_right=True)
        s.do(pc.request_hearing, "2026-03-21T10:00")
        s.do(pc.notify_hearing, "2026-03-23T10:00", hearing_at=at("2026-04-08T09:00"))
        s.do(pc.hold_hearing, "2026-04-08T09:00")
        if review_passed is not None:
            s.do(pc.review, "2026-04-10T10:00", passed=review_passed)
        s.do(pc.decide, "2026-04-15T10:00", decision_no="N1", kinds=["fine"], fine_amount=1000, party=PARTY,
             act_code="A")
        return s.case

    f = found(after_hearing(), "2026-04-16T00:00")[r.LEGAL_REVIEW_MISSING]
    assert f.evidence["reasons"] == ["经过听证程序"] and f.message.startswith("未经法制审核")
    assert "未通过" in found(after_hearing(False), "2026-04-16T00:00")[r.LEGAL_REVIEW_MISSING].message
    assert r.LEGAL_REVIEW_MISSING not in found(after_hearing(True), "2026-04-16T00:00")
    assert r.LEGAL_REVIEW_MISSING not in found(decided().case, "2026-04-16T00:00")


def test_complex_or_major_case_needs_collective_discussion():
    complex_case = decided(story=filed(complex=True)).case
    assert found(complex_case, "2026-04-16T00:00")[r.COLLECTIVE_MISSING].evidence["reasons"] == ["案件情况复杂"]
    assert r.LEGAL_REVIEW_MISSING in found(complex_case, "2026-04-16T00:00")
    s = filed(complex=True)
    s.do(pc.notify, "2026-03-20T10:00", hearing_right=False)
    s.do(pc.review, "2026-04-01T10:00", passed=True)
    s.do(pc.discuss, "2026-04-02T10:00", participants=["王建国", "刘洋"])
    s.do(pc.decide, "2026-04-15T10:00", decision_no="N1", kinds=["warning"], party=PARTY, act_code="A")
    assert not {r.COLLECTIVE_MISSING, r.LEGAL_REVIEW_MISSING} & set(found(s.case, "2026-04-16T00:00"))
    major = decided(kinds=["fine"], fine_amount=200_000, hearing_right=True).case
    assert r.COLLECTIVE_MISSING in found(major, "2026-04-16T00:00")


# -- amounts --

@pytest.mark.parametrize("fine, tier, fires", [
    (10000, "一般", False), (5000, "一般", False), (50000, "一般", True), (1000, "一般", True),
    (10000, None, True), (10000, "极重", True),
])
def test_fine_outside_the_tier_range_is_a_finding(fine, tier, fires):
    case = decided(fine_amount=fine, tier=tier).case
    assert (r.FINE_OUT_OF_TIER in found(case, "2026-04-16T00:00", GOOD_ITEMS)) is fires


def on_spot(kinds=("fine",), fine=100, party=PERSON) -> Case:
    s = Story("370322-cgj-2026-0118", "370322-cgj")
    s.do(pc.decide_on_spot, "2026-05-06T16:20", decision_no="高城管当罚〔2026〕118号", kinds=list(kinds),
         fine_amount=fine, party=party, act_code="STREET-VENDING", item_code="C2", officers=TEAM)
    return s.case


@pytest.mark.parametrize("kinds, fine, party, fires", [
    (["fine"], 200, PERSON, False), (["fine"], 201, PERSON, True), (["fine"], 3000, PARTY, False),
    (["fine"], 3001, PARTY, True), (["warning"], 0, PERSON, False), (["confiscation"], 0, PERSON, True),
])
def test_simple_procedure_over_the_limit_is_a_finding(kinds, fine, party, fires):
    assert (r.SIMPLE_OVER_LIMIT in found(on_spot(kinds, fine, party), "2026-05-07T00:00")) is fires


# -- after the decision: service, publication, withdrawal, filing, payment --

def test_service_deadline_counts_7_workdays_across_national_day():
    case = autumn().case
    # Sep 30, Oct 8, 9, 10 (make-up), 12, 13, 14: Mon–Fri counting would have ended Oct 8
    assert due_dates(case, S, CAL)[r.SERVICE_LATE] == at("2026-10-15T00:00")
    assert r.SERVICE_LATE not in found(case, "2026-10-14T23:59")
    assert "逾期未送达" in found(case, "2026-10-15T00:00")[r.SERVICE_LATE].message
    s = autumn()
    s.do(pc.serve, "2026-10-12T10:00", method="post")
    assert r.SERVICE_LATE not in found(s.case, "2026-12-01T00:00")
    s = autumn()
    s.do(pc.serve, "2026-10-15T10:00", method="post")
    assert found(s.case, "2026-12-01T00:00")[r.SERVICE_LATE].evidence["done_at"] == "2026-10-15T10:00:00+08:00"


def test_publication_within_7_workdays_for_penalties_and_20_for_other_decisions():
    assert due_dates(autumn().case, S, CAL)[r.PUBLICATION_LATE] == at("2026-10-15T00:00")
    assert r.PUBLICATION_LATE in found(autumn().case, "2026-10-15T00:00")
    s = autumn()
    s.do(pc.publish, "2026-10-14T17:00")
    assert r.PUBLICATION_LATE not in found(s.case, "2026-12-01T00:00")
    # 不予处罚: 20 wd from Sep 29 -> Mon Nov 2
    assert due_dates(autumn(kinds=[], fine_amount=0).case, S, CAL)[r.PUBLICATION_LATE] == at("2026-11-03T00:00")
    exempt = autumn(publication_exempt=True).case
    assert r.PUBLICATION_LATE not in found(exempt, "2026-12-01T00:00")


def test_simple_procedure_publication_is_configurable():
    case = on_spot()
    assert r.PUBLICATION_LATE not in found(case, "2026-12-01T00:00")
    publish_all = PenaltySettings.from_mapping(publish_simple_procedure=True)
    assert r.PUBLICATION_LATE in found(case, "2026-12-01T00:00", settings=publish_all)


def revoked_after_publication(withdrawn: str | None) -> Case:
    s = autumn("2026-09-28T10:00")
    s.do(pc.publish, "2026-09-29T10:00")
    s.do(pc.revoke_decision, "2026-09-30T10:00", by="reconsideration")
    if withdrawn:
        s.do(pc.withdraw_publication, withdrawn)
    return s.case


def test_revoked_decision_must_be_taken_down_within_3_workdays():
    # revoked Wed Sep 30: Oct 8, 9 and make-up Saturday Oct 10 -> last day Oct 10
    assert due_dates(revoked_after_publication(None), S, CAL)[r.WITHDRAWAL_LATE] == at("2026-10-11T00:00")
    assert r.WITHDRAWAL_LATE not in found(revoked_after_publication(None), "2026-10-10T23:59")
    assert r.WITHDRAWAL_LATE in found(revoked_after_publication(None), "2026-10-11T00:00")
    assert r.WITHDRAWAL_LATE not in found(revoked_after_publication("2026-10-10T11:00"), "2026-10-20T00:00")
    assert r.WITHDRAWAL_LATE in found(revoked_after_publication("2026-10-12T09:00"), "2026-10-20T00:00")
    # a revoked decision carries no service, publication or payment obligation
    assert not {r.SERVICE_LATE, r.PUBLICATION_LATE} & set(found(revoked_after_publication(None), "2026-12-01T00:00"))


def test_major_penalty_filing_seed_001_200k_within_15_days():
    case = decided(fine_amount=200_000, hearing_right=True).case
    assert due_dates(case, S, CAL)[r.MAJOR_NOT_FILED] == at("2026-05-01T00:00")
    assert r.MAJOR_NOT_FILED not in found(case, "2026-04-30T23:59")
    f = found(case, "2026-05-01T00:00")[r.MAJOR_NOT_FILED]
    assert f.evidence["major_filing_days"] == 15 and f.evidence["reasons"] == ["罚款 200000 元 ≥ 200000 元"]
    s = decided(fine_amount=200_000, hearing_right=True)
    s.do(pc.file_major_penalty, "2026-04-30T16:00")
    assert r.MAJOR_NOT_FILED not in found(s.case, "2026-06-01T00:00")
    assert r.MAJOR_NOT_FILED not in found(decided(fine_amount=50_000).case, "2026-06-01T00:00")
    assert r.MAJOR_NOT_FILED in found(decided(kinds=["confiscation"], fine_amount=0).case, "2026-06-01T00:00")


def test_major_penalty_filing_seed_000_20k_within_60_days():
    case = decided(fine_amount=50_000).case
    assert due_dates(case, SEED_000, CAL)[r.MAJOR_NOT_FILED] == at("2026-06-15T00:00")
    assert r.MAJOR_NOT_FILED not in found(case, "2026-06-14T23:59", settings=SEED_000)
    assert found(case, "2026-06-15T00:00", settings=SEED_000)[r.MAJOR_NOT_FILED].evidence["major_fine_threshold"] == 20000
    confiscation_only = decided(kinds=["confiscation"], fine_amount=0).case
    assert r.MAJOR_NOT_FILED not in found(confiscation_only, "2026-12-01T00:00", settings=SEED_000)


def served(fine=10000, served_at=None, payments=()) -> Case:
    s = decided("2026-05-06T10:00", fine_amount=fine)
    s.do(pc.serve, "2026-05-08T15:00", method="direct", served_at=at(served_at) if served_at else None)
    for when, amount in payments:
        s.do(pc.record_payment, when, amount=amount)
    return s.case


def test_unpaid_fine_is_overdue_after_15_days_with_the_late_fee_in_evidence():
    case = served()
    assert due_dates(case, S, CAL)[r.PAYMENT_OVERDUE] == at("2026-05-24T00:00")
    assert r.PAYMENT_OVERDUE not in found(case, "2026-05-23T23:59")
    f = found(case, "2026-05-24T00:00")[r.PAYMENT_OVERDUE]
    assert (f.evidence["overdue_days"], f.evidence["late_fee"], f.evidence["late_fee_capped"]) == (1, 300, False)
    f = found(case, "2026-06-26T10:00")[r.PAYMENT_OVERDUE]      # 34 days: 102% -> capped at the fine
    assert (f.evidence["overdue_days"], f.evidence["late_fee"], f.evidence["late_fee_capped"]) == (34, 10000, True)


def test_late_fee_is_on_the_unpaid_part_and_payment_resolves_the_finding():
    partial = served(payments=[("2026-05-20T10:00", 6000)])
    f = found(partial, "2026-06-02T10:00")[r.PAYMENT_OVERDUE]  # 10 days on 4,000
    assert (f.evidence["outstanding"], f.evidence["late_fee"]) == (4000, 1200)
    assert r.PAYMENT_OVERDUE not in found(served(payments=[("2026-06-01T10:00", 10000)]), "2026-06-02T10:00")
    assert late_fee(1000, 0, S) == 0 and late_fee(1000, 40, S) == 1000 and late_fee(1000, 10, S) == 300


def test_payment_period_runs_from_when_service_took_effect():
    notice_service = served(served_at="2026-06-10T00:00")  # 公告送达 deemed served later
    assert due_dates(notice_service, S, CAL)[r.PAYMENT_OVERDUE] == at("2026-06-26T00:00")
    assert r.PAYMENT_OVERDUE not in found(notice_service, "2026-06-25T12:00")


# -- records, double fines, crimes --

@pytest.mark.parametrize("kind, av, fires", [
    ("seizure", False, True), ("forced_demolition", False, True), ("seizure", True, False), ("on_site", False, False),
])
def test_mandatory_audio_video_for_seizure_and_forced_demolition(kind, av, fires):
    s = filed()
    s.do(pc.record_act, "2026-03-04T10:00", act_kind=kind, officers=TEAM, av_recorded=av)
    assert (r.AV_MISSING in found(s.case, "2026-03-05T00:00")) is fires


OTHER = {"case_id": "370322-hbj-2026-0007", "dept": "370322-hbj", "decision_no": "高环罚〔2026〕7号",
         "party_id": PARTY["id"], "act_code": "FOOD-EXPIRED-SALE", "decided_at": "2026-02-10T10:00:00+08:00",
         "fine_amount": 20000, "kinds": ["fine"], "revoked": False}


@pytest.mark.parametrize("other, fires", [
    (OTHER, True),
    ({**OTHER, "act_code": "NOISE"}, False),
    ({**OTHER, "revoked": True}, False),
    ({**OTHER, "decided_at": "2025-03-01T10:00:00+08:00"}, False),     # outside the 365-day window
    ({**OTHER, "case_id": CID}, False),
    ({**OTHER, "fine_amount": 0, "kinds": ["warning"]}, False),
])
def test_same_act_fined_by_two_departments_is_a_finding(other, fires):
    facts = CaseFacts(other_decisions=[other])
    result = found(decided().case, "2026-04-16T00:00", facts)
    assert (r.DOUBLE_FINE in result) is fires
    if fires:
        assert result[r.DOUBLE_FINE].evidence["others"][0]["dept"] == "370322-hbj"


FAKE_GOODS = {"id": "CRIME-140", "item_codes": ["C1"], "measure": "sales_amount", "threshold": 50000,
              "law": "《刑法》第一百四十条", "name": "销售伪劣产品罪"}


def crime_case(sales: float, handover: bool = False, kinds=("fine",)) -> Case:
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C1", party=PARTY)
    s.do(pc.record_act, "2026-03-03T09:00", act_kind="evidence", officers=TEAM, measures={"sales_amount": sales})
    if handover:
        s.do(pc.transfer_to_police, "2026-03-10T09:00", police_unit="高青县公安局")
    return decided(story=s, kinds=list(kinds), fine_amount=1000 if "fine" in kinds else 0).case


@pytest.mark.parametrize("case, thresholds, fires", [
    (lambda: crime_case(80000), [FAKE_GOODS], True),
    (lambda: crime_case(80000), [{**FAKE_GOODS, "item_codes": []}], True),
    (lambda: crime_case(80000, handover=True), [FAKE_GOODS], False),
    (lambda: crime_case(30000), [FAKE_GOODS], False),
    (lambda: crime_case(80000), [{**FAKE_GOODS, "item_codes": ["C9"]}], False),
    (lambda: crime_case(80000, kinds=()), [FAKE_GOODS], False),
])
def test_penalty_instead_of_criminal_handover_is_a_finding(case, thresholds, fires):
    result = found(case(), "2026-04-16T00:00", CaseFacts(crime_thresholds=thresholds))
    assert (r.CRIME_NO_HANDOVER in result) is fires
    if fires:
        assert result[r.CRIME_NO_HANDOVER].evidence["thresholds"][0]["value"] == 80000


# -- the fact log itself --

def test_facts_held_past_the_grace_period_are_reported():
    case = fold([*filed().facts, fact("e9", "case.served", "2026-04-16T15:00", method="direct")], CID)
    assert due_dates(case, S, CAL)[r.FACT_HELD] == at("2026-04-19T15:00")
    assert r.FACT_HELD not in found(case, "2026-04-19T14:59")
    assert found(case, "2026-04-19T15:00")[r.FACT_HELD].evidence["facts"][0]["reason"] == "尚未作出处罚决定"
    # facts for a case not filed yet are reported under the sender's department
    orphan = fold([fact("e9", "case.served", "2026-04-16T15:00", method="direct")], CID)
    f = evaluate(orphan, CaseFacts(), S, at("2026-05-01T00:00"), CAL)
    assert [(x.rule_id, x.dept, x.subject_id) for x in f] == [(r.FACT_HELD, DEPT, CID)]


def test_anomalies_are_reported():
    s = decided()
    s.do(pc.serve, "2026-04-16T10:00", method="direct")
    s.do(pc.close, "2026-04-17T10:00", reason="executed")
    s.do(pc.archive, "2026-04-18T10:00")
    late = fact("e99", "case.decided", "2026-06-01T10:00", decision_no="N2", kinds=["warning"], party=PARTY,
                act_code="A1")
    f = found(fold([*s.facts, late], CID), "2026-06-02T00:00")[r.FACT_ANOMALY]
    assert f.evidence["facts"][0]["event_id"] == "e99"


# -- evaluate and due_dates as a whole --

def test_a_clean_case_has_no_findings():
    s = decided(fine_amount=6000, tier="一般")
    s.do(pc.serve, "2026-04-16T10:00", method="direct")
    s.do(pc.publish, "2026-04-17T10:00")
    s.do(pc.record_payment, "2026-04-20T10:00", amount=6000)
    s.do(pc.execute, "2026-04-21T10:00")
    s.do(pc.close, "2026-04-22T10:00", reason="executed")
    s.do(pc.archive, "2026-04-23T10:00")
    facts = CaseFacts(credentials=lambda *a: (True, ()), items={"C1": ITEM},
                      crime_thresholds=[FAKE_GOODS], other_decisions=[{**OTHER, "act_code": "OTHER"}])
    assert evaluate(s.case, facts, S, at("2027-01-01T00:00"), CAL) == []
    assert due_dates(s.case, S, CAL) == {}


def test_findings_name_the_case_and_department():
    f = found(filed("2026-01-10T10:00", "2026-01-11T10:00").case, "2026-06-01T00:00")[r.DECISION_OVERDUE]
    assert (f.subject_type, f.subject_id, f.dept, f.as_of) == ("case", CID, DEPT, at("2026-06-01T00:00"))
    assert f.key == f"{r.DECISION_OVERDUE}:case:{CID}"


@pytest.mark.parametrize("case", [
    lambda: filed().case,
    lambda: decided(fine_amount=200_000, hearing_right=True).case,
    lambda: served(),
    lambda: revoked_after_publication(None),
    lambda: fold([*filed().facts, fact("e9", "case.served", "2026-04-16T15:00", method="direct")], CID),
])
def test_every_due_date_is_exactly_when_its_rule_starts_firing(case):
    c = case()
    dues = due_dates(c, S, CAL)
    assert dues
    for rule_id, due in dues.items():
        before = evaluate(c, CaseFacts(), S, due - timedelta(microseconds=1), CAL)
        after = evaluate(c, CaseFacts(), S, due, CAL)
        assert rule_id not in {f.rule_id for f in before} and rule_id in {f.rule_id for f in after}, rule_id
    later = max(dues.values())
    assert due_dates(c, S, CAL, after=later) == {}


def test_extra_rules_run_with_or_without_the_calendar():
    seen = []

    def plain(case, facts, settings, as_of):
        seen.append("plain")
        return [Finding("PLUGIN-A", "info", case.dept, "case", case.case_id, as_of)]

    def wants_calendar(case, facts, settings, as_of, calendar):
        seen.append(type(calendar).__name__)
        return []

    result = evaluate(decided().case, CaseFacts(), S, at("2026-04-16T00:00"), CAL,
                      extra_rules=[("PLUGIN-A", plain), ("PLUGIN-B", wants_calendar)])
    assert "PLUGIN-A" in {f.rule_id for f in result} and seen == ["plain", "WorkdayCalendar"]


def test_evaluate_needs_an_aware_as_of():
    with pytest.raises(DomainError):
        evaluate(filed().case, CaseFacts(), S, datetime(2026, 4, 1), CAL)


def test_every_rule_has_a_severity_and_is_documented():
    text = (Path(__file__).parents[2] / "docs" / "rules-penalty.md").read_text(encoding="utf-8")
    for rule_id in r.RULE_IDS:
        assert r.SEVERITY[rule_id] in ("info", "warning", "serious", "critical")
        assert f"`{rule_id}`" in text, rule_id


def test_finding_payloads_are_json_serialisable():
    s = filed(officers=["37032200123"], complex=True)
    s.do(pc.record_act, "2026-03-04T10:00", act_kind="seizure", officers=["37032200123"],
         measures={"sales_amount": 80000})
    s = decided(story=s, fine_amount=250_000, tier="一般")
    facts = CaseFacts(credentials={}, items={"C1": ITEM}, crime_thresholds=[FAKE_GOODS], other_decisions=[OTHER])
    findings = evaluate(s.case, facts, S, at("2026-12-01T00:00"), CAL)
    assert len(findings) >= 10
    for f in findings:
        json.dumps(f.to_payload(), ensure_ascii=False)


def test_an_auxiliary_listed_among_the_officers_does_not_count_and_is_reported():
    # one officer and one auxiliary, both listed as officers of the act (issue 8 §4)
    case = filed(officers=["37032200123", "FZ001"]).case
    kinds = {"37032200123": "officer", "FZ001": "auxiliary"}
    verdicts = {"37032200123": (True, ()), "FZ001": (False, ("FZ001是辅助人员，不得独立执法，不计入执法人员",))}
    f = found(case, "2026-03-05T00:00", CaseFacts(credentials=verdicts, officer_kinds=kinds, items={"C1": ITEM}))
    assert r.OFFICERS_MIN in f and r.OFFICER_CREDENTIAL in f
    act = f[r.OFFICERS_MIN].evidence["acts"][0]
    assert (act["officers"], act["listed_as_officers_but_not"]) == (1, ["FZ001"])
    assert "辅助人员" in f[r.OFFICER_CREDENTIAL].evidence["violations"][0]["reasons"][0]
    # two real officers: no finding
    kinds["FZ001"] = "officer"
    assert r.OFFICERS_MIN not in found(case, "2026-03-05T00:00", CaseFacts(officer_kinds=kinds))


def test_on_the_spot_fine_carries_its_tier_and_without_one_must_fit_some_tier():
    tiers = ItemView("C1", legal_basis="《无证无照经营查处办法》第十三条", tiers={
        "从轻": (0, 50), "一般": (50, 150), "严重": (150, 200)})
    facts = CaseFacts(items={"C1": tiers})

    def spot(fine, tier=None):
        s = Story()
        s.do(pc.decide_on_spot, "2026-05-06T16:20", decision_no="高城管当罚〔2026〕118号", kinds=["fine"],
             fine_amount=fine, party=PERSON, act_code="STREET-VENDING", item_code="C1", officers=TEAM,
             dept=DEPT, tier=tier)
        return s.case
    assert r.FINE_OUT_OF_TIER not in found(spot(100, "一般"), "2026-05-07T00:00", facts)
    assert "超出“从轻”阶次幅度" in found(spot(100, "从轻"), "2026-05-07T00:00", facts)[r.FINE_OUT_OF_TIER].message
    # no tier given (the case): no finding when the fine fits a tier ...
    assert r.FINE_OUT_OF_TIER not in found(spot(100), "2026-05-07T00:00", facts)
    # ... and a finding that says so when it fits none
    f = found(spot(180.5, None), "2026-05-07T00:00", CaseFacts(items={"C1": ItemView("C1", legal_basis="x", tiers={
        "从轻": (0, 50), "一般": (50, 150)})}))[r.FINE_OUT_OF_TIER]
    assert "当场处罚未标明裁量阶次" in f.message and f.evidence["tiers"] == {"一般": [50, 150], "从轻": [0, 50]}


def test_fine_paid_late_keeps_the_late_fee_at_the_payment_date_on_the_case_and_in_the_resolution():
    case = served(payments=[("2026-06-02T10:00", 10000)])     # last day 05-23, paid on day 10 after it
    late = r.late_payment(case.decision, S)
    assert (late["overdue_days"], late["late_fee"], late["late_fee_paid"], late["paid_at"][:10]) == (
        10, 3000, 0, "2026-06-02")
    assert r.PAYMENT_OVERDUE not in found(case, "2026-06-03T10:00")
    [(key, settled)] = r.resolutions(case, S).items()
    assert key == f"{r.PAYMENT_OVERDUE}:case:{case.case_id}"
    assert settled["evidence"]["late_fee_unpaid"] == 3000 and "应加处罚款 3000 元" in settled["message"]
    # the same numbers from the settings: 5% a day in a (hypothetical) jurisdiction
    assert r.late_payment(case.decision, PenaltySettings(late_fee_rate_per_day=0.05))["late_fee"] == 5000
    # paid in time: nothing to settle
    assert r.late_payment(served(payments=[("2026-05-20T10:00", 10000)]).decision, S) is None
    assert r.resolutions(served(payments=[("2026-05-20T10:00", 10000)]), S) == {}


def test_the_case_snapshot_keeps_the_late_payment():
    from services.penalty.projections import case_snapshot
    case = served(payments=[("2026-06-02T10:00", 10000)])
    assert case_snapshot(case, [], S)["late_payment"]["late_fee"] == 3000


def test_crime_thresholds_apply_by_the_legal_basis_the_item_cites_not_item_codes():
    # a county's own item code, citing the law and article the plugin's threshold names
    threshold = {"id": "CRIME-140-FOOD", "bases": [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条"}],
                 "measure": "sales_amount", "threshold": 50000, "law": "《刑法》第一百四十条", "name": "生产、销售伪劣产品罪"}
    own_item = ItemView("C1", legal_basis="x", bases=(("中华人民共和国食品安全法", "第一百二十四条第一款"),))
    other_item = ItemView("C1", legal_basis="x", bases=(("《中华人民共和国食品安全法》", "第一百二十四条之一"),))
    case = crime_case(80000)
    hit = found(case, "2026-04-16T00:00", CaseFacts(items={"C1": own_item}, crime_thresholds=[threshold]))
    assert hit[r.CRIME_NO_HANDOVER].evidence["thresholds"][0]["basis"] == ["中华人民共和国食品安全法第一百二十四条第一款"]
    assert r.CRIME_NO_HANDOVER not in found(case, "2026-04-16T00:00",
                                            CaseFacts(items={"C1": other_item}, crime_thresholds=[threshold]))


def test_department_plugins_key_their_thresholds_by_legal_basis():
    from plugins import mee, samr
    for th in [*samr.zhifa_crime_thresholds(dept="511322-scjg"), *mee.zhifa_crime_thresholds(dept="511322-sthj")]:
        assert th["bases"] and all(b["law"] and b["article"] for b in th["bases"]) and not th.get("item_codes")


def test_a_replayed_fact_waits_its_grace_period_from_its_arrival_not_from_when_it_happened():
    # history replayed in 2026-11: a service fact of April arrives before its decision; it is not
    # reported as held at once (the decision may be in the same batch), only after the grace period
    import dataclasses
    served = dataclasses.replace(fact("e9", "case.served", "2026-04-16T15:00", method="direct"),
                                 received_at=at("2026-11-20T10:00"))
    case = fold([*filed().facts, served], CID)
    assert r.FACT_HELD not in found(case, "2026-11-20T10:00:01")
    assert due_dates(case, S, CAL)[r.FACT_HELD] == at("2026-11-23T10:00")
    assert r.FACT_HELD in found(case, "2026-11-23T10:00")


def test_facts_that_arrive_together_are_judged_together():
    # a department replays a 2026 case in November: filing, act and decision arrive within seconds,
    # possibly the filing first. No "no decision" finding may be seen in between.
    import dataclasses
    arrival = at("2026-11-20T10:00")
    early = [dataclasses.replace(f, received_at=arrival) for f in filed().facts]
    case = fold(early, CID)
    assert r.DECISION_OVERDUE not in found(case, "2026-11-20T10:00:03")        # still arriving
    assert due_dates(case, S, CAL, after=at("2026-11-20T10:00:03"))["settled"] == at("2026-11-20T10:00:10")
    # nothing else arrived: once settled the overdue decision is found (by the sweep at that instant)
    assert "仍未作出处理决定" in found(case, "2026-11-20T10:00:10")[r.DECISION_OVERDUE].message
    # the decision arrived in the same batch: judged with it, the breach is the late decision itself
    s = decided(story=filed())
    together = fold([dataclasses.replace(f, received_at=arrival) for f in s.facts], CID)
    assert r.DECISION_OVERDUE not in found(together, "2026-11-20T10:00:03")
    # a certain breach is found at once, arriving or not
    alone = fold([dataclasses.replace(f, received_at=arrival) for f in filed(officers=["37032200123"]).facts], CID)
    assert r.OFFICERS_MIN in found(alone, "2026-11-20T10:00:01")


def test_the_settle_instant_is_a_moment_to_judge_again_only_while_a_waiting_obligation_is_open():
    """Judging a case again when its arrivals settle finds something new only through the rules that wait
    for them (WAITING_RULES). A case with every such obligation met is not brought back then: in the
    bench 79% of the cases were, and the deadline sweep re-judged each of them one by one after their
    facts (2026-12-03)."""
    import dataclasses
    arrival = at("2026-11-20T10:00")
    after = at("2026-11-20T10:00:03")

    def arrived(story):
        return fold([dataclasses.replace(f, received_at=arrival) for f in story.facts], CID)

    # filed, not decided: the decision deadline waits — settle instant kept (even with its clock stopped)
    assert "settled" in due_dates(arrived(filed()), S, CAL, after=after, others_wait=False)
    # decided and not served, published, paid: those deadlines wait — kept
    open_case = arrived(decided(story=filed()))
    assert set(due_dates(open_case, S, CAL, others_wait=False)) & r.WAITING_RULES
    assert "settled" in due_dates(open_case, S, CAL, after=after, others_wait=False)
    # a case closed without a decision: nothing waits — no settle instant, and judging it then finds the same
    closed = fold([dataclasses.replace(f, received_at=arrival)
                   for f in [*filed().facts, fact("e9", "case.closed", "2026-04-20T10:00")]], CID)
    assert not set(due_dates(closed, S, CAL, others_wait=False)) & (r.WAITING_RULES | {"settled"})
    assert sorted(found(closed, "2026-11-20T10:00:03")) == sorted(found(closed, "2026-11-20T10:00:10"))
    # a department's rule that may wait (no `waits_for_arrivals = False`): always kept
    assert "settled" in due_dates(closed, S, CAL, after=after)
    assert "settled" in due_dates(closed, S, CAL, after=after, others_wait=True)


def test_a_departments_own_rules_say_whether_they_wait_for_arriving_facts():
    from plugins.host import build_plugin_manager
    from services.penalty.service import PenaltyAdapter

    host = build_plugin_manager()
    # the built-in rules and the bundled department plugins' (which declare they do not wait)
    for dept in ("511322-scjg", "511322-cgj", "511322-wjj", "511322-jtj", "511322-sthj"):
        assert not PenaltyAdapter._others_wait(host.rules("penalty", dept)), dept

    def plugin_rule(case, facts, settings, as_of):
        return []
    assert PenaltyAdapter._others_wait([("X-1", plugin_rule)])  # undeclared: assumed to wait
    plugin_rule.waits_for_arrivals = False
    assert not PenaltyAdapter._others_wait([("X-1", plugin_rule)])

    class Hostile:
        def __bool__(self):
            raise RuntimeError("a plugin's attribute whose truth raises")
    for value in ("false", 0, None, Hostile()):  # only False opts out; nothing a plugin sets there raises
        plugin_rule.waits_for_arrivals = value
        assert PenaltyAdapter._others_wait([("X-1", plugin_rule)])


def test_the_credential_finding_states_the_real_reason_with_dates():
    from services.penalty import projections as p
    officer = {"officer_id": "37032200456", "name": "王芳", "dept": DEPT, "agency_id": "A1", "kind": "officer",
               "status": "active", "active": [{"from": None, "to": None}], "version": 3, "as_of": "2026-06-01T00:00:00+08:00",
               "credentials": [{"number": "鲁C001", "areas": ["food"], "regions": [], "issuer_level": "provincial",
                                "filing_required": False, "filed_at": None, "valid_from": "2024-01-10",
                                "valid_to": "2029-01-09", "issued_at": "2024-01-10T00:00:00+08:00", "ended_as": None,
                                "status": "valid",  # restored since: today's status says nothing about the act
                                "suspensions": [{"from": "2026-03-01T00:00:00+08:00", "to": "2026-04-01T00:00:00+08:00",
                                                 "reason": "涉嫌违纪接受调查"}], "usable": []}]}
    facts = CaseFacts(credentials=lambda oid, area, when: p.officer_verdict(officer if oid == "37032200456" else None,
                                                                            "", when) if oid == "37032200456" else (True, ()),
                      items={"C1": ITEM})
    case = filed(act="2026-03-03T09:00").case
    f = found(case, "2026-03-05T00:00", facts)[r.OFFICER_CREDENTIAL]
    assert "2026-03-03 处于暂扣期间（自 2026-03-01 起暂扣至 2026-04-01（涉嫌违纪接受调查））" in f.message
    assert "现状" not in f.message
