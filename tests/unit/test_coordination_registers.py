"""Coordination domain: complaints (12345), normative-document filing, monitoring devices (pure)."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from services.common.chinatime import CST
from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.coordination.domain import complaints as cp
from services.coordination.domain import devices as dv
from services.coordination.domain import normative as nd
from services.coordination.domain.settings import CoordinationSettings

SFJ, SCJG, STHJ, HOTLINE = "511322-sfj", "511322-scjg", "511322-sthj", "511322-rx12345"


def at(d: str) -> datetime:
    return datetime.fromisoformat(d + "T10:00:00+08:00")


def run(fold, *commands):
    facts: list[Fact] = []
    for i, command in enumerate(commands):
        f = command(fold(facts))
        facts.append(Fact(f.event_id, f.type, f.occurred_at, f.dept, f.payload, seq=i))
    return fold(facts), facts


# ---- complaints -------------------------------------------------------------------------------------------

CID = "12345-20240506-0001"


def received(on="2024-05-06"):
    return lambda c: cp.receive(c, CID, channel="hotline_12345", summary="某超市销售过期食品，投诉后无人处理",
                                at=at(on), dept=SFJ, event_id="r", complainant={"name": "王某", "phone": "13800000000"},
                                party_id="91511322MA0000001X")


def routed(on="2024-05-07", target=SCJG):
    return lambda c: cp.route(c, CID, target=target, at=at(on), dept=SFJ, event_id=f"rt{on}")


def test_complaint_runs_from_intake_to_feedback_within_limits():
    c, _ = run(cp.complaint_from_facts, received(), routed(),
               lambda c: cp.acknowledge(c, CID, at=at("2024-05-08"), dept=SCJG, event_id="a"),
               lambda c: cp.answer(c, CID, text="已现场检查并立案", at=at("2024-05-20"), dept=SCJG, event_id="an"),
               lambda c: cp.feedback(c, CID, satisfied=True, at=at("2024-05-21"), dept=SFJ, event_id="f"))
    assert c.status == "closed" and c.late == [] and c.satisfied is True
    assert cp.evaluate(c, at("2024-12-31")) == []
    assert cp.snapshot(c, at("2024-05-21"))["complainant"] == {"name": "王某", "phone": "13800000000"}


def test_complaint_deadlines_are_findings_of_whoever_owes_the_step():
    c, facts = run(cp.complaint_from_facts, received())
    # route within 1 working day: May 7; the bureau owes it
    [f] = cp.evaluate(c, at("2024-05-08"))
    assert (f.rule_id, f.dept) == (cp.RULE_ROUTE, SFJ)
    c, _ = run(cp.complaint_from_facts, received(), routed(on="2024-05-08"))
    assert c.late == [{"what": "route", "due": "2024-05-07", "on": "2024-05-08"}]
    # acknowledge within 2 wd (May 10), answer within 15 wd of routing; the department owes them
    assert cp.next_due(c, at("2024-05-08")) == datetime(2024, 5, 11, tzinfo=CST)
    rules = sorted(f.rule_id for f in cp.evaluate(c, at("2024-06-30")))
    assert rules == [cp.RULE_ACK, cp.RULE_ANSWER]
    assert {f.dept for f in cp.evaluate(c, at("2024-06-30"))} == {SCJG}


def test_only_the_routed_department_acknowledges_and_answers():
    c, _ = run(cp.complaint_from_facts, received(), routed())
    with pytest.raises(NotOwnerError):
        cp.answer(c, CID, text="代答", at=at("2024-05-08"), dept=STHJ, event_id="x")
    with pytest.raises(NotOwnerError):
        cp.route(c, CID, target=STHJ, at=at("2024-05-08"), dept=SCJG, event_id="y")
    with pytest.raises(IllegalTransitionError):
        cp.feedback(c, CID, satisfied=False, at=at("2024-05-08"), dept=SFJ, event_id="z")
    with pytest.raises(DomainError):
        cp.route(c, CID, target=SFJ, at=at("2024-05-08"), dept=SFJ, event_id="w")
    with pytest.raises(NotFoundError):
        cp.acknowledge(None, CID, at=at("2024-05-08"), dept=SCJG, event_id="v")


def test_rerouting_restarts_the_departments_clock():
    c, _ = run(cp.complaint_from_facts, received(), routed(), routed(on="2024-05-09", target=STHJ))
    assert c.dept == STHJ and cp.due_dates(c)["ack"] == date(2024, 5, 11)   # Sat May 11: a make-up workday


def test_hotline_system_may_report_intake_but_not_answers_for_a_department():
    cp.admit(None, Fact("h1", cp.RECEIVED, at("2024-05-06"), HOTLINE,
                        {"complaint_id": CID, "channel": "hotline_12345", "received_on": "2024-05-06", "summary": "x"}))
    c, _ = run(cp.complaint_from_facts, received(), routed())
    with pytest.raises(NotOwnerError):
        cp.admit(c, Fact("h2", cp.ANSWERED, at("2024-05-08"), HOTLINE,
                         {"complaint_id": CID, "dept": SCJG, "answered_on": "2024-05-08", "answer": "x"}))
    cp.admit(c, Fact("h3", cp.ANSWERED, at("2024-05-08"), SCJG,
                     {"complaint_id": CID, "dept": SCJG, "answered_on": "2024-05-08", "answer": "x"}))


def test_repeated_complaints_about_one_party_are_a_signal():
    rows = [{"complaint_id": f"C{i}", "received_on": f"2024-05-0{i}", "party_id": "P1", "dept": SCJG}
            for i in range(1, 4)] + [{"complaint_id": "C9", "received_on": "2024-05-02", "officer_id": "O1"}]
    [signal] = cp.repeated_signals(rows, at("2024-05-10"))
    assert signal == {"subject_type": "party", "subject_id": "P1", "count": 3, "depts": [SCJG],
                      "complaints": ["C1", "C2", "C3"]}
    assert cp.repeated_signals(rows, at("2024-09-30")) == []   # outside the 90-day window
    assert cp.repeated_signals(rows, at("2024-05-10"), CoordinationSettings.from_mapping(complaint_repeat_count=4)) == []


# ---- normative documents -----------------------------------------------------------------------------------

DOC = "511322-scjg-gf-2024-01"


def test_normative_document_filing_within_30_calendar_days():
    issued = lambda d: nd.issue(d, DOC, title="行政处罚裁量基准实施办法", doc_no="营市监规〔2024〕1号",  # noqa: E731
                                at=at("2024-03-01"), dept=SCJG, event_id="i")
    d, facts = run(nd.document_from_facts, issued)
    assert nd.filing_due(d) == date(2024, 3, 31)
    assert nd.evaluate(d, at("2024-03-31")) == [] and nd.next_due(d, at("2024-03-05")) == datetime(2024, 4, 1, tzinfo=CST)
    [f] = nd.evaluate(d, at("2024-04-02"))
    assert (f.rule_id, f.dept, f.evidence["days_overdue"]) == (nd.RULE_FILING, SCJG, 2)
    with pytest.raises(NotOwnerError):
        nd.file(d, DOC, at=at("2024-04-03"), dept=STHJ, event_id="x")
    d, _ = run(nd.document_from_facts, issued, lambda d: nd.file(d, DOC, at=at("2024-04-03"), dept=SCJG, event_id="f"),
               lambda d: nd.review(d, DOC, outcome="approved", at=at("2024-04-10"), dept=SFJ, event_id="r"))
    assert nd.evaluate(d, at("2024-05-01")) == [] and nd.snapshot(d, at("2024-05-01"))["filed_late"] is True
    with pytest.raises(NotOwnerError):
        nd.review(d, DOC, outcome="approved", at=at("2024-04-10"), dept=SCJG, event_id="r2")
    with pytest.raises(DomainError):
        nd.review(d, DOC, outcome="revoked", at=at("2024-04-10"), dept=SFJ, event_id="r3")   # needs a reason


# ---- monitoring devices -------------------------------------------------------------------------------------

DEV = "511322-jtys-cam-0007"


def used(on: str, dept=SCJG, event_id=None):
    return Fact(event_id or f"u{on}", dv.USED, at(on), dept, {"device_id": DEV, "used_on": on, "case_id": "C1"})


def test_a_use_before_review_and_publication_is_a_finding():
    d, facts = run(dv.device_from_facts,
                   lambda d: dv.register(d, DEV, location="G350 线 12km 处", at=at("2024-03-01"), dept=SCJG, event_id="g"),
                   lambda d: dv.review(d, DEV, passed=True, at=at("2024-03-05"), dept=SFJ, event_id="v"),
                   lambda d: dv.publish(d, DEV, at=at("2024-03-10"), dept=SCJG, event_id="p"))
    early = dv.device_from_facts(facts + [used("2024-03-08")])
    [f] = dv.evaluate(early, at("2024-03-20"))
    assert f.rule_id == dv.RULE_UNPUBLISHED and f.evidence["uses"][0]["reason"] == "未向社会公布"
    assert dv.evaluate(dv.device_from_facts(facts + [used("2024-03-10")]), at("2024-03-20")) == []


def test_a_use_of_an_unregistered_device_is_a_finding_and_publication_needs_review():
    [f] = dv.evaluate(dv.device_from_facts([used("2024-03-08")]), at("2024-03-20"))
    assert f.evidence["uses"][0]["reason"] == "未登记" and f.dept == SCJG
    d, _ = run(dv.device_from_facts,
               lambda d: dv.register(d, DEV, location="路口", at=at("2024-03-01"), dept=SCJG, event_id="g"))
    with pytest.raises(IllegalTransitionError):
        dv.publish(d, DEV, at=at("2024-03-02"), dept=SCJG, event_id="p")
    with pytest.raises(NotOwnerError):
        dv.review(d, DEV, passed=True, at=at("2024-03-02"), dept=SCJG, event_id="v")
    with pytest.raises(NotOwnerError):
        dv.admit(d, used("2024-03-03", dept=STHJ))


# ---- jurisdiction disputes -------------------------------------------------------------------------------------

from services.coordination.domain import disputes as ds  # noqa: E402

DSP = "GX-2024-0001"


def raised(filed_on="2024-04-20"):
    return lambda d: ds.raise_dispute(d, DSP, matter="农贸市场内无证经营食品的查处", parties=[STHJ, SCJG],
                                      at=at("2024-05-06"), dept=SCJG, event_id="dr", filed_on=filed_on)


def test_dispute_first_filer_agreement_and_who_may_act():
    d, _ = run(ds.dispute_from_facts, raised(),
               lambda d: ds.answer(d, DSP, agrees=False, filed_on="2024-04-15", at=at("2024-05-08"), dept=STHJ,
                                   event_id="a"))
    assert d.parties == [STHJ] and ds.first_filer(d) == STHJ and d.status == "negotiating"
    with pytest.raises(NotOwnerError):
        ds.answer(d, DSP, agrees=True, at=at("2024-05-08"), dept="511322-zjj", event_id="b")
    with pytest.raises(NotOwnerError):
        ds.agree(d, DSP, lead_dept=STHJ, at=at("2024-05-09"), dept=SCJG, event_id="c")
    with pytest.raises(DomainError):
        ds.agree(d, DSP, lead_dept="511322-zjj", at=at("2024-05-09"), dept=SFJ, event_id="c")
    with pytest.raises(IllegalTransitionError):
        ds.decide(d, DSP, lead_dept=STHJ, at=at("2024-05-09"), dept=SFJ, event_id="e")   # not referred yet
    done = ds.dispute_from_facts(_ + [ds.agree(d, DSP, lead_dept=STHJ, at=at("2024-05-09"), dept=SFJ, event_id="c")])
    assert (done.status, done.lead_dept) == ("agreed", STHJ) and ds.evaluate(done, at("2024-12-01")) == []


def test_dispute_deadlines():
    d, facts = run(ds.dispute_from_facts, raised())
    answer_due = ds._due(d, CoordinationSettings())[0]
    assert answer_due == date(2024, 5, 11)     # 5 working days: May 7–10 and the make-up Saturday May 11
    [f] = ds.evaluate(d, at("2024-05-14"))
    assert (f.rule_id, f.dept) == (ds.RULE_ANSWER, STHJ)
    rules = sorted(f.rule_id for f in ds.evaluate(d, at("2024-06-10")))
    assert rules == [ds.RULE_ANSWER, ds.RULE_UNRESOLVED]
    referred = ds.dispute_from_facts(facts + [ds.refer(d, DSP, referred_to="县人民政府", at=at("2024-06-06"), dept=SFJ,
                                                        event_id="r")])
    assert [f.rule_id for f in ds.evaluate(referred, at("2024-06-10"))] == [ds.RULE_ANSWER]
    assert ds.first_filer(ds.dispute_from_facts(facts)) == SCJG
