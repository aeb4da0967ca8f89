"""Penalty service plumbing without servers: projections -> CaseFacts, snapshot digest, commands."""
from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import DomainError
from services.common.findings import Finding
from services.common.ondemand import OnDemand
from services.common.workdays import DEFAULT_CALENDAR
from services.penalty import projections as p
from services.penalty.domain import case as pc
from services.penalty.domain import rules as r
from services.penalty.domain.settings import PenaltySettings
from services.penalty.service import COMMANDS, _command_kwargs, _flag

CST = timezone(timedelta(hours=8))
DEPT = "511322-scjg"
CID = "511322-scjg-2026-0001"
CODE = "330217001000"
PARTY = {"type": "org", "id": "91511322MA3C4XYZ1K", "name": "营山县某食品有限公司"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+08:00")


def officer(officer_id="O1", kind="officer", active=None, usable=None, areas=("market",), status="valid",
            filing_required=False, filed_at=None, suspensions=()) -> dict:
    return {
        "officer_id": officer_id, "name": "李明", "dept": DEPT, "agency_id": "A1", "kind": kind, "status": "active",
        "active": active if active is not None else [{"from": None, "to": None}], "version": 3,
        "as_of": "2026-01-01T00:00:00+08:00",
        "credentials": [{
            "number": f"川A{officer_id}", "areas": list(areas), "regions": ["511322"],
            "issuer_level": "state_council" if filing_required else "provincial",
            "filing_required": filing_required, "filed_at": filed_at, "valid_from": "2024-01-10",
            "valid_to": "2029-01-09", "ended_as": None, "status": status, "issued_at": "2024-01-10T00:00:00+08:00",
            "suspensions": list(suspensions),
            "usable": usable if usable is not None else [{"from": "2024-01-10T00:00:00+08:00",
                                                           "to": "2029-01-10T00:00:00+08:00"}],
        }],
    }


def item(versions=None, standards=None) -> dict:
    base = {"version": 1, "change": "published", "name": "对生产经营不符合食品安全标准食品的行政处罚",
            "category": "penalty", "owning_dept": DEPT, "cooperating_depts": ["511322-gaj"],
            "delegated_to_township": False, "delegated_depts": [],
            "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条"}],
            "effective_from": "2024-01-01", "effective_to": None, "repealed": False, "document_no": "营市监发〔2024〕5号"}
    tiers = [{"tier": t, "name": n, "kind": "amount", "min": 50000 + i * 10000, "max": 60000 + i * 10000}
             for i, (t, n) in enumerate([("lightest", "从轻"), ("lighter", "较轻"), ("normal", "一般"),
                                         ("heavier", "较重"), ("heaviest", "严重")])]
    std = {"standard_no": "营市监规〔2024〕2号", "dept": DEPT, "effective_from": "2024-03-01", "effective_to": None,
           "published_at": "2024-02-20T10:00:00+08:00",
           "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False}, "tiers": tiers}
    return {"item_code": CODE, "revision": 2, "as_of": "2024-03-01T00:00:00+08:00", "dept": DEPT,
            "versions": versions if versions is not None else [base],
            "standards": standards if standards is not None else [std]}


# -- officer projection ---------------------------------------------------------------------------

def test_officer_with_a_usable_credential_may_act_in_any_area_when_none_is_known():
    assert p.officer_verdict(officer(), "", at("2026-03-01T10:00")) == (True, [])
    assert p.officer_verdict(officer(), "market", at("2026-03-01T10:00")) == (True, [])


def test_officer_verdict_gives_every_reason_in_chinese():
    suspended = officer(usable=[{"from": "2024-01-10T00:00:00+08:00", "to": "2026-02-01T00:00:00+08:00"}],
                        status="suspended", suspensions=[{"from": "2026-02-01T00:00:00+08:00", "to": None,
                                                          "reason": "涉嫌违纪接受调查"}])
    allowed, reasons = p.officer_verdict(suspended, "", at("2026-03-01T10:00"))
    # the real reason, with dates — not the credential's status today
    assert not allowed and reasons == ["证件 川AO1 在 2026-03-01 处于暂扣期间（自 2026-02-01 起暂扣（涉嫌违纪接受调查））"]
    # before the suspension the same credential was usable (windows are half-open)
    assert p.officer_verdict(suspended, "", at("2026-01-31T23:59"))[0]
    assert not p.officer_verdict(suspended, "", at("2026-02-01T00:00"))[0]

    aux = p.officer_verdict(officer(kind="auxiliary"), "", at("2026-03-01T10:00"))
    assert not aux[0] and "辅助人员" in aux[1][0]
    left = p.officer_verdict(officer(active=[{"from": None, "to": "2025-12-01T00:00:00+08:00"}]), "",
                             at("2026-03-01T10:00"))
    assert not left[0] and "停用状态" in left[1][0]
    area = p.officer_verdict(officer(areas=("environment",)), "market", at("2026-03-01T10:00"))
    assert not area[0] and "不包含 market" in area[1][0]
    unfiled = p.officer_verdict(officer(filing_required=True, usable=[]), "", at("2026-03-01T10:00"))
    assert not unfiled[0] and "尚未向县司法局备案" in unfiled[1][0]
    assert p.officer_verdict(None, "", at("2026-03-01T10:00"))[1][0] == "执法人员未登记，不得执法"


# -- item projection ------------------------------------------------------------------------------

def test_item_view_from_projection_uses_registry_holding_and_tiers():
    record = p.projected_item(item())
    view = p.item_view(record, DEPT, CODE, at("2026-03-01T10:00"))
    assert view.held and view.category == "penalty" and "食品安全法" in view.legal_basis
    assert view.tiers["normal"] == view.tiers["一般"] == (70000.0, 80000.0)
    # before the standard took effect there are no tiers; a cooperating dept does not hold the item
    assert p.item_view(record, DEPT, CODE, at("2024-02-01T10:00")).tiers == {}
    assert not p.item_view(record, "511322-gaj", CODE, at("2026-03-01T10:00")).held
    assert p.item_view(None, DEPT, CODE, at("2026-03-01T10:00")) is None


def test_item_view_of_repealed_item_and_incomplete_basis():
    versions = item()["versions"] + [{**item()["versions"][0], "version": 2, "change": "repealed",
                                      "effective_from": "2025-01-01", "repealed": True,
                                      "legal_basis": [{"law": "《食品安全法》", "article": ""}]}]
    versions[0] = {**versions[0], "effective_to": "2024-12-31"}
    record = p.projected_item(item(versions=versions))
    assert p.item_view(record, DEPT, CODE, at("2024-06-01T10:00")).held
    later = p.item_view(record, DEPT, CODE, at("2025-06-01T10:00"))
    assert not later.held and later.legal_basis == ""


def test_multiple_of_gains_standard_gives_no_tiers():
    std = item()["standards"][0]
    std = {**std, "tiers": [{**t, "kind": "multiple"} for t in std["tiers"]]}
    view = p.item_view(p.projected_item(item(standards=[std])), DEPT, CODE, at("2026-03-01T10:00"))
    assert view.tiers == {}


# -- case snapshot, rules over projections ---------------------------------------------------------

def story(fine=75000, tier="normal", officers=("O1", "O2")) -> pc.Case:
    facts, case = [], pc.Case(CID)
    steps = [
        (pc.file_case, dict(dept=DEPT, at=at("2026-03-01T09:00"), item_code=CODE, party=PARTY)),
        (pc.record_act, dict(at=at("2026-03-02T09:00"), act_kind="evidence", officers=list(officers))),
        (pc.notify, dict(at=at("2026-03-03T09:00"), hearing_right=False)),
        (pc.decide, dict(at=at("2026-03-20T09:00"), decision_no="营市监罚〔2026〕1号", kinds=["fine"],
                         party=PARTY, act_code="FOOD-EXPIRED", fine_amount=fine, tier=tier,
                         officers=list(officers))),
    ]
    for i, (fn, kwargs) in enumerate(steps):
        facts.append(fn(case, event_id=f"e{i}", **kwargs))
        case = pc.fold(facts, CID)
    return case


def evaluate(case, officers, items, others=()):
    facts = p.case_facts(officers, items, (), others)
    return {f.rule_id: f for f in r.evaluate(case, facts, PenaltySettings(), at("2026-03-21T09:00"), DEFAULT_CALENDAR)}


def test_rules_over_projections_and_snapshot_digest():
    case = story()
    good = evaluate(case, {"O1": officer("O1"), "O2": officer("O2")}, {CODE: item()})
    assert not {r.OFFICER_CREDENTIAL, r.ITEM_NOT_HELD, r.FINE_OUT_OF_TIER, r.OFFICERS_MIN} & set(good)

    bad = evaluate(story(fine=95000), {"O1": officer("O1")}, {})
    assert {r.OFFICER_CREDENTIAL, r.ITEM_NOT_HELD} <= set(bad)
    assert bad[r.OFFICER_CREDENTIAL].evidence["violations"][0]["officer_id"] == "O2"
    out_of_tier = evaluate(story(fine=95000), {"O1": officer("O1"), "O2": officer("O2")}, {CODE: item()})
    assert out_of_tier[r.FINE_OUT_OF_TIER].evidence["tier_max"] == 80000

    snap = p.case_snapshot(case, list(bad.values()))
    assert snap["officer_ids"] == ["O1", "O2"] and snap["item_codes"] == [CODE] and snap["party_id"] == PARTY["id"]
    assert snap["open_findings"] == len(bad) and snap["finding_rules"] == sorted(bad)
    assert snap["overdue"] is False
    late = Finding(r.SERVICE_LATE, "warning", DEPT, "case", CID, at("2026-04-01T00:00"))
    assert p.case_snapshot(case, [late])["overdue"] is True


def test_credential_must_cover_the_area_of_the_item_version_in_force():
    market = item(versions=[{**item()["versions"][0], "area": "market"}])
    assert p.item_view(p.projected_item(market), DEPT, CODE, at("2026-03-01T10:00")).area == "market"
    assert p.item_view(p.projected_item(item()), DEPT, CODE, at("2026-03-01T10:00")).area == ""

    # O2 holds only an environment credential: fine on an item without an area (today's behaviour),
    # a finding on a market item; O1's market credential covers it
    officers = {"O1": officer("O1"), "O2": officer("O2", areas=("environment",))}
    assert r.OFFICER_CREDENTIAL not in evaluate(story(), officers, {CODE: item()})
    found = evaluate(story(), officers, {CODE: market})[r.OFFICER_CREDENTIAL]
    assert found.evidence["area"] == "market"
    assert {v["officer_id"] for v in found.evidence["violations"]} == {"O2"}
    assert "不包含 market" in found.evidence["violations"][0]["reasons"][0]

    # the area is read from the version in force when the case was filed
    amended = {**item()["versions"][0], "version": 2, "change": "amended", "effective_from": "2026-01-01",
               "area": "environment"}
    both = item(versions=[{**item()["versions"][0], "effective_to": "2025-12-31", "area": "market"}, amended])
    record = p.projected_item(both)
    assert p.item_view(record, DEPT, CODE, at("2025-06-01T10:00")).area == "market"
    assert p.item_view(record, DEPT, CODE, at("2026-03-01T10:00")).area == "environment"
    assert {v["officer_id"] for v in evaluate(story(), officers, {CODE: both})[r.OFFICER_CREDENTIAL]
            .evidence["violations"]} == {"O1"}


def test_decision_entry_feeds_the_double_fine_rule():
    case = story()
    entry = p.decision_entry(CID, p.case_snapshot(case, []))
    assert entry["party_id"] == PARTY["id"] and entry["act_code"] == "FOOD-EXPIRED" and not entry["revoked"]
    other = {**entry, "case_id": "OTHER", "dept": "511322-sthj"}
    found = evaluate(case, {"O1": officer("O1"), "O2": officer("O2")}, {CODE: item()}, [other])
    assert r.DOUBLE_FINE in found
    assert p.decision_entry(CID, p.case_snapshot(pc.Case(CID), [])) is None


def test_never_decided_until_a_deciding_fact_and_only_then_a_decision_entry():
    """after_save skips the decisions index while `never_decided` (no fact of DECIDING_FACTS): the
    fold must have no decision until such a fact, and `decide_on_spot` must give one of its types."""
    facts, case = [], pc.Case(CID)
    for i, (fn, kwargs) in enumerate([
        (pc.file_case, dict(dept=DEPT, at=at("2026-03-01T09:00"), item_code=CODE, party=PARTY)),
        (pc.record_act, dict(at=at("2026-03-02T09:00"), act_kind="evidence", officers=["O1", "O2"])),
        (pc.notify, dict(at=at("2026-03-03T09:00"), hearing_right=False)),
    ]):
        facts.append(fn(case, event_id=f"e{i}", **kwargs).to_dict())
        case = pc.fold([pc.Fact.from_dict(f) for f in facts], CID)
        doc = {"facts": facts, "snapshot": p.case_snapshot(case, [])}
        assert p.never_decided(doc) and p.decision_entry(CID, doc["snapshot"]) is None
    facts.append(pc.decide(case, event_id="e3", at=at("2026-03-20T09:00"), decision_no="营市监罚〔2026〕1号",
                           kinds=["fine"], party=PARTY, act_code="FOOD-EXPIRED", fine_amount=75000, tier="normal",
                           officers=["O1", "O2"]).to_dict())
    case = pc.fold([pc.Fact.from_dict(f) for f in facts], CID)
    assert case.decisions and not p.never_decided({"facts": facts})
    spot = pc.decide_on_spot(pc.Case("S1"), event_id="s0", dept=DEPT, at=at("2026-03-01T09:00"), item_code=CODE,
                             party=PARTY, decision_no="营市监罚〔2026〕2号", kinds=["warning"], act_code="FOOD-EXPIRED",
                             officers=["O1", "O2"])
    assert spot.type in p.DECIDING_FACTS
    assert not p.never_decided({})  # no facts: it cannot tell


def test_other_decisions_are_read_only_when_a_rule_needs_them():
    """The party's other decisions (a look-up per fact) are read only for a decided case, and once."""
    reads = []

    def load():
        reads.append(1)
        entry = p.decision_entry(CID, p.case_snapshot(story(), []))
        return [{**entry, "case_id": "OTHER", "dept": "511322-sthj"}]

    undecided = pc.Case(CID)
    filed = pc.file_case(undecided, event_id="e0", dept=DEPT, at=at("2026-03-01T09:00"), item_code=CODE, party=PARTY)
    undecided = pc.fold([filed], CID)
    assert undecided.decision is None
    evaluate(undecided, {"O1": officer("O1"), "O2": officer("O2")}, {CODE: item()}, OnDemand(load))
    assert reads == []
    found = evaluate(story(), {"O1": officer("O1"), "O2": officer("O2")}, {CODE: item()}, OnDemand(load))
    assert r.DOUBLE_FINE in found and reads == [1]


def test_case_detail_is_json_safe():
    import json

    case = story()
    doc = {"_id": CID, "dept": DEPT, "snapshot": p.case_snapshot(case, []), "findings_open": {},
           "facts": [], "due_at": at("2026-04-01T00:00"), "evaluated_at": at("2026-03-21T09:00"), "version": 4}
    detail = json.loads(json.dumps(p.case_detail(doc)))
    assert [e["type"] for e in detail["timeline"]] == ["case.filed", "case.investigated", "case.notified",
                                                       "case.decided"]
    assert detail["stage"] == "decided" and detail["due_at"].startswith("2026-04-01")
    assert "record" not in detail["case"]


# -- commands --------------------------------------------------------------------------------------

NOW = at("2026-03-21T09:00")


def test_command_params_are_translated():
    kwargs = _command_kwargs("file_case", COMMANDS["file_case"],
                             {"item_code": CODE, "discovered_at": "2026-03-01T08:00:00+08:00"}, DEPT, NOW)
    assert kwargs["at"] == NOW and kwargs["dept"] == DEPT and kwargs["discovered_at"] == at("2026-03-01T08:00")
    assert "dept" not in _command_kwargs("serve", COMMANDS["serve"], {"method": "direct"}, DEPT, NOW)


@pytest.mark.parametrize("command,params,code,field", [
    ("file_case", {}, "missing_param", "item_code"),
    ("file_case", {"item_code": CODE, "dept": "x"}, "unknown_param", "dept"),
    ("file_case", {"item_code": CODE, "at": "2026-03-01T08:00:00"}, "invalid_value", "at"),
    ("serve", ["direct"], "invalid_params", "params"),
])
def test_bad_command_params_are_refused(command, params, code, field):
    with pytest.raises(DomainError) as exc:
        _command_kwargs(command, COMMANDS[command], params, DEPT, NOW)
    assert (exc.value.code, exc.value.field) == (code, field)


def test_overdue_flag():
    assert (_flag("true"), _flag("0"), _flag(None), _flag(""), _flag(True)) == (True, False, None, None, True)
    with pytest.raises(ValueError):
        _flag("maybe")
