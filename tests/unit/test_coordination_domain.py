"""Coordination domain: the findings inbox workflow and supervision cases (pure, no I/O)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.common.chinatime import CST
from services.common.errors import DomainError, IllegalTransitionError, NotFoundError, NotOwnerError
from services.common.facts import Fact
from services.coordination.domain import inbox as ib
from services.coordination.domain import supervision as sv
from services.coordination.domain.settings import CoordinationSettings

SFJ, SCJG, STHJ = "511322-sfj", "511322-scjg", "511322-sthj"
KEY = "PEN-OFFICERS-MIN:case:C-2024-001"
T0 = datetime(2024, 5, 6, 9, 0, tzinfo=CST)   # a Monday


def finding_fact(kind: str, as_of: datetime, *, key: str = KEY, dept: str = SCJG, severity: str = "serious",
                 seq: int = 0, arrived: datetime | None = None, source: str = "penalty") -> Fact:
    rule, subject_type, subject_id = key.split(":", 2)
    payload = {"finding_key": key, "rule_id": rule, "severity": severity, "dept": dept,
               "subject_type": subject_type, "subject_id": subject_id, "as_of": as_of.isoformat(),
               "evidence": {"officers": 1}, "message": "调查时执法人员不足2人"}
    return Fact(str(uuid.uuid4()), f"finding.{kind}", arrived or as_of, dept, payload, seq=seq, source=source)


def entry(*facts: Fact) -> ib.InboxEntry:
    return ib.entry_from_facts(facts)


# ---- ordering by as_of ------------------------------------------------------------------------------

def test_a_resolution_relayed_before_its_raise_does_not_reopen_the_finding():
    resolved = finding_fact("resolved", T0 + timedelta(days=2), seq=0, arrived=T0 + timedelta(days=2))
    raised = finding_fact("raised", T0, seq=1, arrived=T0 + timedelta(days=3))  # arrives last
    e = entry(resolved, raised)
    assert e.state == "resolved" and not e.source_open and e.episodes == 1
    assert e.raised_at == T0 and e.resolved_at == T0 + timedelta(days=2)


def test_a_raise_after_the_resolution_is_a_new_episode_and_starts_untriaged():
    first = finding_fact("raised", T0)
    dismissed = ib.dismiss(entry(first), KEY, reason="已电话核实，系数据录入错误", at=T0 + timedelta(hours=1),
                           dept=SFJ, event_id="d1")
    e = entry(first, dismissed, finding_fact("resolved", T0 + timedelta(days=1)))
    assert e.state == "dismissed"
    again = entry(first, dismissed, finding_fact("resolved", T0 + timedelta(days=1)),
                  finding_fact("raised", T0 + timedelta(days=5)))
    assert again.state == "new" and again.episodes == 2 and again.dismiss_reason is None
    assert again.raised_at == T0 + timedelta(days=5) and again.first_raised_at == T0


def test_a_duplicate_raise_of_an_open_finding_keeps_its_episode():
    e = entry(finding_fact("raised", T0), finding_fact("raised", T0 + timedelta(hours=3)))
    assert e.episodes == 1 and e.raised_at == T0


EVENTS = st.lists(st.tuples(st.sampled_from(["raised", "resolved"]), st.integers(0, 20)), min_size=1, max_size=8)


@hsettings(max_examples=150, deadline=None)
@given(EVENTS, st.randoms(use_true_random=False))
def test_any_arrival_order_folds_to_the_same_state(events, rnd):
    facts = [finding_fact(kind, T0 + timedelta(hours=h), seq=i) for i, (kind, h) in enumerate(events)]
    shuffled = list(facts)
    rnd.shuffle(shuffled)
    shuffled = [Fact(f.event_id, f.type, f.occurred_at, f.dept, f.payload, seq=i, source=f.source)
                for i, f in enumerate(shuffled)]
    a, b = entry(*facts), entry(*shuffled)
    # ties at the same as_of: raised before resolved, whatever the arrival
    assert (a.state, a.episodes, a.raised_at, a.resolved_at) == (b.state, b.episodes, b.raised_at, b.resolved_at)
    last = max(facts, key=lambda f: (ib.fact_time(f), ib._RANK[f.type]))
    assert a.source_open == (last.type == ib.RAISED)


# ---- triage -------------------------------------------------------------------------------------------

def test_triage_path_acknowledge_assign_and_refusals():
    raised = finding_fact("raised", T0)
    ack = ib.acknowledge(entry(raised), KEY, at=T0 + timedelta(hours=1), dept=SFJ, event_id="a1", actor="zhang")
    assert ack.type == "inbox.acknowledged" and ack.payload == {"finding_key": KEY, "actor": "zhang"}
    e = entry(raised, ack)
    assert e.state == "acknowledged"
    with pytest.raises(IllegalTransitionError):
        ib.acknowledge(e, KEY, at=T0, dept=SFJ, event_id="a2")
    asg = ib.assign(e, KEY, assignee="李监督", at=T0 + timedelta(hours=2), dept=SFJ, event_id="a3")
    e = entry(raised, ack, asg)
    assert (e.state, e.assignee) == ("assigned", "李监督")
    assert [x["action"] for x in e.log] == ["acknowledged", "assigned"]
    with pytest.raises(IllegalTransitionError):
        ib.assign(e, KEY, assignee="李监督", at=T0, dept=SFJ, event_id="a4")
    with pytest.raises(NotOwnerError):   # a department cannot triage the bureau's inbox
        ib.assign(e, KEY, assignee="王", at=T0, dept=SCJG, event_id="a5")
    with pytest.raises(NotFoundError):
        ib.acknowledge(None, KEY, at=T0, dept=SFJ, event_id="a6")


def test_dismiss_needs_a_reason_and_closed_findings_cannot_be_triaged():
    raised = finding_fact("raised", T0)
    with pytest.raises(DomainError) as exc:
        ib.dismiss(entry(raised), KEY, reason=" 无 ", at=T0, dept=SFJ, event_id="d1")
    assert exc.value.field == "reason"
    resolved = entry(raised, finding_fact("resolved", T0 + timedelta(hours=1)))
    with pytest.raises(IllegalTransitionError):
        ib.dismiss(resolved, KEY, reason="已整改完毕无需处理", at=T0 + timedelta(hours=2), dept=SFJ, event_id="d2")


def test_merge_duplicates_of_the_same_department_only():
    other_key = "PEN-OFFICERS-MIN:case:C-2024-002"
    dup = entry(finding_fact("raised", T0))
    target = entry(finding_fact("raised", T0, key=other_key))
    fact = ib.merge(dup, KEY, target, into=other_key, at=T0 + timedelta(hours=1), dept=SFJ, event_id="m1")
    merged = entry(finding_fact("raised", T0), fact)
    assert (merged.state, merged.merged_into) == ("merged", other_key) and not merged.open
    with pytest.raises(DomainError):
        ib.merge(dup, KEY, dup, into=KEY, at=T0, dept=SFJ, event_id="m2")
    foreign = entry(finding_fact("raised", T0, key=other_key, dept=STHJ))
    with pytest.raises(DomainError):
        ib.merge(dup, KEY, foreign, into=other_key, at=T0, dept=SFJ, event_id="m3")
    with pytest.raises(NotFoundError):
        ib.merge(dup, KEY, None, into=other_key, at=T0, dept=SFJ, event_id="m4")
    with pytest.raises(IllegalTransitionError):  # no chains: merge into the survivor instead
        ib.merge(target, other_key, merged, into=KEY, at=T0, dept=SFJ, event_id="m5")


# ---- escalation ------------------------------------------------------------------------------------------

def test_escalation_after_the_response_working_days_for_the_severity():
    s = CoordinationSettings()  # serious: 3 working days
    e = entry(finding_fact("raised", T0, severity="serious"))
    due = ib.escalation_due(e, s)
    assert due == datetime(2024, 5, 10, 0, 0, tzinfo=CST)  # Mon + 3 wd = Thu, escalates Fri 00:00
    assert not ib.escalated(e, due - timedelta(seconds=1), s) and ib.escalated(e, due, s)
    assert ib.next_due(e, T0, s) == due and ib.next_due(e, due, s) is None
    # assigned in time: handled, never escalates
    asg = ib.assign(e, KEY, assignee="李", at=T0 + timedelta(days=1), dept=SFJ, event_id="x")
    assert not ib.escalated(entry(finding_fact("raised", T0, severity="serious"), asg), due + timedelta(days=9), s)


def test_escalation_counts_working_days_over_a_holiday_and_is_configurable():
    raised = datetime(2024, 9, 30, 10, 0, tzinfo=CST)   # National Day holiday Oct 1–7
    e = entry(finding_fact("raised", raised, severity="critical"))
    assert ib.escalation_due(e, CoordinationSettings()) == datetime(2024, 10, 9, tzinfo=CST)  # 1 wd = Oct 8
    calendar_days = CoordinationSettings.from_mapping(workdays=False, response_days_critical=2)
    assert ib.escalation_due(e, calendar_days) == datetime(2024, 10, 3, tzinfo=CST)
    with pytest.raises(ValueError):
        CoordinationSettings.from_mapping(response_days_warning=0)
    with pytest.raises(ValueError):
        CoordinationSettings.from_mapping(no_such_setting=1)


def test_snapshot_and_counter_key():
    e = entry(finding_fact("raised", T0, severity="warning"))
    snap = ib.snapshot(e, T0 + timedelta(days=30))
    assert snap["state"] == "new" and snap["escalated"] is True and snap["dept"] == SCJG
    assert ib.counter_key(snap) == {"dept": SCJG, "rule_id": "PEN-OFFICERS-MIN", "severity": "warning",
                                    "state": "new", "escalated": True}


# ---- supervision cases ------------------------------------------------------------------------------------

CASE = "JD-2024-0001"


def run(*commands):
    """Apply command functions in order, each on the case folded so far; returns (case, facts)."""
    facts: list[Fact] = []
    for i, command in enumerate(commands):
        fact = command(sv.case_from_facts(facts))
        facts.append(Fact(fact.event_id, fact.type, fact.occurred_at, fact.dept, fact.payload, seq=i))
    return sv.case_from_facts(facts), facts


def at(d: str) -> datetime:
    return datetime.fromisoformat(d + "T10:00:00+08:00")


def opened(kind="routine", depts=(SCJG,), **kw):
    return lambda c: sv.open_case(c, CASE, kind=kind, origin=kw.pop("origin", "finding"), depts=list(depts),
                                  title="执法人员不足2人调查", at=at("2024-05-06"), dept=SFJ, event_id="o",
                                  origin_refs=kw.pop("refs", [KEY]), **kw)


def issued(target=SCJG, on="2024-05-06", **kw):
    return lambda c: sv.issue_document(c, CASE, target=target, doc_kind=kw.pop("doc_kind", "opinion"),
                                       doc_no=kw.pop("doc_no", "营司监意〔2024〕1号"), at=at(on), dept=SFJ,
                                       event_id=f"i-{on}-{target}", **kw)


def replied(dept=SCJG, on="2024-05-20"):
    return lambda c: sv.reply(c, CASE, content="已组织整改，补充第二名执法人员", at=at(on), dept=dept, event_id=f"r-{on}")


def test_supervision_case_end_to_end_with_rectification_and_failed_verification():
    case, facts = run(
        opened(),
        issued(rectification_required=True),     # opinion: reply 15 wd, rectification 30 wd
        replied(on="2024-05-20"),
        lambda c: sv.report_rectified(c, CASE, content="已补正", at=at("2024-06-03"), dept=SCJG, event_id="rf1"),
        lambda c: sv.verify(c, CASE, target=SCJG, passed=False, new_rectification_due="2024-06-30",
                            comment="记录不全", at=at("2024-06-05"), dept=SFJ, event_id="v1"),
        lambda c: sv.report_rectified(c, CASE, content="已补全", at=at("2024-06-20"), dept=SCJG, event_id="rf2"),
        lambda c: sv.verify(c, CASE, target=SCJG, passed=True, at=at("2024-06-21"), dept=SFJ, event_id="v2"),
        lambda c: sv.close(c, CASE, conclusion="整改到位，予以办结", at=at("2024-06-21"), dept=SFJ, event_id="c1"),
    )
    track = case.tracks[SCJG]
    # Sat May 11 2024 was a make-up working day; Mon Jun 10 the Dragon Boat holiday
    assert track.documents[0].reply_due == date(2024, 5, 24)
    assert track.documents[0].rectification_due == date(2024, 6, 17)
    assert case.status == "closed" and track.settled and track.late == []
    assert [v["passed"] for v in track.verifications] == [False, True]
    assert sv.evaluate(case, at("2024-12-01")) == []
    snap = sv.snapshot(case, at("2024-06-21"))
    assert snap["depts"] == [SCJG] and snap["tracks"][0]["status"] == "settled"


def test_overdue_reply_is_a_finding_until_the_late_reply_which_is_recorded():
    case, facts = run(opened(), issued(doc_kind="notice", doc_no="营司监通〔2024〕3号"))
    due = case.tracks[SCJG].reply_due
    assert due == date(2024, 5, 17)                    # notice: 10 working days (Sat May 11 one of them)
    assert sv.evaluate(case, at("2024-05-17")) == []   # the last day is still in time
    assert sv.next_due(case, at("2024-05-07")) == datetime(2024, 5, 18, tzinfo=CST)
    [f] = sv.evaluate(case, at("2024-05-19"))
    assert (f.rule_id, f.dept, f.subject_id) == (sv.RULE_REPLY, SCJG, f"{CASE}:{SCJG}")
    assert f.evidence["days_overdue"] == 2 and f.evidence["doc_no"] == "营司监通〔2024〕3号"
    late = sv.case_from_facts(facts + [sv.reply(case, CASE, content="迟到的答复", at=at("2024-05-20"), dept=SCJG,
                                                event_id="late")])
    assert sv.evaluate(late, at("2024-05-20")) == []
    assert late.tracks[SCJG].late == [{"what": "reply", "due": "2024-05-17", "on": "2024-05-20"}]


def test_overdue_rectification_is_a_finding():
    case, _ = run(opened(), issued(rectification_required=True, rectification_due="2024-05-31"),
                  replied(on="2024-05-08"))
    assert [f.rule_id for f in sv.evaluate(case, at("2024-06-01"))] == [sv.RULE_RECTIFY]
    assert sv.evaluate(case, at("2024-05-31")) == []


def test_a_department_cannot_answer_another_departments_case():
    case, _ = run(opened(), issued())
    with pytest.raises(NotOwnerError):
        sv.reply(case, CASE, content="代为答复", at=at("2024-05-08"), dept=STHJ, event_id="x")
    with pytest.raises(NotOwnerError):
        sv.report_rectified(case, CASE, content="整改", at=at("2024-05-08"), dept=STHJ, event_id="y")


def test_only_the_bureau_opens_issues_verifies_and_closes():
    with pytest.raises(NotOwnerError):
        sv.open_case(None, CASE, kind="routine", origin="initiative", depts=[SCJG], title="自查", at=T0, dept=SCJG,
                     event_id="o")
    case, _ = run(opened())
    with pytest.raises(NotOwnerError):
        sv.issue_document(case, CASE, target=SCJG, doc_kind="notice", doc_no="1", at=T0, dept=SCJG, event_id="i")


def test_open_case_validation():
    def attempt(**kw):
        args = dict(kind="routine", origin="initiative", depts=[SCJG], title="专项检查", at=T0, dept=SFJ, event_id="o")
        args.update(kw)
        return sv.open_case(None, CASE, **args)

    assert attempt().payload["depts"] == [SCJG]
    for bad, field in ((dict(kind="weekly"), "kind"), (dict(depts=[]), "depts"), (dict(depts=[SCJG, STHJ]), "depts"),
                       (dict(kind="special", depts=[SCJG, STHJ]), "checklist"), (dict(origin="finding"), "origin_refs"),
                       (dict(depts=[SFJ]), "depts"), (dict(title=" "), "title"),
                       (dict(opened_on="2099-01-01"), "opened_on")):
        with pytest.raises(DomainError) as exc:
            attempt(**bad)
        assert exc.value.field == field, bad
    special = attempt(kind="special", depts=[SCJG, STHJ, SCJG], checklist=["执法主体资格", " ", "全过程记录"])
    assert special.payload["depts"] == [SCJG, STHJ] and special.payload["checklist"] == ["执法主体资格", "全过程记录"]


def test_special_campaign_tracks_each_department_separately_and_closes_only_when_all_settled():
    case, facts = run(opened(kind="special", depts=(SCJG, STHJ), checklist=["证件管理", "裁量基准"], origin="initiative",
                             refs=[]),
                      issued(target=SCJG, doc_kind="notice", doc_no="通1"),
                      issued(target=STHJ, doc_kind="notice", doc_no="通2"),
                      replied(dept=SCJG, on="2024-05-10"),
                      lambda c: sv.verify(c, CASE, target=SCJG, passed=True, at=at("2024-05-11"), dept=SFJ, event_id="v"))
    assert [t.status for t in case.tracks.values()] == ["settled", "awaiting_reply"]
    with pytest.raises(IllegalTransitionError):
        sv.close(case, CASE, conclusion="办结", at=at("2024-05-12"), dept=SFJ, event_id="c")
    [f] = sv.evaluate(case, at("2024-05-30"))
    assert f.dept == STHJ
    with pytest.raises(IllegalTransitionError):   # document numbers are unique within the case
        issued(target=STHJ, doc_kind="opinion", doc_no="通1", on="2024-05-12")(case)


def test_issue_document_refusals():
    case, _ = run(opened())
    with pytest.raises(NotFoundError):
        issued(target=STHJ)(case)
    with pytest.raises(DomainError):
        issued(reply_due="2024-05-01")(case)
    with pytest.raises(DomainError):
        issued(rectification_due="2024-06-01")(case)      # no rectification asked
    with pytest.raises(IllegalTransitionError):            # nothing to reply to yet
        replied()(case)
    with pytest.raises(NotFoundError):
        replied()(None)


# ---- facts reported through the ingress (admit) ----------------------------------------------------------

def test_admit_refuses_facts_reported_by_the_wrong_unit():
    case, facts = run(opened(), issued())
    foreign_reply = Fact("e1", sv.REPLIED, at("2024-05-08"), STHJ,
                         {"case_id": CASE, "dept": STHJ, "replied_on": "2024-05-08", "content": "答复"})
    with pytest.raises(NotOwnerError):
        sv.admit(case, foreign_reply)
    on_behalf = Fact("e2", sv.REPLIED, at("2024-05-08"), STHJ,
                     {"case_id": CASE, "dept": SCJG, "replied_on": "2024-05-08", "content": "答复"})
    with pytest.raises(NotOwnerError):
        sv.admit(case, on_behalf)
    own = Fact("e3", sv.REPLIED, at("2024-05-08"), SCJG,
               {"case_id": CASE, "dept": SCJG, "replied_on": "2024-05-08", "content": "答复"})
    sv.admit(case, own)   # accepted
    with pytest.raises(NotOwnerError):   # a department cannot open or decide
        sv.admit(None, Fact("e4", sv.OPENED, T0, SCJG, {"case_id": "X", "kind": "routine", "depts": [SCJG]}))
    sv.admit(None, own)   # a reply delivered before its case is kept (delivery is not ordered)...
    held = sv.case_from_facts([own])
    assert held.anomalies and not held.opened and sv.evaluate(held, at("2024-06-30")) == []
    # ... and folded in time order once the case arrives
    case_then = sv.case_from_facts(facts + [Fact(own.event_id, own.type, own.occurred_at, own.dept, own.payload,
                                                 seq=0)])
    assert case_then.tracks[SCJG].replied_on == date(2024, 5, 8)
    with pytest.raises(NotOwnerError):
        ib.admit(entry(finding_fact("raised", T0)), Fact("e5", ib.ACKNOWLEDGED, T0, SCJG, {"finding_key": KEY}))
    ib.admit(None, Fact("e6", ib.ACKNOWLEDGED, T0, SFJ, {"finding_key": KEY}))   # kept until its finding arrives
    ib.admit(None, finding_fact("raised", T0))   # findings come from any service


def test_a_case_opened_from_a_finding_handles_it_without_closing_it():
    raised = finding_fact("raised", T0, severity="critical")
    link = ib.link_case(entry(raised), KEY, case_id="JD-1", at=T0 + timedelta(hours=1), dept=SFJ, event_id="l")
    e = entry(raised, link)
    assert (e.state, e.case_ids, e.open) == ("in_case", ["JD-1"], True)
    assert not ib.escalated(e, T0 + timedelta(days=60))
    with pytest.raises(IllegalTransitionError):
        ib.link_case(e, KEY, case_id="JD-1", at=T0, dept=SFJ, event_id="l2")
    assert entry(raised, link, finding_fact("resolved", T0 + timedelta(days=3))).state == "resolved"
