"""Penalty event contracts: examples validate, sizes are bounded, commands emit valid payloads."""
import uuid

import pytest

from contracts.catalog import Catalog, ContractError
from contracts.events.penalty import CONTRACTS
from services.penalty.domain import case as pc
from tests.unit.test_penalty_case import DEPT, PARTY, TEAM, Story, at, full_story

CATALOG = Catalog(CONTRACTS)


def envelope(type_: str, payload: dict, dept: str = DEPT) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": "2026-03-03T10:00:00+08:00", "dept": dept, "source": "scjg-case-system",
            "payload": payload}


def test_one_contract_per_case_event_type():
    assert sorted(c.type for c in CONTRACTS) == sorted(pc.EVENT_TYPES)
    assert {c.type for c in CONTRACTS} <= Catalog().types()


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.type)
def test_contract_metadata_and_example(contract):
    assert (contract.owner, contract.version, contract.direction) == ("penalty", 1, "ingress")
    assert contract.doc and "\n" not in contract.doc
    assert contract.schema["case_id"]["required"] and contract.example["case_id"]
    assert CATALOG.validate(envelope(contract.type, contract.example)) is contract


def bounded(rule: dict, path: str) -> list[str]:
    """Every string, list and dict in a schema has a size limit (or a fixed vocabulary / pattern)."""
    kind, problems = rule.get("type"), []
    if kind == "string" and not ({"maxlength", "allowed", "regex"} & set(rule)):
        problems.append(path)
    if kind == "list":
        problems += [] if "maxlength" in rule else [path]
        problems += bounded(rule.get("schema", {}), f"{path}[]")
    if kind == "dict":
        if "schema" in rule:
            problems += [p for k, v in rule["schema"].items() for p in bounded(v, f"{path}.{k}")]
        elif "maxlength" not in rule:
            problems.append(path)
    return problems


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.type)
def test_sizes_are_bounded(contract):
    assert [p for k, v in contract.schema.items() for p in bounded(v, k)] == []


def test_invalid_payloads_are_rejected_with_the_field_named():
    decided = next(c for c in CONTRACTS if c.type == "case.decided")
    cases = [
        ({**decided.example, "surprise": 1}, "payload.surprise", "unknown"),
        ({**decided.example, "kinds": ["caning"]}, "payload.kinds", "allowed"),
        ({**decided.example, "fine_amount": -5}, "payload.fine_amount", "min"),
        ({**decided.example, "party": {**PARTY, "type": "robot"}}, "payload.party.type", "allowed"),
        ({k: v for k, v in decided.example.items() if k != "case_id"}, "payload.case_id", "required"),
        ({**decided.example, "measures": {"$where": 1}}, "payload.measures.$where", "forbidden_key"),
    ]
    for payload, field, rule in cases:
        with pytest.raises(ContractError) as err:
            CATALOG.validate(envelope("case.decided", payload))
        assert any(v.field.startswith(field) and v.rule == rule for v in err.value.violations), (field, err.value)


def test_every_command_emits_a_payload_its_contract_accepts():
    s = full_story()
    facts = list(s.facts)
    s.facts = [f for f in s.facts if f.type not in ("case.closed", "case.archived", "case.executed")]
    s.do(pc.transfer_to_police, "2026-05-01T09:00", police_unit="高青县公安局", suspected_crime="涉嫌销售伪劣产品罪")
    s.do(pc.change_decision, "2026-05-02T09:00", by="reconsideration", fine_amount=30000, kinds=["fine"], tier="从轻")
    s.do(pc.revoke_decision, "2026-05-03T09:00", by="court", reason="判决撤销")
    s.do(pc.withdraw_publication, "2026-05-04T09:00", reason="原决定已撤销")
    facts += s.facts[-4:]
    other = Story("370322-scjg-2026-0050")
    other.do(pc.file_case, "2026-03-02T10:00", item_code="C1", party=PARTY, complex=True,
             discovered_at=at("2026-03-01T10:00"), source_kind="inspection")
    other.do(pc.record_act, "2026-03-03T10:00", act_kind="sampling", officers=TEAM, auxiliaries=["FZ001"],
             measures={"sales_amount": 80000}, av_ref="AV-1")
    other.do(pc.start_testing, "2026-03-04T10:00", kind="testing")
    other.do(pc.complete_testing, "2026-03-10T10:00", report_ref="ZBJY-2026-0315")
    other.do(pc.extend, "2026-03-11T10:00", days=30, approved=True, approver="王建国", reason="案情复杂")
    other.do(pc.suspend, "2026-03-12T10:00", reason="等待外省协查")
    other.do(pc.resume, "2026-03-20T10:00")
    other.do(pc.close, "2026-03-21T10:00", reason="transferred")
    spot = Story("370322-cgj-2026-0118", "370322-cgj")
    spot.do(pc.decide_on_spot, "2026-05-06T16:20", decision_no="高城管当罚〔2026〕118号", kinds=["fine"],
            fine_amount=100, party={"type": "person", "id": "370322199001011234", "name": "孙某"},
            act_code="STREET-VENDING", item_code="C2", officers=TEAM, av_recorded=True, paid_on_spot=True)
    for fact in facts + other.facts + spot.facts:
        doc = {**fact.to_dict(), "event_id": str(uuid.uuid4()), "schema_version": 1, "source": "zhifa"}
        assert CATALOG.validate(doc).type == fact.type
    assert {f.type for f in facts + other.facts + spot.facts} == set(pc.EVENT_TYPES)
