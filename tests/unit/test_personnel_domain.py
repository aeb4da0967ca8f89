"""Personnel domain: folds, credential history, can_act verdicts and findings. No I/O."""
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from plugins.builtin.presets import PRESETS
from services.common.errors import IllegalTransitionError, NotFoundError
from services.common.findings import diff_findings
from services.personnel import domain as d
from services.personnel.domain import Fact, PersonnelSettings

CST = timezone(timedelta(hours=8))
SCJG, STHJ, SFJ = "511322-scjg", "511322-sthj", "511322-sfj"
_ids = itertools.count(1)


def at(text: str) -> datetime:
    """'2024-06-10' -> 09:00 China time that day; a full 'YYYY-MM-DDTHH:MM' is taken as given."""
    return datetime.fromisoformat(text if "T" in text else f"{text}T09:00").replace(tzinfo=CST)


def fact(type_, day, *, officer_id="O7", dept=SCJG, event_id=None, occurred=None, **payload) -> Fact:
    return d.check_fact(Fact(event_id or f"e{next(_ids)}", type_, occurred or at(day) + timedelta(hours=1),
                             dept, {"officer_id": officer_id, **payload}))


def registered(day="2024-01-02", kind="officer", status=None, **kw):
    return fact("officer.registered", day, name="李明", agency_id="A1", kind=kind, status=status, **kw)


def updated(day, **kw):
    return fact("officer.updated", day, **kw)


def issued(no="C1", day="2024-01-10", valid_to="2029-01-09", areas=("market",), level="provincial",
           issuer="四川省人民政府", valid_from=None, **kw):
    return fact("credential.issued", day, credential_no=no, issuer=issuer, issuer_level=level, areas=list(areas),
                regions=["511322"], issued_on=day, valid_from=valid_from or day, valid_to=valid_to, **kw)


def action(type_, no, day, **kw):
    field = {"suspended": "suspended_on", "restored": "restored_on", "revoked": "revoked_on",
             "cancelled": "cancelled_on", "filed": "filed_on"}[type_]
    reason = {"suspended": "涉嫌违纪接受调查", "revoked": "考核不合格", "cancelled": "退休"}.get(type_)
    return fact(f"credential.{type_}", day, credential_no=no, **{field: day}, **({"reason": reason} if reason else {}),
                **kw)


def trained(day, hours, **kw):
    return fact("training.completed", day, completed_on=day, hours=hours, topic="《行政处罚法》专题培训", **kw)


def officer(*facts):
    return d.officer_from_facts(facts)


def rule_ids(findings):
    return sorted(f.rule_id for f in findings)


# Settings

def test_settings_defaults_follow_seed_001_and_accept_overrides():
    s = PersonnelSettings()
    assert (s.expiry_warning_days, s.training_hours_per_year, s.training_due) == (30, 20, "11-15")
    assert PersonnelSettings.from_mapping(expiry_warning_days=60, training_kinds=["officer", "auxiliary"]) == \
        PersonnelSettings(expiry_warning_days=60, training_kinds=("officer", "auxiliary"))


def test_settings_reject_unknown_names_and_impossible_dates():
    with pytest.raises(ValueError, match="unknown personnel settings"):
        PersonnelSettings.from_mapping(training_min_hour=20)
    with pytest.raises(ValueError, match="MM-DD"):
        PersonnelSettings(training_due="02-30")


def test_every_preset_personnel_section_is_valid_settings():
    for preset in PRESETS.values():
        PersonnelSettings.from_mapping(**preset.get("personnel", {}))


# Facts

def test_fact_takes_effect_from_local_midnight_of_its_payload_date():
    f = action("suspended", "C1", "2024-06-03", occurred=at("2024-06-05T16:00"))
    assert d.effective_at(f) == datetime(2024, 6, 3, tzinfo=CST)
    assert d.effective_at(registered("2024-01-02")) == at("2024-01-02") + timedelta(hours=1)


@pytest.mark.parametrize("make, error", [
    (lambda: fact("credential.suspended", "2024-03-01", credential_no="C1", suspended_on="2024-02-30", reason="x"),
     d.InvalidFactError),
    (lambda: issued(valid_from="2024-05-01", valid_to="2024-04-30"), d.InvalidFactError),
    (lambda: fact("credential.revoked", "2024-01-01", revoked_on="2024-01-01", reason="x"), d.InvalidFactError),
    (lambda: fact("case.filed", "2024-01-01"), d.InvalidFactError),
    (lambda: Fact("e1", "officer.registered", datetime(2024, 1, 1), SCJG, {"officer_id": "O7"}), d.NaiveTimeError),
])
def test_impossible_fact_is_refused_at_the_door(make, error):
    with pytest.raises(error):
        make()


def test_fact_round_trips_through_storage_dict():
    f = issued()
    again = Fact.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and d.effective_at(again) == d.effective_at(f)


# Folding the log: history, out-of-order, duplicates, anomalies

def test_credential_status_answers_for_any_past_time():
    o = officer(registered(), issued("C1", "2024-01-10", valid_to="2024-12-31"),
                action("suspended", "C1", "2024-06-03"), action("restored", "C1", "2024-07-15"),
                issued("C2", "2024-01-10", valid_to="2029-01-09"), action("revoked", "C2", "2024-09-01"))
    c1, c2 = o.credentials["C1"], o.credentials["C2"]
    assert [d.credential_status(c1, at(t)) for t in ("2024-01-09", "2024-03-01", "2024-06-03T00:00", "2024-07-14T23:59",
                                                      "2024-07-15T00:00", "2024-12-31T23:59", "2025-01-01T00:00")] == \
        ["not_issued", "valid", "suspended", "suspended", "valid", "valid", "expired"]
    assert [d.credential_status(c2, at(t)) for t in ("2024-08-31T23:59", "2024-09-01T00:00", "2030-01-01")] == \
        ["valid", "revoked", "revoked"]


def test_suspension_delivered_before_its_issue_is_held_then_applied_in_time_order():
    suspend = action("suspended", "C1", "2024-06-03")
    early = officer(registered(), suspend)
    # nothing to suspend yet: kept in the log, no effect, not an anomaly
    assert early.pending == [suspend.event_id] and early.anomalies == [] and early.credentials == {}
    late = d.apply(early, issued("C1", "2024-01-10"))
    assert late.pending == [] and late.anomalies == []
    assert d.credential_status(late.credentials["C1"], at("2024-05-01")) == "valid"
    assert d.credential_status(late.credentials["C1"], at("2024-06-04")) == "suspended"


def test_restore_delivered_before_its_suspension_settles_when_the_suspension_arrives():
    base = officer(registered(), issued())
    restore = action("restored", "C1", "2024-07-15")
    alone = d.apply(base, restore)
    assert [a.event_id for a in alone.anomalies] == [restore.event_id]
    settled = d.apply(alone, action("suspended", "C1", "2024-06-03"))
    assert settled.anomalies == []
    assert d.credential_status(settled.credentials["C1"], at("2024-07-01")) == "suspended"
    assert d.credential_status(settled.credentials["C1"], at("2024-07-16")) == "valid"


def test_every_delivery_order_folds_to_the_same_state():
    facts = [registered(), issued(), action("suspended", "C1", "2024-06-03"), action("restored", "C1", "2024-07-15"),
             action("cancelled", "C1", "2025-02-28")]
    expected = d.to_snapshot(officer(*facts), at("2025-03-01"))
    for order in itertools.permutations(facts):
        folded = None
        for f in order:
            folded = d.apply(folded, f)
        assert d.to_snapshot(folded, at("2025-03-01")) == expected


def test_same_day_suspension_and_issue_apply_issue_first():
    o = officer(action("suspended", "C1", "2024-01-10"), issued("C1", "2024-01-10"))
    assert o.anomalies == [] and d.credential_status(o.credentials["C1"], at("2024-01-10")) == "suspended"


def test_duplicate_fact_changes_nothing():
    issue = issued()
    o = officer(registered(), issue)
    assert d.apply(o, issue) is o
    copy = Fact(issue.event_id, issue.type, issue.occurred_at, issue.dept, dict(issue.payload), seq=9)
    assert d.officer_from_facts([*o.facts, copy]).version == o.version == 2


@pytest.mark.parametrize("facts, reason", [
    ([issued(), action("restored", "C1", "2024-03-01")], "未被暂扣，不能恢复"),
    ([issued(), action("suspended", "C1", "2024-03-01"), action("suspended", "C1", "2024-04-01")], "不能重复暂扣"),
    ([issued(), action("revoked", "C1", "2024-03-01"), action("suspended", "C1", "2024-04-01")], "已收回，不能再暂扣"),
    ([issued(), action("cancelled", "C1", "2024-03-01"), action("revoked", "C1", "2024-04-01")], "已注销，不能再收回"),
    ([issued(), action("revoked", "C1", "2024-03-01"), action("filed", "C1", "2024-04-01")], "已收回，不能再备案"),
    ([issued(day="2024-03-01"), action("suspended", "C1", "2024-02-01")], "暂扣日期早于发证日期"),
    ([issued(), issued()], "重复发证"),
    ([updated("2023-12-01", status="left"), registered("2024-01-02")], "人员变更早于人员登记"),
])
def test_fact_illegal_even_in_time_order_is_an_anomaly_not_an_error(facts, reason):
    o = officer(registered(), *facts) if facts[-1].type != "officer.registered" else officer(*facts)
    assert len(o.anomalies) == 1 and reason in o.anomalies[0].reason


def test_update_without_any_registration_waits():
    o = officer(updated("2024-03-01", status="left"))
    assert not o.registered and len(o.pending) == 1 and o.anomalies == []


def test_fact_of_another_officer_is_a_routing_error():
    with pytest.raises(d.FactRoutingError):
        d.apply(officer(registered()), issued(officer_id="O8"))


def test_officer_status_history_and_later_registration_describes_the_past():
    o = officer(registered("2024-06-01"), updated("2024-09-01", status="left"))
    assert o.status_at(at("2024-01-01")) == "active"  # onboarding records a person who already worked
    assert o.status_at(at("2024-09-02")) == "left"
    assert o.active_windows() == [(None, at("2024-09-01") + timedelta(hours=1))]


# Strict commands (Zhifa-originated)

def test_suspend_command_returns_the_fact_to_apply_and_publish():
    o = officer(registered(), issued())
    f = d.suspend_credential(o, "C1", at("2024-06-03T15:00"), "拒不出示证件", event_id="z1", dept=SFJ)
    assert (f.type, f.dept, f.payload) == ("credential.suspended", SFJ, {
        "officer_id": "O7", "credential_no": "C1", "suspended_on": "2024-06-03", "reason": "拒不出示证件"})
    assert d.credential_status(d.apply(o, f).credentials["C1"], at("2024-06-04")) == "suspended"


@pytest.mark.parametrize("facts, command, error", [
    ([issued(), action("suspended", "C1", "2024-03-01")], lambda o: d.suspend_credential(
        o, "C1", at("2024-04-01"), "再次暂扣", event_id="z", dept=SFJ), IllegalTransitionError),
    ([issued()], lambda o: d.restore_credential(o, "C1", at("2024-04-01"), event_id="z", dept=SFJ),
     IllegalTransitionError),
    ([issued(), action("revoked", "C1", "2024-03-01")], lambda o: d.cancel_credential(
        o, "C1", at("2024-04-01"), "退休", event_id="z", dept=SFJ), IllegalTransitionError),
    ([issued(day="2024-03-01")], lambda o: d.revoke_credential(
        o, "C1", at("2024-02-01"), "倒签", event_id="z", dept=SFJ), IllegalTransitionError),
    ([issued()], lambda o: d.file_credential(o, "C9", at("2024-04-01"), event_id="z", dept=SFJ), NotFoundError),
])
def test_illegal_command_raises_a_named_error(facts, command, error):
    with pytest.raises(error):
        command(officer(registered(), *facts))


# can_act

def test_valid_officer_with_covering_credential_may_act():
    v = d.can_act(officer(registered(), issued()), "market", at("2024-05-01"), region="511322")
    assert v.allowed and v.reasons == () and v.credential_no == "C1"


@pytest.mark.parametrize("facts, when, code", [
    ([registered()], "2024-05-01", "no_credential"),
    ([registered(), issued(day="2024-06-01")], "2024-05-01", "no_credential"),
    ([registered(), issued(valid_to="2024-04-30")], "2024-05-01", "expired"),
    ([registered(), issued(day="2024-01-10", valid_from="2024-06-01")], "2024-05-01", "not_yet_valid"),
    ([registered(), issued(), action("suspended", "C1", "2024-04-01")], "2024-05-01", "suspended"),
    ([registered(), issued(), action("revoked", "C1", "2024-04-01")], "2024-05-01", "revoked"),
    ([registered(), issued(), action("cancelled", "C1", "2024-04-01")], "2024-05-01", "cancelled"),
    ([registered(), issued(areas=["environment"])], "2024-05-01", "area_not_covered"),
    ([registered(kind="auxiliary"), issued()], "2024-05-01", "auxiliary"),
    ([registered(kind="supervisor"), issued()], "2024-05-01", "not_enforcement_officer"),
    ([registered(), updated("2024-04-01", status="inactive"), issued()], "2024-05-01", "officer_inactive"),
    ([issued()], "2024-05-01", "officer_unknown"),
    ([registered(), issued(level="state_council", issuer="生态环境部")], "2024-05-01", "unfiled"),
])
def test_each_reason_an_officer_may_not_act(facts, when, code):
    v = d.can_act(officer(*facts), "market", at(when))
    assert not v.allowed and code in [r.code for r in v.reasons] and v.credential_no is None
    assert all(r.message for r in v.reasons)


def test_unregistered_officer_and_region_outside_the_credential():
    assert [r.code for r in d.can_act(None, "market", at("2024-05-01")).reasons] == ["officer_unknown", "no_credential"]
    v = d.can_act(officer(registered(), issued()), "market", at("2024-05-01"), region="511302")
    assert [r.code for r in v.reasons] == ["region_not_covered"]


def test_every_reason_is_reported_at_once():
    o = officer(registered(kind="auxiliary"), issued("C1", valid_to="2024-04-30"),
                issued("C2", areas=["environment"]), action("suspended", "C2", "2024-04-01"))
    v = d.can_act(o, "market", at("2024-05-01"))
    assert [(r.code, r.credential_no) for r in v.reasons] == [
        ("auxiliary", None), ("expired", "C1"), ("suspended", "C2"), ("area_not_covered", "C2")]
    assert "辅助人员" in v.message and "；" in v.message


def test_one_good_credential_is_enough():
    o = officer(registered(), issued("C1", valid_to="2024-04-30"), issued("C2"))
    assert d.can_act(o, "market", at("2024-05-01")).credential_no == "C2"


def test_state_council_credential_may_be_used_only_from_its_filing():
    o = officer(registered(), issued("HB1", level="state_council", issuer="生态环境部", areas=["environment"]),
                action("filed", "HB1", "2024-05-20"))
    assert [r.code for r in d.can_act(o, "environment", at("2024-05-19")).reasons] == ["unfiled"]
    assert d.can_act(o, "environment", at("2024-05-20")).allowed


def test_agency_must_be_confirmed_and_published_at_the_time():
    def agency(**kw):
        return d.agency_from_facts([Fact("a1", "agency.registered", at("2024-01-01"), SCJG, {
            "agency_id": "A1", "name": "营山县市场监督管理局", "kind": "statutory", "legal_basis": ["《行政处罚法》第十七条"],
            **kw})])
    o = officer(registered(), issued())
    assert d.can_act(o, "market", at("2024-05-01"), agency=agency(confirmed_on="2024-03-12")).reasons[0].code == \
        "agency_unconfirmed"
    recognised = agency(confirmed_on="2024-03-12", published_on="2024-03-15")
    assert not d.can_act(o, "market", at("2024-03-14"), agency=recognised).allowed
    assert d.can_act(o, "market", at("2024-03-15"), agency=recognised).allowed


def test_naive_time_is_refused():
    with pytest.raises(d.NaiveTimeError):
        d.can_act(officer(registered(), issued()), "market", datetime(2024, 5, 1))


# Rules

def test_expiring_credential_is_reported_within_the_configured_days():
    o = officer(registered(), issued(valid_to="2024-12-31"), trained("2024-03-01", 20))
    assert d.evaluate_officer(o, at("2024-11-30")) == []  # 31 days left
    [f] = d.evaluate_officer(o, at("2024-12-01"))
    assert (f.rule_id, f.severity, f.key, f.evidence["days_left"]) == (
        "PER-CRED-EXPIRING", "info", "PER-CRED-EXPIRING:credential:C1", 30)
    assert "2024-12-31" in f.message
    assert d.evaluate_officer(o, at("2025-01-01")) == []  # expired: no longer "expiring"
    assert rule_ids(d.evaluate_officer(o, at("2024-11-01"), PersonnelSettings(expiry_warning_days=60))) == \
        ["PER-CRED-EXPIRING"]


def test_unfiled_state_council_credential_is_reported_from_issue_until_filed():
    issue = issued("HB1", day="2024-03-28", level="state_council", issuer="生态环境部", areas=["environment"],
                   dept=STHJ)
    o = officer(registered(dept=STHJ), issue, trained("2024-03-01", 20, dept=STHJ))
    [f] = d.evaluate_officer(o, at("2024-03-28"))
    assert (f.rule_id, f.severity, f.subject_id, f.dept) == ("PER-CRED-UNFILED", "warning", "HB1", STHJ)
    # the justice bureau records the filing (备案) of another department's officer's credential
    assert d.evaluate_officer(d.apply(o, action("filed", "HB1", "2024-05-20", dept=SFJ)), at("2024-05-20")) == []
    assert d.evaluate_officer(officer(registered(), issued(), trained("2024-03-01", 20)), at("2024-03-28")) == []


def test_training_hours_are_judged_only_after_the_deadline():
    o = officer(registered(), issued(), trained("2024-05-16", 8), trained("2023-12-20", 30))
    assert "PER-TRAIN-HOURS" not in rule_ids(d.evaluate_officer(o, at("2024-11-15T23:59")))
    [f] = [f for f in d.evaluate_officer(o, at("2024-11-16T00:00")) if f.rule_id == "PER-TRAIN-HOURS"]
    assert (f.severity, f.key, f.evidence["hours"], f.evidence["year"]) == (
        "warning", "PER-TRAIN-HOURS:training_year:O7/2024", 8, 2024)
    # until next year's deadline the finding is about 2024
    assert [f.subject_id for f in d.evaluate_officer(o, at("2025-03-01"))] == ["O7/2024"]
    enough = d.apply(o, trained("2024-11-10", 12))
    assert d.evaluate_officer(enough, at("2024-11-16")) == []


def test_training_duty_spares_auxiliaries_and_officers_registered_after_the_deadline():
    assert d.evaluate_officer(officer(registered(kind="auxiliary")), at("2024-12-01")) == []
    assert d.evaluate_officer(officer(registered("2024-11-20")), at("2024-12-01")) == []
    assert d.evaluate_officer(officer(registered("2024-01-02")), at("2024-03-01")) == []  # 2023 was not theirs


def test_training_progress_is_reported_between_report_date_and_deadline():
    o = officer(registered(), trained("2024-05-16", 8))
    assert d.evaluate_officer(o, at("2024-07-01")) == []
    assert rule_ids(d.evaluate_officer(o, at("2024-07-02"))) == ["PER-TRAIN-PROGRESS"]
    assert rule_ids(d.evaluate_officer(o, at("2024-11-16"))) == ["PER-TRAIN-HOURS"]
    assert d.evaluate_officer(o, at("2024-07-02"), PersonnelSettings(training_report_due=None)) == []


def test_auxiliary_holding_a_credential_is_reported():
    o = officer(registered(kind="auxiliary"), issued())
    assert rule_ids(d.evaluate_officer(o, at("2024-05-01"))) == ["PER-AUX-CREDENTIAL"]
    assert d.evaluate_officer(d.apply(o, action("revoked", "C1", "2024-05-01")), at("2024-05-01")) == []


def test_departed_officer_still_holding_a_credential_is_reported():
    o = officer(registered(), issued(), updated("2024-09-01", status="left"))
    [f] = d.evaluate_officer(o, at("2024-09-02"))
    assert (f.rule_id, f.evidence["officer_status"]) == ("PER-CRED-HOLDER-INACTIVE", "left")
    assert d.evaluate_officer(d.apply(o, action("cancelled", "C1", "2024-09-02")), at("2024-09-02")) == []
    assert d.evaluate_officer(d.apply(o, action("suspended", "C1", "2024-09-02")), at("2024-09-02")) == []


def test_conflicting_and_held_facts_are_reported_after_the_grace_period():
    restore = action("restored", "C1", "2024-03-01")
    o = officer(registered(), issued(), restore, action("filed", "C9", "2024-03-01"), trained("2024-03-01", 20))
    assert d.evaluate_officer(o, at("2024-03-04")) == []  # late facts may still arrive
    found = {f.rule_id: f for f in d.evaluate_officer(o, at("2024-03-05"))}
    assert set(found) == {"PER-FACT-CONFLICT", "PER-FACT-HELD"}
    assert found["PER-FACT-CONFLICT"].evidence["anomalies"][0]["event_id"] == restore.event_id
    assert found["PER-FACT-HELD"].evidence["count"] == 1


def test_unconfirmed_agency_is_reported_until_confirmed_and_published():
    def reg(event_id, **kw):
        return Fact(event_id, "agency.registered", at("2024-01-01"), SCJG, {
            "agency_id": "A2", "name": "营山县综合行政执法局", "kind": "entrusted", "entrusted_by": "A1",
            "legal_basis": ["《行政处罚法》第二十条"], **kw})
    a = d.agency_from_facts([reg("a1")])
    assert rule_ids(d.evaluate_agency(a, at("2024-02-01"))) == ["PER-AGENCY-UNCONFIRMED"]
    a = d.apply(a, reg("a2", confirmed_on="2024-03-12", published_on="2024-03-15"))
    assert d.evaluate_agency(a, at("2024-03-15")) == [] and a.version == 2
    bad = d.agency_from_facts([reg("a3", entrusted_by=None, confirmed_on="2024-03-12", published_on="2024-03-15")])
    assert rule_ids(d.evaluate_agency(bad, at("2024-04-01"))) == ["PER-FACT-CONFLICT"]


def test_re_evaluation_is_idempotent_and_resolves_what_was_fixed():
    o = officer(registered(), issued("HB1", level="state_council", issuer="生态环境部"), trained("2024-03-01", 20))
    raised, resolved = diff_findings({}, d.evaluate_officer(o, at("2024-04-01")))
    open_ = {f.key: f.to_payload() for f in raised}
    assert diff_findings(open_, d.evaluate_officer(o, at("2024-04-02"))) == ([], [])
    filed = d.apply(o, action("filed", "HB1", "2024-05-20"))
    assert diff_findings(open_, d.evaluate_officer(filed, at("2024-05-20"))) == ([], ["PER-CRED-UNFILED:credential:HB1"])


def test_next_evaluation_is_the_next_moment_a_finding_can_change():
    o = officer(registered(), issued(valid_to="2024-12-31"))
    assert d.next_evaluation_at(o, at("2024-10-01")) == datetime(2024, 11, 16, tzinfo=CST)  # training deadline
    assert d.next_evaluation_at(o, at("2024-11-20")) == datetime(2024, 12, 1, tzinfo=CST)   # 30 days before expiry
    assert d.next_evaluation_at(o, at("2024-12-05")) == datetime(2025, 1, 1, tzinfo=CST)    # expiry


# Snapshots

def test_snapshot_is_plain_json_with_status_windows_and_yearly_hours():
    o = officer(registered(), issued(valid_to="2024-12-31"), action("suspended", "C1", "2024-06-03"),
                action("restored", "C1", "2024-07-15"), trained("2024-05-16", 8), trained("2024-09-01", 4))
    snap = json.loads(json.dumps(d.to_snapshot(o, at("2024-06-10"))))
    assert (snap["status"], snap["version"], snap["training_hours"]) == ("active", 6, {"2024": 12.0})
    [cred] = snap["credentials"]
    assert cred["status"] == "suspended"
    assert cred["usable"] == [
        {"from": "2024-01-10T00:00:00+08:00", "to": "2024-06-03T00:00:00+08:00"},
        {"from": "2024-07-15T00:00:00+08:00", "to": "2025-01-01T00:00:00+08:00"}]


def test_officer_changed_payload_answers_can_act_without_the_domain():
    o = officer(registered(), issued("C1", valid_to="2024-12-31"), action("suspended", "C1", "2024-06-03"),
                action("restored", "C1", "2024-07-15"), issued("HB1", level="state_council", areas=["environment"]),
                action("filed", "HB1", "2024-03-01"), updated("2024-10-01", status="left"))
    payload = json.loads(json.dumps(d.officer_changed_payload(o, at("2024-12-01"))))

    def consumer_allows(area, when):  # what a projection in another service does
        t = when.isoformat()
        def inside(w):
            return (w["from"] is None or w["from"] <= t) and (w["to"] is None or t < w["to"])
        return payload["kind"] == "officer" and any(inside(w) for w in payload["active"]) and any(
            area in c["areas"] and any(inside(w) for w in c["usable"]) for c in payload["credentials"])
    for day, area in itertools.product(("2024-02-01", "2024-03-01", "2024-06-10", "2024-07-15", "2024-09-30",
                                        "2024-10-02", "2025-01-05"), ("market", "environment")):
        assert consumer_allows(area, at(day)) == d.can_act(o, area, at(day)).allowed, (day, area)


def test_every_rule_is_catalogued_in_the_findings_doc():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "findings-personnel.md").read_text(encoding="utf-8")
    for rule_id, (severity, _) in d.RULES.items():
        assert f"| `{rule_id}` | {severity} |" in doc


# Ownership (数据归属) and transfers (调动): docs/ownership.md

ZHZF = "511322-zhzf"


def test_another_departments_update_or_training_is_refused_with_a_reason():
    o = officer(registered(), issued(), trained("2024-03-01", 8))
    for foreign in (updated("2024-05-01", status="left", dept=STHJ), trained("2024-05-02", 40, dept=STHJ),
                    registered("2024-05-03", dept=STHJ)):
        with pytest.raises(d.NotOwnerError) as err:
            d.admit(o, foreign)
        assert err.value.code == "not_owner" and err.value.field == "dept" and SCJG in str(err.value)
    # and folded anyway (e.g. it came from an old store), it changes nothing
    after = d.officer_from_facts([*o.facts, updated("2024-05-01", status="left", dept=STHJ),
                                  trained("2024-05-02", 40, dept=STHJ)])
    assert (after.dept, after.status_at(at("2024-06-01")), after.training_hours(2024)) == (SCJG, "active", 8)
    assert [a.code for a in after.anomalies] == ["not_owner", "not_owner"]


def test_agency_registered_again_by_another_department_is_refused():
    def reg(dept, event_id):
        return d.check_fact(Fact(event_id, "agency.registered", at("2024-01-01"), dept, {
            "agency_id": "A1", "name": "某局", "kind": "statutory", "legal_basis": ["《行政处罚法》第十七条"]}))
    a = d.agency_from_facts([reg(SCJG, "a1")])
    with pytest.raises(d.NotOwnerError):
        d.admit(a, reg(STHJ, "a2"))
    assert d.admit(a, reg(SCJG, "a3")).dept == SCJG


def test_transfer_needs_the_old_departments_request_and_the_new_departments_acceptance():
    o = officer(registered(), issued())
    request = fact("officer.transfer_requested", "2024-08-01", to_dept=ZHZF, reason="人员划转")
    accept = fact("officer.transfer_accepted", "2024-08-10", dept=ZHZF, from_dept=SCJG, effective_on="2024-08-15",
                  agency_id="A-ZHZF")
    with pytest.raises(d.NotOwnerError):       # the new department alone cannot take the officer
        d.admit(o, fact("officer.updated", "2024-08-10", dept=ZHZF, status="active"))
    with pytest.raises(d.NotOwnerError):       # nor may a third department ask for the transfer
        d.admit(o, fact("officer.transfer_requested", "2024-08-01", dept=STHJ, to_dept=STHJ + "x"))
    moved = d.admit(d.admit(o, request), accept)
    assert (moved.dept, moved.agency_id) == (ZHZF, "A-ZHZF")
    assert moved.transfers[0]["from"] == SCJG and moved.transfers[0]["to"] == ZHZF
    # from the effective day the new department reports, the old one no longer does
    assert d.admit(moved, trained("2024-09-01", 20, dept=ZHZF)).training_hours(2024) == 20
    with pytest.raises(d.NotOwnerError):
        d.admit(moved, trained("2024-09-02", 20, dept=SCJG))
    # a late report of the old department's own history before the transfer is still accepted
    assert d.admit(moved, trained("2024-03-01", 6, dept=SCJG)).training_hours(2024) == 6


def test_acceptance_before_the_request_waits_and_applies_when_the_request_arrives():
    o = officer(registered(), issued())
    accept = fact("officer.transfer_accepted", "2024-08-10", dept=ZHZF, effective_on="2024-08-15")
    waiting = d.admit(o, accept)
    assert waiting.dept == SCJG and accept.event_id in waiting.pending
    moved = d.apply(waiting, fact("officer.transfer_requested", "2024-08-01", to_dept=ZHZF))
    assert moved.dept == ZHZF and moved.pending == []


def test_justice_bureau_may_order_a_transfer_and_suspend_any_credential():
    o = officer(registered(), issued())
    moved = d.admit(o, fact("officer.transfer_accepted", "2024-08-10", dept=SFJ, to_dept=ZHZF,
                            effective_on="2024-08-15"))
    assert moved.dept == ZHZF and moved.transfers[0]["by"] == SFJ
    assert d.admit(moved, action("suspended", "C1", "2024-09-01", dept=SFJ)).credentials["C1"].open_suspension
    with pytest.raises(d.NotOwnerError):       # but it does not register another department's people
        d.admit(moved, registered("2024-09-01", dept=SFJ))


def test_a_fact_held_before_registration_from_another_department_becomes_a_not_owner_anomaly():
    early = trained("2024-02-01", 10, dept=STHJ)
    pending = d.admit(None, early)              # no owner known yet: accepted, judged later
    o = d.apply(pending, registered("2024-01-02"))
    assert [(a.event_id, a.code) for a in o.anomalies] == [(early.event_id, "not_owner")]
    assert o.training_hours(2024) == 0


def test_credential_command_on_another_departments_officer_is_refused():
    o = officer(registered(), issued())
    with pytest.raises(d.NotOwnerError):
        d.suspend_credential(o, "C1", at("2024-06-03T15:00"), "越权暂扣", event_id="z9", dept=STHJ)


def test_held_grace_runs_from_arrival_when_the_store_recorded_it():
    import dataclasses
    early = dataclasses.replace(action("suspended", "C9", "2024-03-01"), received_at=at("2024-09-01"))
    o = officer(registered(), early)
    assert early.event_id in o.pending
    assert "PER-FACT-HELD" not in rule_ids(d.evaluate_officer(o, at("2024-09-02")))
    assert "PER-FACT-HELD" in rule_ids(d.evaluate_officer(o, at("2024-09-05")))


def test_officer_changed_payload_from_the_snapshot_of_the_evaluation_is_the_same():
    """The service passes the snapshot it made at `as_of` (no second to_snapshot): the same payload."""
    o = officer(registered(), issued("C1", valid_to="2024-12-31"), action("suspended", "C1", "2024-06-03"),
                issued("HB1", level="state_council", areas=["environment"]), updated("2024-10-01", status="left"))
    when = at("2024-12-01")
    assert d.officer_changed_payload(o, when, d.to_snapshot(o, when)) == d.officer_changed_payload(o, when)
