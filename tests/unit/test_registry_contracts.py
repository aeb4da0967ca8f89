"""Registry contracts: every example validates through the catalog and folds into the domain;
malformed payloads are rejected with the field and rule."""
from __future__ import annotations

import copy
import uuid
from datetime import date

import pytest

from contracts.catalog import Catalog, ContractError
from contracts.events.registry import CONTRACTS
from services.registry.domain import FACT_TYPES, Fact, RegistryState, publication_view

EXAMPLES = {c.type: c.example for c in CONTRACTS}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(CONTRACTS)


def envelope(type_: str, payload: dict, dept: str = "511322-scjg") -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": "2024-07-01T09:30:00+08:00", "dept": dept, "source": "scjg-zfxt", "payload": payload}


def test_contracts_cover_every_registry_fact_once():
    assert sorted(c.type for c in CONTRACTS) == sorted(FACT_TYPES)
    for c in CONTRACTS:
        assert (c.owner, c.version, c.direction) == ("registry", 1, "ingress")
        assert c.doc and "\n" not in c.doc


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.type)
def test_example_validates_through_the_catalog(catalog, contract):
    assert catalog.validate(envelope(contract.type, copy.deepcopy(contract.example))) is contract


def test_all_contracts_load_into_the_project_catalog():
    full = Catalog()
    assert {c.type for c in CONTRACTS} <= full.types()


def test_examples_fold_into_a_published_item(catalog):
    state = RegistryState()
    for c in CONTRACTS:
        env = envelope(c.type, copy.deepcopy(c.example))
        catalog.validate(env)
        assert state.apply(Fact.from_envelope(env)) == "applied"
    view = publication_view(state.items["330217001000"], date(2024, 8, 1), state.leniency_lists)
    assert view["discretion_standard"]["standard_no"] == "营市监规〔2024〕2号"
    assert view["leniency"][0]["kind"] == "no_penalty"


def _with(type_: str, change) -> dict:
    payload = copy.deepcopy(EXAMPLES[type_])
    change(payload)
    return payload


BAD = [
    ("item.published", lambda p: p.pop("item_code"), "payload.item_code", "required"),
    ("item.published", lambda p: p.update(owner="x"), "payload.owner", "unknown"),
    ("item.published", lambda p: p.update(category="tax"), "payload.category", "allowed"),
    ("item.published", lambda p: p.update(item_code="$where"), "payload.item_code", "regex"),
    ("item.published", lambda p: p.update(cooperating_depts=["公安局"]), "payload.cooperating_depts.0", "regex"),
    ("item.published", lambda p: p["legal_basis"][0].pop("article"), "payload.legal_basis.0.article", "required"),
    ("item.published", lambda p: p["legal_basis"][0].update(clause="x"), "payload.legal_basis.0.clause", "unknown"),
    ("item.published", lambda p: p.update(effective_from="2024/03/01"), "payload.effective_from", "regex"),
    ("item.published", lambda p: p.update(legal_basis=[{"law": "法", "article": "第1条"}] * 31),
     "payload.legal_basis", "maxlength"),
    ("item.published", lambda p: p.update(name="x" * 301), "payload.name", "maxlength"),
    ("item.amended", lambda p: p.update(name=None), "payload.name", "nullable"),
    ("item.repealed", lambda p: p.pop("effective_from"), "payload.effective_from", "required"),
    ("item.evaluated", lambda p: p.update(conclusion="good"), "payload.conclusion", "allowed"),
    ("standard.published", lambda p: p["tiers"][0].update(multiple={"min_multiple": 1, "max_multiple": 2}),
     "payload.tiers.0.amount", "excludes"),
    ("standard.published", lambda p: p["tiers"][0].pop("amount"), "payload.tiers.0.amount", "required"),
    ("standard.published", lambda p: p["tiers"][0]["amount"].update(min=True), "payload.tiers.0.amount.min", "type"),
    ("standard.published", lambda p: p["tiers"][0]["amount"].update(max=-5), "payload.tiers.0.amount.max", "min"),
    ("standard.published", lambda p: p.update(tiers=p["tiers"] * 3), "payload.tiers", "maxlength"),
    ("standard.published", lambda p: p["legal_limit"].update(kind="days"), "payload.legal_limit.kind", "allowed"),
    ("leniency_list.published", lambda p: p.update(kind="amnesty"), "payload.kind", "allowed"),
    ("leniency_list.published", lambda p: p["entries"][0].update(conditions=""), "payload.entries.0.conditions",
     "minlength"),
]


@pytest.mark.parametrize("type_, change, field, rule", BAD, ids=[f"{t}:{f}:{r}" for t, _, f, r in BAD])
def test_bad_payload_is_rejected_with_field_and_rule(catalog, type_, change, field, rule):
    with pytest.raises(ContractError) as err:
        catalog.validate(envelope(type_, _with(type_, change)))
    assert (field, rule) in {(v.field, v.rule) for v in err.value.violations}


def test_hostile_keys_never_pass(catalog):
    payload = _with("item.published", lambda p: p["legal_basis"][0].update({"$gt": ""}))
    with pytest.raises(ContractError) as err:
        catalog.validate(envelope("item.published", payload))
    assert err.value.reason == "forbidden_key"
