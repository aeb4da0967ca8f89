"""Handover domain (行刑衔接, 国务院令第310号): parties, deadlines, fold, every rule."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.common.chinatime import CST, local_date
from services.common.errors import IllegalTransitionError, InvalidFactError, NotOwnerError
from services.common.facts import Fact
from services.common.workdays import DEFAULT_CALENDAR
from services.handover import domain as d

DEPT, POLICE, POLICE2, JCY = "511322-scjg", "511322-ga", "511323-ga", "511322-jcy"
HID = "511322-scjg-YS-2026-001"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=CST)  # a Monday, ordinary working week


def at(days=0, hours=0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


class Log:
    """Builds the facts of one handover in order."""

    def __init__(self, hid=HID):
        self.hid, self.facts = hid, []

    def add(self, type_, when, dept=DEPT, **payload):
        fact = Fact(f"e{len(self.facts)}", f"handover.{type_}", when, dept, {"handover_id": self.hid, **payload},
                    seq=len(self.facts))
        self.facts.append(fact)
        return fact

    def fold(self, settings=d.DEFAULT_SETTINGS):
        return d.fold(self.facts, self.hid, settings)


def happy(log=None) -> Log:
    """Every step on time: raised, approved next day, transferred in 2 hours with a copy, received,
    opened in 2 days, exhibits in 1 day."""
    log = log or Log()
    log.add("suspicion_raised", at(), case_id="511322-scjg-2025-0042", suspected_crime="涉嫌销售伪劣产品罪",
            officers=["51132200123", "51132200456"], report_ref="南部市监移报〔2025〕1号")
    log.add("head_decided", at(1), approved=True, head="王建国")
    log.add("transferred", at(1, 2), police_dept=POLICE, police_unit="南部县公安局经侦大队",
            documents=["transfer_letter", "investigation_report", "exhibit_list"], copy_to=JCY)
    log.add("received", at(1, 3), dept=POLICE, receipt_no="HZ-001")
    log.add("police_decided", at(3), dept=POLICE, opened=True, notice_no="南公立字〔2025〕7号")
    log.add("exhibits_handed_over", at(4))
    return log


def rule_ids(findings):
    return sorted(f.rule_id for f in findings)


# ---- deadlines ------------------------------------------------------------------------------------

def test_hours_deadline_is_exact_hours():
    assert d.hours_deadline(at(0, 0), 24) == at(1, 0)
    with pytest.raises(Exception):
        d.hours_deadline(datetime(2025, 3, 3, 9), 24)  # naive: refused


def test_days_deadline_excludes_the_first_day_and_ends_at_midnight():
    # raised Monday 09:00 -> 3 days are Tue, Wed, Thu; the period ends at Friday 00:00
    assert d.days_deadline(at(), 3) == datetime(2025, 3, 7, 0, 0, tzinfo=CST)
    # late on the day counts the same
    assert d.days_deadline(datetime(2025, 3, 3, 23, 59, tzinfo=CST), 3) == datetime(2025, 3, 7, tzinfo=CST)


def test_days_deadline_rolls_over_national_day_unless_configured_off():
    start = datetime(2025, 9, 29, 10, 0, tzinfo=CST)  # +3 = Oct 2, inside the Oct 1-8 holiday
    assert d.days_deadline(start, 3) == datetime(2025, 10, 10, tzinfo=CST)  # Oct 9 is the first workday
    assert d.days_deadline(start, 3, roll_over_holidays=False) == datetime(2025, 10, 3, tzinfo=CST)


def test_days_deadline_rolls_over_a_weekend():
    friday = datetime(2025, 3, 7, 10, tzinfo=CST)  # +1 = Saturday -> Monday
    assert d.days_deadline(friday, 1) == datetime(2025, 3, 11, tzinfo=CST)


@hsettings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)), st.integers(0, 30))
def test_days_deadline_properties(naive, n):
    start = naive.replace(tzinfo=CST)
    due = d.days_deadline(start, n)
    last = local_date(due - timedelta(microseconds=1))
    assert due > start
    assert last >= local_date(start) + timedelta(days=n)  # never shorter than the law's N days
    assert DEFAULT_CALENDAR.is_workday(last)               # the last day is a working day
    assert d.days_deadline(start, n, roll_over_holidays=False) <= due


def test_workdays_deadline():
    assert d.workdays_deadline(at(), 15) == datetime(2025, 3, 25, tzinfo=CST)  # 3 weeks of Mon-Fri


# ---- parties ---------------------------------------------------------------------------------------

def test_party_kinds_from_short_names_and_settings():
    assert d.party_kind(POLICE) == d.POLICE
    assert d.party_kind(JCY) == d.PROCURATORATE
    assert d.party_kind("511322-sfj") == d.SUPERVISOR
    assert d.party_kind(DEPT) == d.DEPARTMENT
    custom = d.HandoverSettings.from_mapping(police_short_names=["ga", "gajzd"])
    assert d.party_kind("511322-gajzd", custom) == d.POLICE
    with pytest.raises(ValueError):
        d.HandoverSettings.from_mapping(procuratorate_short_names=["ga"])
    with pytest.raises(ValueError):
        d.HandoverSettings.from_mapping(head_decision_days=-1)
    with pytest.raises(ValueError):
        d.HandoverSettings.from_mapping(no_such_setting=1)


def test_only_the_addressed_police_may_publish_police_steps():
    log = happy()
    base = log.facts[:3]  # raised, decided, transferred to POLICE
    assert d.admit(base, Fact("x2", "handover.received", at(1, 3), POLICE, {"handover_id": HID}), HID).receipts
    # another police unit while POLICE has not decided: a forwarding to it may still be in flight -> held
    other = Fact("x1", "handover.received", at(1, 3), POLICE2, {"handover_id": HID})
    held = d.admit(base, other, HID)
    assert [(a.event_id, a.code) for a in held.held] == [("x1", "waiting_addressee")] and held.receipts == []
    # once POLICE has decided no forwarding can come: any other police unit is refused at once
    decided = log.facts[:5]
    for step in (other, Fact("x3", "handover.police_decided", at(4), POLICE2, {"handover_id": HID, "opened": False})):
        with pytest.raises(d.NotAddresseeError) as err:
            d.admit(decided, step, HID)
        assert err.value.code == "not_addressee" and err.value.addressee == POLICE


def test_a_department_cannot_publish_a_police_step_and_police_cannot_publish_department_steps():
    base = happy().facts[:3]
    with pytest.raises(d.NotAddresseeError):
        d.admit(base, Fact("x", "handover.police_decided", at(2), DEPT, {"handover_id": HID, "opened": True}), HID)
    with pytest.raises(d.NotAddresseeError):
        d.admit(base, Fact("y", "handover.exhibits_handed_over", at(2), POLICE, {"handover_id": HID}), HID)
    with pytest.raises(d.NotAddresseeError):  # the justice bureau supervises; it reports no step
        d.admit(base, Fact("z", "handover.copied", at(2), "511322-sfj", {"handover_id": HID,
                                                                           "procuratorate_dept": JCY}), HID)


def test_another_department_is_not_the_owner():
    base = happy().facts[:3]
    with pytest.raises(NotOwnerError) as err:
        d.admit(base, Fact("x", "handover.copied", at(2), "511322-hbj", {"handover_id": HID,
                                                                          "procuratorate_dept": JCY}), HID)
    assert err.value.code == "not_owner"


def test_forwarding_moves_the_addressee():
    log = happy()
    log.facts = log.facts[:4]
    log.add("forwarded", at(1, 10), dept=POLICE, to_police_dept=POLICE2, to_police_unit="南充市公安局")
    with pytest.raises(d.NotAddresseeError):  # the first police may no longer decide
        d.admit(log.facts, Fact("x", "handover.police_decided", at(2), POLICE, {"handover_id": HID, "opened": True}), HID)
    h = d.admit(log.facts, Fact("y", "handover.police_decided", at(2), POLICE2, {"handover_id": HID, "opened": True}), HID)
    assert h.police == POLICE2 and h.opened_at == at(2)
    assert set(h.parties) == {DEPT, POLICE, POLICE2, JCY}


def test_only_a_procuratorate_copied_or_asked_may_report_supervision():
    log = refused_then_suggested()
    bad = Fact("x", "handover.supervision_outcome", at(9), "511300-jcy", {"handover_id": HID, "outcome": "notice_to_open"})
    with pytest.raises(d.NotAddresseeError):
        d.admit(log.facts, bad, HID)
    ok = Fact("y", "handover.supervision_outcome", at(9), JCY, {"handover_id": HID, "outcome": "notice_to_open"})
    assert d.admit(log.facts, ok, HID).supervision_outcome == "notice_to_open"


def test_a_police_step_before_any_transfer_is_held_then_applied_when_the_transfer_arrives():
    log = happy()
    receipt = log.facts[3]
    early = d.admit(log.facts[:2], receipt, HID)  # no transfer known yet: cannot judge, accepted and held
    assert [a.event_id for a in early.held] == [receipt.event_id]
    assert d.fold(log.facts[:2] + [receipt] + [log.facts[2]], HID).receipts == [(at(1, 3), POLICE)]


def test_a_held_police_step_is_applied_by_a_late_forwarding_or_becomes_an_anomaly():
    log = happy()
    early = Fact("w", "handover.received", at(1, 8), POLICE2, {"handover_id": HID})
    forward = Fact("f", "handover.forwarded", at(1, 6), POLICE, {"handover_id": HID, "to_police_dept": POLICE2})
    d.admit(log.facts[:4], early, HID)                          # accepted and held
    h = d.admit(log.facts[:4] + [early], forward, HID)          # the forwarding arrives after the receipt
    assert h.police == POLICE2 and (at(1, 8), POLICE2) in h.receipts and not h.held
    # a held step whose addressee then decides without forwarding: not addressed, changes nothing
    h = d.fold(log.facts[:5] + [early], HID)
    assert [(a.event_id, a.code) for a in h.anomalies] == [("w", "not_addressee")] and not h.held
    assert h.receipts == [(at(1, 3), POLICE)]
    assert d.FACT_ANOMALY in rule_ids(d.evaluate(h, at(2)))


def test_commands_are_strict():
    log = happy()
    with pytest.raises(IllegalTransitionError):  # exhibits before the police opened a case
        d.command(d.fold(log.facts[:3], HID), Fact("c", "handover.exhibits_handed_over", at(2), DEPT, {"handover_id": HID}), HID)
    with pytest.raises(IllegalTransitionError):  # the head decides once
        d.command(d.fold(log.facts[:3], HID), Fact("c", "handover.head_decided", at(2), DEPT, {"handover_id": HID,
                                                                                 "approved": True}), HID)
    # a decision dated before one already recorded would displace it in the time-ordered fold: refused
    decided = d.fold(log.facts[:5], HID)                       # POLICE opened at(3)
    with pytest.raises(IllegalTransitionError):
        d.command(decided, Fact("c2", "handover.police_decided", at(2), POLICE,
                                {"handover_id": HID, "opened": False}), HID)
    fact = Fact("ok", "handover.received", at(1, 3), POLICE, {"handover_id": HID})
    assert d.command(d.fold(log.facts[:3], HID), fact, HID) is fact
    assert d.command(None, log.facts[0], HID) is log.facts[0]


# ---- fold and the happy path -------------------------------------------------------------------------

def test_happy_path_has_no_findings_and_ends_with_a_criminal_case():
    h = happy().fold()
    assert h.status == "criminal_case_opened" and h.ended
    assert d.evaluate(h, at(60)) == []
    snap = d.to_snapshot(h, at(60))
    assert [e["party"] for e in snap["record"]] == ["department"] * 3 + ["police"] * 2 + ["department"]
    assert snap["police_dept"] == POLICE and snap["procuratorates"] == [JCY]
    assert all(not duty["breached"] for duty in snap["duties"])
    assert d.next_due(h, at(60)) is None


def test_fold_does_not_depend_on_arrival_order():
    facts = happy().facts
    reordered = [Fact(f.event_id, f.type, f.occurred_at, f.dept, f.payload, seq=i)
                 for i, f in enumerate(reversed(facts))]
    assert d.to_snapshot(d.fold(reordered, HID), at(9)) == d.to_snapshot(d.fold(facts, HID), at(9))


@hsettings(max_examples=60, deadline=None)
@given(st.permutations(range(6)))
def test_any_arrival_order_folds_to_the_same_handover(order):
    facts = happy().facts
    shuffled = [Fact(facts[i].event_id, facts[i].type, facts[i].occurred_at, facts[i].dept, facts[i].payload, seq=k)
                for k, i in enumerate(order)]
    h = d.fold(shuffled, HID)
    assert h.status == "criminal_case_opened" and not h.held and not h.anomalies


def test_a_repeated_step_is_an_anomaly_not_a_change():
    log = happy()
    log.add("head_decided", at(2), approved=False, reasons="")
    h = log.fold()
    assert h.head_approved is True and [a.code for a in h.anomalies] == ["already_done"]


# ---- each timed rule ---------------------------------------------------------------------------------

def test_head_decision_late_and_overdue():
    log = Log()
    log.add("suspicion_raised", at(), officers=["a1", "a2"], report_ref="R1", suspected_crime="x")
    h = log.fold()
    assert d.evaluate(h, at(3, 14)) == []                         # Thursday 23:00: still in time
    assert d.next_due(h, at()) == datetime(2025, 3, 7, tzinfo=CST)
    [f] = d.evaluate(h, datetime(2025, 3, 7, tzinfo=CST))        # Friday 00:00: overdue
    assert f.rule_id == d.HEAD_DECISION_LATE and f.evidence["state"] == "overdue" and f.dept == DEPT
    log.add("head_decided", at(5), approved=True)
    f = next(f for f in d.evaluate(log.fold(), at(5, 1)) if f.rule_id == d.HEAD_DECISION_LATE)
    assert f.evidence["state"] == "late"
    longer = d.HandoverSettings.from_mapping(head_decision_days=5)
    assert d.HEAD_DECISION_LATE not in rule_ids(d.evaluate(log.fold(longer), at(5, 1), longer))


def test_transfer_late_counts_hours_not_days():
    log = Log()
    log.add("suspicion_raised", at(), officers=["a1", "a2"], report_ref="R1", suspected_crime="x")
    log.add("head_decided", at(1), approved=True)
    h = log.fold()
    assert d.evaluate(h, at(1, 23)) == []
    assert rule_ids(d.evaluate(h, at(2))) == [d.TRANSFER_LATE]
    log.add("transferred", at(2, 1), police_dept=POLICE, documents=list(d.DEFAULT_SETTINGS.required_documents),
            copy_to=JCY)
    [f] = d.evaluate(log.fold(), at(2, 2))
    assert f.rule_id == d.TRANSFER_LATE and f.evidence["overdue_hours"] == 1.0


def test_missing_procuratorate_copy_and_documents():
    log = Log()
    log.add("suspicion_raised", at(), officers=["a1", "a2"], report_ref="R1", suspected_crime="x")
    log.add("head_decided", at(1), approved=True)
    log.add("transferred", at(1, 2), police_dept=POLICE, documents=["transfer_letter"], appraisal_required=True)
    log.add("received", at(1, 3), dept=POLICE)
    log.add("police_decided", at(2), dept=POLICE, opened=True)
    log.add("exhibits_handed_over", at(3))
    found = d.evaluate(log.fold(), at(3))
    assert rule_ids(found) == [d.DOCUMENTS_INCOMPLETE, d.NO_PROCURATORATE_COPY]
    docs = next(f for f in found if f.rule_id == d.DOCUMENTS_INCOMPLETE)
    assert docs.evidence["missing"] == ["investigation_report", "exhibit_list", "appraisal_report"]
    log.add("copied", at(1, 20), procuratorate_dept=JCY)  # within 24 hours: fine
    assert rule_ids(d.evaluate(log.fold(), at(3))) == [d.DOCUMENTS_INCOMPLETE]


def test_suspicion_needs_a_team_of_two_and_a_written_report():
    log = Log()
    log.add("suspicion_raised", at(), officers=["a1", "a1"], suspected_crime="x")
    [f] = d.evaluate(log.fold(), at(0, 1))
    assert f.rule_id == d.SUSPICION_TEAM and "1 名" in f.message and "无书面报告" in f.message


def test_head_refusal_without_reasons_is_critical_and_with_reasons_is_not():
    log = Log()
    log.add("suspicion_raised", at(), officers=["a1", "a2"], report_ref="R1", suspected_crime="x")
    log.add("head_decided", at(1), approved=False)
    [f] = d.evaluate(log.fold(), at(10))
    assert f.rule_id == d.REFUSED_NO_REASON and f.severity == "critical"
    assert log.fold().status == "not_approved"
    log.facts[-1] = Fact("e1", "handover.head_decided", at(1), DEPT,
                         {"handover_id": HID, "approved": False, "reasons": "涉案金额经复核未达追诉标准"}, seq=1)
    assert d.evaluate(log.fold(), at(10)) == []


def test_forward_late_is_the_forwarding_police_finding():
    log = happy()
    log.facts = log.facts[:4]                                      # received at(1, 3)
    log.add("forwarded", at(2, 4), dept=POLICE, to_police_dept=POLICE2)
    log.add("received", at(2, 5), dept=POLICE2)
    log.add("police_decided", at(3), dept=POLICE2, opened=False, reasons="不构成犯罪")
    found = d.evaluate(log.fold(), at(3, 1))
    [fw] = [f for f in found if f.rule_id == d.FORWARD_LATE]
    assert fw.dept == POLICE and fw.evidence["overdue_hours"] == 1.0
    assert d.POLICE_DECISION_LATE not in rule_ids(found)  # the new police decided within 3 days of its receipt


def test_police_decision_late_from_the_receipt_or_the_transfer():
    log = happy()
    log.facts = log.facts[:3]                                      # transferred at(1, 2), no receipt
    h = log.fold()
    due = datetime(2025, 3, 8, tzinfo=CST)                         # Tue + 3 = Fri -> ends Sat 00:00
    assert d.next_due(h, at(1, 3)) == due
    [f] = d.evaluate(h, due)
    assert f.rule_id == d.POLICE_DECISION_LATE and f.dept == POLICE and f.evidence["state"] == "overdue"


def refused_then_suggested(review=True) -> Log:
    log = happy()
    log.facts = log.facts[:4]
    log.add("police_decided", at(2), dept=POLICE, opened=False, reasons="未达立案追诉标准")
    if review:
        log.add("review_requested", at(3))
        log.add("review_answered", at(4), dept=POLICE, opened=False, reasons="维持不予立案")
        log.add("supervision_suggested", at(5), procuratorate_dept=JCY)
    else:
        log.add("supervision_suggested", at(3), procuratorate_dept=JCY)
    return log


def test_review_and_suggestion_in_time_raise_nothing():
    assert d.evaluate(refused_then_suggested().fold(), at(6)) == []
    assert d.evaluate(refused_then_suggested(review=False).fold(), at(6)) == []


def test_review_request_answer_and_suggestion_late():
    log = happy()
    log.facts = log.facts[:4]
    log.add("police_decided", at(2), dept=POLICE, opened=False, reasons="未达标准")
    # Wed + 3 = Sat, a rest day -> Monday is the last day: Monday's request is in time, Tuesday's late
    assert d.REVIEW_REQUEST_LATE not in rule_ids(d.evaluate(d.fold(log.facts + [
        Fact("m", "handover.review_requested", at(7), DEPT, {"handover_id": HID})], HID), at(7, 1)))
    log.add("review_requested", at(8))
    h = log.fold()
    assert rule_ids(d.evaluate(h, at(8, 1))) == [d.REVIEW_REQUEST_LATE]
    [ans] = [f for f in d.evaluate(h, at(12)) if f.rule_id == d.REVIEW_ANSWER_LATE]   # Tue + 3 = Fri: ends Sat 00:00
    assert ans.dept == POLICE and ans.evidence["state"] == "overdue"
    log.add("review_answered", at(9), dept=POLICE, opened=False, reasons="维持")
    log.add("supervision_suggested", at(15), procuratorate_dept=JCY)                 # Wed + 3 -> Mon: Tue is late
    assert rule_ids(d.evaluate(log.fold(), at(15))) == [d.REVIEW_REQUEST_LATE, d.SUGGESTION_LATE]


def test_exhibits_late_after_the_police_opened():
    log = happy()
    log.facts = log.facts[:5]                                      # opened Thursday at(3)
    h = log.fold()
    assert h.status == "police_opened"
    due = datetime(2025, 3, 11, tzinfo=CST)                        # Thu + 3 = Sun -> Monday -> ends Tue 00:00
    assert d.next_due(h, at(3)) == due
    assert d.evaluate(h, due - timedelta(seconds=1)) == []
    assert rule_ids(d.evaluate(h, due)) == [d.EXHIBITS_LATE]


def test_supervision_notice_lets_the_police_decide_again_and_open():
    log = refused_then_suggested()
    log.add("supervision_outcome", at(6), dept=JCY, outcome="notice_to_open")
    log.add("police_decided", at(7), dept=POLICE, opened=True)
    h = log.fold()
    assert h.opened_at == at(7) and not h.anomalies and h.status == "police_opened"


# ---- reverse handover --------------------------------------------------------------------------------

def test_reverse_handover_from_the_police_must_be_opened_in_15_working_days():
    log = Log("511322-ga-FX-2025-003")
    log.add("returned", at(), dept=POLICE, to_dept=DEPT, reason="犯罪事实显著轻微，不需要追究刑事责任，但应予行政处罚")
    h = log.fold()
    assert h.origin == "reverse" and h.dept == DEPT and h.status == "returned"
    due = datetime(2025, 3, 25, tzinfo=CST)
    assert d.next_due(h, at()) == due and d.evaluate(h, due - timedelta(seconds=1)) == []
    [f] = d.evaluate(h, due)
    assert f.rule_id == d.REVERSE_NOT_OPENED and f.dept == DEPT
    with pytest.raises(NotOwnerError):  # only the department it was returned to opens the case
        d.admit(log.facts, Fact("x", "handover.penalty_case_opened", at(3), "511322-hbj",
                                {"handover_id": log.hid, "case_id": "C1"}), log.hid)
    log.add("penalty_case_opened", at(3), case_id="511322-scjg-2025-0077", mode="opened")
    h = log.fold()
    assert h.status == "penalty_case_opened" and d.evaluate(h, at(30)) == []


def test_reverse_handover_of_a_transferred_case_needs_the_addressee_and_the_original_department():
    log = happy()
    log.facts = log.facts[:5]                                   # POLICE opened a case
    with pytest.raises(d.NotAddresseeError):
        d.admit(log.facts, Fact("x", "handover.returned", at(4), POLICE2, {"handover_id": HID, "to_dept": DEPT,
                                                                          "reason": "r"}), HID)
    h = d.admit(log.facts, Fact("y", "handover.returned", at(4), JCY, {"handover_id": HID, "to_dept": DEPT,
                                                                       "reason": "不起诉"}), HID)
    assert h.returned_by == JCY and h.status == "returned"


# ---- penalty case rules ------------------------------------------------------------------------------

THRESHOLDS = [
    {"id": "T-140", "item_codes": ["scjg-cpzlf-049"], "measure": "sales_amount", "threshold": 50_000,
     "law": "《中华人民共和国刑法》第一百四十条", "name": "销售伪劣产品罪", "bases": []},
    {"id": "T-ART", "bases": [{"law": "《中华人民共和国产品质量法》", "article": "第五十条"}], "measure": "goods_value",
     "threshold": 150_000, "law": "《中华人民共和国刑法》第一百四十条", "name": "销售伪劣产品罪（货值）"},
]


def view(**over) -> d.PenaltyCaseView:
    payload = {"case_id": "C1", "dept": DEPT, "revision": 3, "item_code": "scjg-cpzlf-049",
               "legal_basis": [{"law": "《产品质量法》", "article": "第五十条第一款"}],
               "measures": {"sales_amount": 60_000}, "stage": "decided",
               "decision": {"decision_no": "南市监罚〔2025〕9号", "decided_at": at(20).isoformat(),
                            "kinds": ["fine"], "fine_amount": 30_000, "revoked": False},
               "payments": [{"at": at(1).isoformat(), "amount": 5_000}], "transferred_at": []}
    payload.update(over)
    return d.PenaltyCaseView.from_payload(payload)


def test_thresholds_by_item_code_and_by_law_and_article():
    assert [h["id"] for h in d.thresholds_reached(view(), THRESHOLDS)] == ["T-140"]
    assert [h["id"] for h in d.thresholds_reached(view(measures={"goods_value": 200_000}), THRESHOLDS)] == ["T-ART"]
    assert d.thresholds_reached(view(item_code="other", measures={"sales_amount": 90_000}), THRESHOLDS) == []
    assert d.thresholds_reached(view(measures={"sales_amount": 49_999}), THRESHOLDS) == []


def test_penalty_instead_of_handover():
    [f] = d.evaluate_case(view(), [], THRESHOLDS, at(21))
    assert f.rule_id == d.PENALTY_INSTEAD and f.subject_type == "case" and f.severity == "critical"
    # a handover refused by the head (with or without reasons) does not count as handed over
    refused = Log()
    refused.add("suspicion_raised", at(), case_id="C1", officers=["a", "b"], report_ref="R", suspected_crime="x")
    refused.add("head_decided", at(1), approved=False, reasons="")
    [f] = d.evaluate_case(view(), [refused.fold()], THRESHOLDS, at(21))
    assert f.evidence["handovers"][0]["status"] == "not_approved"
    assert d.evaluate_case(view(), [happy().fold()], THRESHOLDS, at(21)) == []
    assert d.evaluate_case(view(transferred_at=[at(5).isoformat()]), [], THRESHOLDS, at(21)) == []
    assert d.evaluate_case(view(decision={"decided_at": at(20).isoformat(), "kinds": [], "revoked": False}),
                           [], THRESHOLDS, at(21)) == []


def test_fine_after_transfer_while_the_criminal_route_is_open():
    h = happy().fold()                                             # transferred at(1, 2)
    [f] = d.evaluate(h, at(21), case=view())
    assert f.rule_id == d.PENALTY_CONTINUES and f.evidence["paid_before_transfer"] == 5_000
    assert d.to_snapshot(h, at(21), case=view())["fines_to_deduct"] == 5_000
    before = view(decision={"decided_at": at(1).isoformat(), "kinds": ["fine"], "revoked": False})
    assert d.evaluate(h, at(21), case=before) == []                # decided before the transfer: not suspended
    warning = view(decision={"decided_at": at(20).isoformat(), "kinds": ["warning"], "revoked": False})
    assert d.evaluate(h, at(21), case=warning) == []
    refused = refused_then_suggested().fold()                      # refused again on review at(4)
    refused_view = view(decision={"decided_at": at(6).isoformat(), "kinds": ["fine"], "revoked": False})
    # the review answer refused at(4) and no case was opened: the administrative penalty may go on
    assert d.PENALTY_CONTINUES not in rule_ids(d.evaluate(refused, at(7), case=refused_view))


def test_held_facts_are_reported_after_the_grace_period():
    log = Log()
    log.add("exhibits_handed_over", at())
    h = log.fold()
    assert [a.code for a in h.held] == ["missing_prerequisite"]
    assert d.evaluate(h, at(2)) == []
    assert d.next_due(h, at()) == at(3)
    assert rule_ids(d.evaluate(h, at(3))) == [d.FACT_HELD]


def test_rule_ids_are_stable_and_unique():
    assert len(set(d.RULE_IDS)) == len(d.RULE_IDS) == 17
    assert all(r.startswith("HOV-") for r in d.RULE_IDS)
    assert set(d.MESSAGES) <= set(d.RULE_IDS)
    assert date(2025, 3, 3).weekday() == 0


def test_a_transfer_to_a_party_that_is_not_police_is_refused():
    base = happy().facts[:2]
    with pytest.raises(InvalidFactError):
        d.admit(base, Fact("x", "handover.transferred", at(1, 2), DEPT,
                           {"handover_id": HID, "police_dept": "511322-hbj", "documents": []}), HID)
    with pytest.raises(InvalidFactError):
        d.admit([], Fact("y", "handover.returned", at(), POLICE, {"handover_id": "R1", "to_dept": JCY,
                                                                  "reason": "r"}), "R1")
