"""Inspection contracts: examples validate; bad payloads are refused naming the field and the rule;
what the service's own commands produce satisfies the same contracts; derived facts are not contracts."""
from __future__ import annotations

import copy
import uuid

import pytest

from contracts.catalog import Catalog, ContractError
from contracts.events.inspection import ANNOUNCEMENT_EX, CONTRACTS
from services.inspection import domain as d
from services.inspection import draw as dr

CATALOG = Catalog()
BY_TYPE = {c.type: c for c in CONTRACTS}


def envelope(type_, payload, dept="370322-scjg"):
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": "2026-04-08T12:00:00+08:00", "dept": dept, "source": "370322-scjg-zfxt", "payload": payload}


def rejection(type_, **changes):
    payload = {**copy.deepcopy(BY_TYPE[type_].example), **changes}
    with pytest.raises(ContractError) as exc:
        CATALOG.validate(envelope(type_, payload))
    return {(v.field, v.rule) for v in exc.value.violations}


def test_every_contract_is_inspection_owned_ingress_with_a_valid_chinese_example():
    assert {c.type.split(".")[0] for c in CONTRACTS} == {"inspection_plan", "inspection_pool", "inspection_draw",
                                                         "inspection"}
    for c in CONTRACTS:
        assert (c.owner, c.version, c.direction) == ("inspection", 1, "ingress")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.doc)
        assert CATALOG.validate(envelope(c.type, c.example)) is not None


def test_derived_facts_cannot_be_sent_by_a_department():
    for type_ in d.DERIVED_TYPES:
        with pytest.raises(ContractError):
            CATALOG.validate(envelope(type_, {"dept": "370322-scjg", "on": "2026-04-08"}))


@pytest.mark.parametrize("type_, changes, violation", [
    ("inspection_plan.registered", {"kind": "weekly"}, ("payload.kind", "allowed")),
    ("inspection_plan.registered", {"period_from": "2026-07-01", "period_to": "2026-06-30"},
     ("payload.period_to", "date_order")),
    ("inspection_plan.registered", {"item_codes": []}, ("payload.item_codes", "minlength")),
    ("inspection.registered", {"target": {"id": "统一代码", "name": "某企业"}}, ("payload.target.id", "regex")),
    ("inspection.registered", {"kind": "visit"}, ("payload.kind", "allowed")),
    ("inspection.registered", {"started_at": "2026-04-08T09:30:00"}, ("payload.started_at", "regex")),
    ("inspection.concluded", {"outcome": "fined"}, ("payload.outcome", "allowed")),
    ("inspection_draw.performed", {"result_digest": "not-hex"}, ("payload.result_digest", "regex")),
    ("inspection_draw.announced", {"announcement": {**ANNOUNCEMENT_EX, "params": {"inspectors_per_target": 0}}},
     ("payload.announcement.params.inspectors_per_target", "min")),
])
def test_bad_payloads_are_refused_naming_field_and_rule(type_, changes, violation):
    found = rejection(type_, **changes)
    assert violation in found, found


def test_a_command_built_announcement_and_result_satisfy_the_contracts():
    announcement = {**ANNOUNCEMENT_EX, "seed": {"method": "commit_reveal", "commitment": dr.seed_commitment("s")}}
    CATALOG.validate(envelope("inspection_draw.announced", {
        "draw_id": announcement["draw_id"], "plan_id": None, "reason": None, "announcement": announcement,
        "announcement_digest": dr.digest(announcement)}))
    result = dr.compute_result(announcement, "s")
    CATALOG.validate(envelope("inspection_draw.performed", {
        "draw_id": announcement["draw_id"], "attempt": 1, "seed": "s", "result": result,
        "result_digest": dr.digest(result)}))
