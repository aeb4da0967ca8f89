"""Handover contracts (and penalty's `case.changed`): examples validate, parties are declared, the
examples fold into the domain when each is published by its own party, bad payloads are refused."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta

import pytest

from contracts import asyncapi
from contracts.catalog import Catalog, ContractError
from contracts.events.handover import CONTRACTS
from contracts.events.penalty_internal import CONTRACTS as PENALTY_INTERNAL
from services.common.chinatime import CST
from services.common.facts import Fact
from services.handover import domain as d

BY_TYPE = {c.type: c for c in CONTRACTS}
PARTY_DEPT = {"department": "511322-scjg", "police": "511322-ga", "procuratorate": "511322-jcy",
              "police_or_procuratorate": "511322-ga"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def envelope(type_: str, payload: dict, dept: str, when: datetime) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1, "occurred_at": when.isoformat(),
            "dept": dept, "source": "test", "payload": payload}


def party_of(contract) -> str:
    return next(t.split(":", 1)[1] for t in contract.tags if t.startswith("party:"))


def test_contracts_cover_every_step_once_with_its_party():
    assert sorted(BY_TYPE) == sorted(d.FACT_TYPES)
    for c in CONTRACTS:
        assert (c.owner, c.version, c.direction) == ("handover", 1, "ingress")
        kinds = {"police_or_procuratorate": {d.POLICE, d.PROCURATORATE}}.get(party_of(c), {party_of(c)})
        assert kinds == set(d.STEPS[c.type].party), c.type   # the contract tells the truth about who publishes


@pytest.mark.parametrize("contract", CONTRACTS + PENALTY_INTERNAL, ids=lambda c: c.type)
def test_example_validates_through_the_catalog(catalog, contract):
    env = envelope(contract.type, copy.deepcopy(contract.example), "511322-scjg", datetime(2026, 4, 1, tzinfo=CST))
    assert catalog.validate(env, direction=contract.direction) is contract


def test_case_changed_is_internal_and_refused_on_the_ingress(catalog):
    [c] = PENALTY_INTERNAL
    env = envelope(c.type, copy.deepcopy(c.example), "511322-scjg", datetime(2026, 4, 1, tzinfo=CST))
    with pytest.raises(ContractError):
        catalog.validate(env)  # a department cannot forge penalty's summary
    assert d.PenaltyCaseView.from_payload(c.example).penalized


ORDER = ["handover.suspicion_raised", "handover.head_decided", "handover.transferred", "handover.copied",
         "handover.received", "handover.police_decided"]


def test_examples_fold_into_a_handover_when_each_party_publishes_its_own_step(catalog):
    t0 = datetime(2026, 4, 1, 9, tzinfo=CST)
    facts = []
    for i, type_ in enumerate(ORDER):
        c = BY_TYPE[type_]
        env = envelope(type_, copy.deepcopy(c.example), PARTY_DEPT[party_of(c)], t0 + timedelta(hours=2 * i))
        catalog.validate(env)
        fact = Fact.from_envelope(env, seq=i)
        d.admit(facts, fact, fact.payload["handover_id"])
        facts.append(fact)
    h = d.fold(facts, facts[0].payload["handover_id"])
    assert h.status == "police_opened" and not h.held and not h.anomalies
    assert d.evaluate(h, t0 + timedelta(hours=12)) == []


@pytest.mark.parametrize("payload,field", [
    ({"handover_id": "H1", "approved": "yes"}, "payload.approved"),
    ({"handover_id": "H1", "approved": True, "extra": 1}, "payload.extra"),
    ({"approved": True}, "payload.handover_id"),
])
def test_bad_payloads_name_the_field(catalog, payload, field):
    with pytest.raises(ContractError) as err:
        catalog.validate(envelope("handover.head_decided", payload, "511322-scjg", datetime(2026, 4, 1, tzinfo=CST)))
    assert field in {v.field for v in err.value.violations}


def test_unknown_document_kind_is_refused(catalog):
    payload = {**copy.deepcopy(BY_TYPE["handover.transferred"].example), "documents": ["confession"]}
    with pytest.raises(ContractError):
        catalog.validate(envelope("handover.transferred", payload, "511322-scjg", datetime(2026, 4, 1, tzinfo=CST)))


def test_asyncapi_lists_the_parties():
    doc = asyncapi.build()
    tags = {t["name"] for m in doc["components"]["messages"].values() for t in m.get("tags", [])}
    assert {"party:department", "party:police", "party:procuratorate", "party:police_or_procuratorate"} <= tags
