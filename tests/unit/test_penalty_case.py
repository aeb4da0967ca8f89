"""The penalty case state machine: fold, held/anomaly handling, commands, properties."""
import json
import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.common.errors import DomainError, IllegalTransitionError
from services.penalty.domain import case as pc
from services.penalty.domain.case import Case, Fact, fold, invariant_violations

DEPT = "370322-scjg"
CID = "370322-scjg-2026-0042"
PARTY = {"type": "org", "id": "91370322MA3C4XYZ1K", "name": "高青县惠民副食超市有限公司"}
TEAM = ["37032200123", "37032200456"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+08:00")


def fact(event_id: str, type_: str, when: str, dept: str = DEPT, **payload) -> Fact:
    return Fact(event_id, type_, at(when), dept, {"case_id": CID, **payload})


class Story:
    """Drives a case through the strict commands, keeping the fact log like the service would."""

    def __init__(self, case_id: str = CID, dept: str = DEPT):
        self.case_id, self.dept, self.facts = case_id, dept, []

    @property
    def case(self) -> Case:
        return fold(self.facts, self.case_id)

    def do(self, command, when: str, **kwargs) -> Fact:
        if command in (pc.file_case, pc.decide_on_spot):
            kwargs["dept"] = self.dept
        new = command(self.case, at=at(when), event_id=f"e{len(self.facts) + 1:03d}", **kwargs)
        self.facts.append(new)
        return new


def full_story() -> Story:
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C37031700100", party=PARTY, case_no="高市监立〔2026〕42号")
    s.do(pc.record_act, "2026-03-03T09:00", act_kind="seizure", officers=TEAM, av_recorded=True,
         measures={"sales_amount": 8600}, text="扣押过期酸奶42箱")
    s.do(pc.notify, "2026-03-20T10:00", hearing_right=True, proposed_kinds=["fine"], proposed_fine=50000)
    s.do(pc.request_hearing, "2026-03-23T10:00")
    s.do(pc.notify_hearing, "2026-03-24T10:00", hearing_at=at("2026-04-08T09:30"))
    s.do(pc.hold_hearing, "2026-04-08T09:30", officers=["37032200789"], av_recorded=True)
    s.do(pc.review, "2026-04-10T10:00", passed=True, reviewer="张丽")
    s.do(pc.discuss, "2026-04-13T15:00", participants=["王建国", "刘洋", "陈静"])
    s.do(pc.decide, "2026-04-15T10:00", decision_no="高市监罚〔2026〕42号", kinds=["fine", "confiscation"],
         party=PARTY, act_code="FOOD-EXPIRED-SALE", fine_amount=50000, confiscation_amount=8600, tier="一般")
    s.do(pc.serve, "2026-04-16T15:00", method="direct")
    s.do(pc.publish, "2026-04-17T09:00", url="https://www.gaoqing.gov.cn/xzcf/42.html")
    s.do(pc.file_major_penalty, "2026-04-20T09:00")
    s.do(pc.record_payment, "2026-04-25T11:00", amount=50000)
    s.do(pc.execute, "2026-04-28T09:00")
    s.do(pc.close, "2026-04-29T09:00", reason="executed")
    s.do(pc.archive, "2026-05-06T09:00")
    return s


def test_full_normal_procedure_reaches_archived_with_a_complete_record():
    s = full_story()
    case = s.case
    assert case.stage == "archived"
    assert case.applied == [f.event_id for f in s.facts] and not case.held and not case.anomalies
    d = case.decision
    assert (d.fine_amount, d.kinds, d.paid_amount) == (50000, ("fine", "confiscation"), 50000)
    assert d.party["id"] == PARTY["id"] and d.item_code == "C37031700100"
    # 全过程记录: who, when, what, text/av
    seizure = case.record[1]
    assert (seizure.label, seizure.officers, seizure.av_recorded) == ("调查取证", tuple(TEAM), True)
    assert seizure.text == "扣押过期酸奶42箱"
    assert [r.label for r in case.record][-2:] == ["结案", "归档"]
    assert invariant_violations(case) == []


def test_any_delivery_order_gives_the_same_case():
    s = full_story()
    expected = s.case.to_dict()
    shuffled = s.facts[:]
    random.Random(7).shuffle(shuffled)
    assert fold(shuffled, CID).to_dict() == expected


def test_snapshot_is_json_serialisable():
    snapshot = full_story().case.to_dict()
    assert json.loads(json.dumps(snapshot, ensure_ascii=False))["stage_label"] == "已归档"
    assert snapshot["decisions"][0]["served_at"] == "2026-04-16T15:00:00+08:00"


def test_fact_round_trips_through_dict_and_rejects_naive_times():
    f = fact("e1", "case.filed", "2026-03-02T10:00", item_code="C1")
    assert Fact.from_dict(f.to_dict()) == f
    envelope = {**f.to_dict(), "schema_version": 1, "source": "x", "occurred_at": "2026-03-02T02:00:00Z"}
    assert Fact.from_dict(envelope).occurred_at == f.occurred_at
    with pytest.raises(DomainError):
        Fact("e1", "case.filed", datetime(2026, 3, 2), DEPT, {})
    with pytest.raises(DomainError):
        Fact.from_dict({**f.to_dict(), "occurred_at": "2026-03-02T10:00:00"})


def test_fact_missing_its_prerequisite_is_held_then_applied_when_it_arrives():
    filed = fact("e1", "case.filed", "2026-03-02T10:00", item_code="C1")
    served = fact("e9", "case.served", "2026-04-16T15:00", method="direct")
    case = fold([filed, served])
    assert [(r.fact.event_id, r.reason) for r in case.held] == [("e9", "尚未作出处罚决定")]
    assert case.stage == "filed"
    # the rest of the log arrives later; the held fact is simply re-tried by the next fold
    rest = [
        fact("e2", "case.investigated", "2026-03-03T09:00", act_kind="evidence", officers=TEAM),
        fact("e3", "case.notified", "2026-03-20T10:00", hearing_right=False),
        fact("e4", "case.decided", "2026-04-15T10:00", decision_no="N1", kinds=["warning"], party=PARTY,
             act_code="A1"),
    ]
    case = fold([served, filed, *rest])
    assert not case.held and case.stage == "served" and "e9" in case.applied


def test_facts_before_filing_are_held():
    case = fold([fact("e2", "case.investigated", "2026-03-03T09:00", act_kind="evidence", officers=TEAM)])
    assert not case.exists and case.held[0].reason == "案件尚未立案"


def test_decided_after_archived_is_an_anomaly():
    s = full_story()
    late = fact("e99", "case.decided", "2026-06-01T10:00", decision_no="N2", kinds=["fine"], fine_amount=1,
                party=PARTY, act_code="A1")
    case = fold([*s.facts, late])
    assert [(r.fact.event_id, r.reason) for r in case.anomalies] == [("e99", "案件已归档，不能再记录“作出处罚决定”")]
    assert case.stage == "archived" and len(case.decisions) == 1


def test_served_before_the_decision_it_serves_is_an_anomaly_not_held():
    s = full_story()
    facts = [f for f in s.facts if f.type != "case.served"]
    early = fact("e98", "case.served", "2026-04-14T10:00", method="direct")  # one day before the decision
    case = fold([*facts, early])
    assert [r.fact.event_id for r in case.anomalies] == ["e98"]
    assert "早于其前置环节" in case.anomalies[0].reason
    # what needs a valid service waits for one, visibly
    assert [(r.fact.type, r.reason) for r in case.held][:2] == [
        ("case.paid", "处罚决定书尚未送达"), ("case.executed", "处罚决定书尚未送达")]
    assert case.stage == "decided"


def test_duplicate_event_ids_are_ignored():
    s = full_story()
    case = fold(s.facts + s.facts[:3])
    assert case.duplicates == ["e001", "e002", "e003"] and case.to_dict()["applied"] == s.case.applied


def test_facts_of_another_department_or_case_are_anomalies():
    filed = fact("e1", "case.filed", "2026-03-02T10:00", item_code="C1")
    foreign = fact("e2", "case.investigated", "2026-03-03T09:00", dept="370322-hbj", act_kind="evidence", officers=TEAM)
    other = Fact("e3", "case.suspended", at("2026-03-04T09:00"), DEPT, {"case_id": "other-case"})
    case = fold([filed, foreign, other], CID)
    assert {r.fact.event_id for r in case.anomalies} == {"e2", "e3"}
    assert "部门" in case.anomalies[0].reason and "案件" in case.anomalies[1].reason


def test_decision_waits_for_notice_and_for_a_requested_hearing():
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C1")
    s.do(pc.record_act, "2026-03-03T09:00", act_kind="evidence", officers=TEAM)
    decided = fact("e9", "case.decided", "2026-04-15T10:00", decision_no="N1", kinds=["fine"], fine_amount=100,
                   party=PARTY, act_code="A1")
    assert "告知" in fold([*s.facts, decided]).held[0].reason
    s.do(pc.notify, "2026-03-20T10:00", hearing_right=True)
    s.do(pc.request_hearing, "2026-03-23T10:00")
    assert fold([*s.facts, decided]).held[0].reason == "当事人已申请听证，听证尚未举行"
    with pytest.raises(IllegalTransitionError, match="听证尚未举行"):
        pc.decide(s.case, at=at("2026-04-15T10:00"), event_id="x", decision_no="N1", kinds=["fine"],
                  fine_amount=100, party=PARTY, act_code="A1")


def test_suspension_holds_steps_until_resumed():
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C1")
    s.do(pc.record_act, "2026-03-03T09:00", act_kind="evidence", officers=TEAM)
    s.do(pc.suspend, "2026-03-05T09:00", reason="当事人下落不明")
    with pytest.raises(IllegalTransitionError, match="中止"):
        pc.notify(s.case, at=at("2026-03-06T09:00"), event_id="x", hearing_right=False)
    with pytest.raises(IllegalTransitionError, match="已处于中止状态"):
        pc.suspend(s.case, at=at("2026-03-06T09:00"), event_id="x")
    s.do(pc.resume, "2026-03-15T09:00")
    s.do(pc.notify, "2026-03-16T09:00", hearing_right=False)
    case = s.case
    assert case.stage == "notified" and not case.suspended
    assert (case.suspensions[0].start, case.suspensions[0].end) == (at("2026-03-05T09:00"), at("2026-03-15T09:00"))


def test_simple_procedure_on_the_spot_creates_and_serves_the_case():
    s = Story(case_id="370322-cgj-2026-0118", dept="370322-cgj")
    s.do(pc.decide_on_spot, "2026-05-06T16:20", decision_no="高城管当罚〔2026〕118号", kinds=["fine"],
         fine_amount=100, party={"type": "person", "id": "370322199001011234", "name": "孙某"},
         act_code="STREET-VENDING", item_code="C37031900020", officers=["37032205011", "37032205012"],
         paid_on_spot=True)
    case = s.case
    assert (case.stage, case.procedure, case.dept) == ("served", "simple", "370322-cgj")
    assert case.decision.on_spot and case.decision.paid_amount == 100 and case.acts[0].kind == "on_site"
    s.do(pc.close, "2026-05-06T17:00", reason="executed")
    assert s.case.stage == "closed"


def test_on_the_spot_penalty_is_refused_in_a_normal_case():
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C1")
    with pytest.raises(IllegalTransitionError, match="普通程序"):
        pc.decide_on_spot(s.case, dept=DEPT, at=at("2026-03-02T11:00"), event_id="x", decision_no="N", kinds=["warning"],
                          party=PARTY, act_code="A", item_code="C1", officers=TEAM)


def test_revoked_decision_can_be_remade_and_change_keeps_history():
    s = full_story()
    s.facts = [f for f in s.facts if f.type not in ("case.closed", "case.archived", "case.executed")]
    s.do(pc.change_decision, "2026-05-01T09:00", by="reconsideration", fine_amount=30000, tier="从轻")
    d = s.case.decision
    assert (d.fine_amount, d.tier, len(d.changes)) == (30000, "从轻", 1)
    s.do(pc.revoke_decision, "2026-05-10T09:00", by="court", reason="判决撤销，责令重作")
    with pytest.raises(IllegalTransitionError, match="已撤销"):
        pc.serve(s.case, at=at("2026-05-11T09:00"), event_id="x", method="direct")
    s.do(pc.withdraw_publication, "2026-05-11T09:00")
    s.do(pc.decide, "2026-05-20T09:00", decision_no="高市监罚〔2026〕57号", kinds=["warning"], party=PARTY,
         act_code="FOOD-EXPIRED-SALE")
    case = s.case
    assert [d.decision_no for d in case.decisions] == ["高市监罚〔2026〕42号", "高市监罚〔2026〕57号"]
    assert case.stage == "decided" and case.decisions[0].revoked and not case.decision.revoked


def test_commands_refuse_illegal_steps_with_a_chinese_reason():
    s = full_story()
    with pytest.raises(IllegalTransitionError) as err:
        pc.decide(s.case, at=at("2026-06-01T10:00"), event_id="x", decision_no="N", kinds=["warning"],
                  party=PARTY, act_code="A")
    assert str(err.value) == "不能作出处罚决定：案件已归档，不能再记录“作出处罚决定”"
    with pytest.raises(IllegalTransitionError, match="不能重复立案"):
        pc.file_case(s.case, dept=DEPT, at=at("2026-06-01T10:00"), event_id="x", item_code="C1")
    with pytest.raises(IllegalTransitionError, match="已归档"):
        pc.record_act(s.case, at=at("2026-06-01T10:00"), event_id="y", act_kind="evidence", officers=TEAM)
    with pytest.raises(IllegalTransitionError, match="须晚于案件最近一条记录"):
        pc.publish(s.case, at=at("2026-01-01T10:00"), event_id="x")


def test_a_command_at_the_same_instant_must_not_sort_before_the_last_fact():
    s = full_story()
    s.facts = [f for f in s.facts if f.type not in ("case.closed", "case.archived", "case.executed")]
    s.do(pc.revoke_decision, "2026-05-10T09:00", by="court")
    # a re-decision stamped with the revocation's instant would replay before it
    with pytest.raises(IllegalTransitionError, match="须晚于"):
        pc.decide(s.case, at=at("2026-05-10T09:00"), event_id="x", decision_no="N2", kinds=["warning"],
                  party=PARTY, act_code="A")


def test_commands_validate_values():
    s = Story()
    s.do(pc.file_case, "2026-03-02T10:00", item_code="C1")
    with pytest.raises(DomainError) as err:
        pc.record_act(s.case, at=at("2026-03-03T10:00"), event_id="x", act_kind="teleport", officers=TEAM)
    assert err.value.field == "act_kind"
    s.do(pc.record_act, "2026-03-03T10:00", act_kind="evidence", officers=TEAM)
    s.do(pc.notify, "2026-03-04T10:00", hearing_right=False)
    for bad in ({"fine_amount": -1, "kinds": ["fine"]}, {"fine_amount": 100, "kinds": ["warning"]},
                {"fine_amount": 0, "kinds": ["jail"]}):
        with pytest.raises(DomainError):
            pc.decide(s.case, at=at("2026-03-05T10:00"), event_id="x", decision_no="N", party=PARTY,
                      act_code="A", **bad)
    with pytest.raises(DomainError, match="当事人"):
        pc.decide(s.case, at=at("2026-03-05T10:00"), event_id="x", decision_no="N", kinds=[],
                  party={"type": "alien", "id": "1", "name": "x"}, act_code="A")


# -- properties --

BASE = at("2026-03-02T09:00")
KIND_CHOICES = [[], ["warning"], ["fine"], ["fine", "confiscation"], ["licence_revocation"]]


def payload_for(type_: str, draw) -> dict:
    choice = draw(st.integers(0, 4))
    payloads = {
        "case.filed": {"item_code": "C1", "procedure": ["normal", "simple"][choice % 2], "party": PARTY},
        "case.investigated": {"act_kind": ["evidence", "seizure", "on_site"][choice % 3], "officers": TEAM[: choice % 3],
                              "measures": {"sales_amount": choice * 30000}},
        "case.testing_started": {"kind": "testing"},
        "case.extended": {"days": 10 * (choice + 1), "approved": choice % 2 == 0},
        "case.notified": {"hearing_right": choice % 2 == 0},
        "case.hearing_notified": {"hearing_at": (BASE + timedelta(days=choice)).isoformat()},
        "case.hearing_held": {"outcome": ["held", "withdrawn", "absent"][choice % 3]},
        "case.legal_reviewed": {"passed": choice % 2 == 0},
        "case.decided": {"decision_no": f"N{choice}", "kinds": KIND_CHOICES[choice],
                         "fine_amount": 5000.0 * choice if "fine" in KIND_CHOICES[choice] else 0, "party": PARTY,
                         "act_code": "A1"},
        "case.decided_on_spot": {"decision_no": "S1", "kinds": ["fine"], "fine_amount": 100, "party": PARTY,
                                 "act_code": "A1", "item_code": "C1", "officers": TEAM, "paid_on_spot": choice == 1},
        "case.served": {"method": "direct"},
        "case.paid": {"amount": 1000.0 * choice},
        "case.decision_changed": {"by": "self", "fine_amount": 100.0 * choice},
        "case.decision_revoked": {"by": "court"},
        "case.closed": {"reason": "other"},
    }
    return payloads.get(type_, {})


@st.composite
def fact_logs(draw):
    """Random facts; half the time in roughly lifecycle order (deep cases) with some times jittered."""
    types = draw(st.lists(st.sampled_from(pc.EVENT_TYPES + ("case.teleported",)), min_size=1, max_size=30))
    times = [BASE + timedelta(days=draw(st.integers(0, 60)), hours=draw(st.sampled_from([0, 0, 3]))) for _ in types]
    if draw(st.booleans()):
        types += [t for t in pc.EVENT_TYPES if draw(st.integers(0, 9)) < 7]
        types = sorted(types, key=lambda t: pc.TYPE_ORDER.get(t, 99))
        times = sorted(BASE + timedelta(days=draw(st.integers(0, 60))) for _ in types)
        for i in draw(st.lists(st.integers(0, len(times) - 1), max_size=3)):
            times[i] -= timedelta(days=draw(st.integers(1, 20)))
    facts = []
    for i, (type_, when) in enumerate(zip(types, times)):
        dept = draw(st.sampled_from([DEPT] * 19 + ["370322-hbj"]))
        facts.append(Fact(f"e{i:02d}", type_, when, dept, {"case_id": CID, **payload_for(type_, draw)}))
    duplicates = draw(st.lists(st.sampled_from(facts), max_size=3))
    return facts + duplicates


def accounted(case: Case, log: list[Fact]) -> bool:
    ids = [f.event_id for f in log]
    outcome = case.applied + [r.fact.event_id for r in case.held + case.anomalies]
    return sorted(outcome) == sorted(set(ids)) and len(case.duplicates) == len(ids) - len(set(ids))


@hsettings(max_examples=300, deadline=None)
@given(fact_logs(), st.randoms(use_true_random=False))
def test_random_fact_logs_never_break_the_case_nor_lose_a_fact(log, rnd):
    case = fold(log, CID)
    assert invariant_violations(case) == []
    assert accounted(case, log)
    assert all(r.reason for r in case.held + case.anomalies)
    shuffled = log[:]
    rnd.shuffle(shuffled)
    assert fold(shuffled, CID).to_dict() == case.to_dict()


@st.composite
def legal_stories(draw) -> Story:
    """A legal case history built through the strict commands, with optional branches."""
    s, clock = Story(), [BASE]

    def step(command, **kwargs):
        clock[0] += timedelta(minutes=draw(st.integers(1, 72 * 60)))
        s.do(command, clock[0].strftime("%Y-%m-%dT%H:%M"), **kwargs)

    simple = draw(st.booleans())
    step(pc.file_case, item_code="C1", party=PARTY, procedure="simple" if simple else "normal")
    if draw(st.booleans()):
        step(pc.transfer_to_police, police_unit="高青县公安局")
    step(pc.record_act, act_kind=draw(st.sampled_from(pc.ACT_KINDS)), officers=TEAM, av_recorded=draw(st.booleans()))
    if draw(st.booleans()):
        step(pc.suspend)
        step(pc.resume)
    if draw(st.booleans()):
        step(pc.start_testing, kind="appraisal")
        step(pc.complete_testing)
    if draw(st.booleans()):
        step(pc.extend, days=30, approved=True)
    if not simple:
        hearing = draw(st.booleans())
        step(pc.notify, hearing_right=hearing)
        if hearing and draw(st.booleans()):
            step(pc.request_hearing)
            step(pc.notify_hearing, hearing_at=clock[0] + timedelta(days=10))
            step(pc.hold_hearing, outcome=draw(st.sampled_from(pc.HEARING_OUTCOMES)))
        if draw(st.booleans()):
            step(pc.review, passed=True)
        if draw(st.booleans()):
            step(pc.discuss)
    kinds = draw(st.sampled_from([[], ["warning"], ["fine"]]))
    fine = 100 if kinds == ["fine"] else 0
    step(pc.decide, decision_no="N1", kinds=kinds, fine_amount=fine, party=PARTY, act_code="A1")
    if draw(st.booleans()):
        step(pc.publish)
    step(pc.serve, method="direct")
    if fine:
        step(pc.record_payment, amount=fine)
    if draw(st.booleans()):
        step(pc.execute)
    step(pc.close, reason="executed")
    if draw(st.booleans()):
        step(pc.archive)
    return s


@hsettings(max_examples=150, deadline=None)
@given(legal_stories(), st.randoms(use_true_random=False))
def test_any_permutation_of_a_legal_history_folds_to_the_same_case(story, rnd):
    case = story.case
    assert case.applied == [f.event_id for f in story.facts] and not case.held and not case.anomalies
    assert invariant_violations(case) == []
    shuffled = story.facts[:]
    rnd.shuffle(shuffled)
    assert fold(shuffled, CID).to_dict() == case.to_dict()
