"""Personnel contracts: examples validate and round-trip; bad payloads are refused with the right rule."""
import copy
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts.catalog import Catalog, ContractError
from contracts.events.findings import CONTRACTS as FINDING_CONTRACTS
from contracts.events.personnel import CONTRACTS as PERSONNEL_CONTRACTS
from services.common.findings import SEVERITIES
from services.personnel import domain as d

CST = timezone(timedelta(hours=8))
CONTRACTS = [*PERSONNEL_CONTRACTS, *FINDING_CONTRACTS]
CATALOG = Catalog(CONTRACTS)
BY_TYPE = {c.type: c for c in CONTRACTS}
INGRESS = [c for c in CONTRACTS if c.direction == "ingress"]


def envelope(type_, payload, dept="511322-scjg", occurred_at="2024-05-20T10:00:00+08:00"):
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1, "occurred_at": occurred_at,
            "dept": dept, "source": "511322-scjg-zfxt", "payload": payload}


def rejection(type_, payload):
    with pytest.raises(ContractError) as exc:
        CATALOG.validate(envelope(type_, payload), direction=BY_TYPE[type_].direction)
    return [(v.field, v.rule) for v in exc.value.violations]


def test_every_contract_is_personnel_owned_version_1_and_documented():
    assert {c.type for c in INGRESS} == {
        "agency.registered", "officer.registered", "officer.updated", "officer.transfer_requested",
        "officer.transfer_accepted", "credential.issued", "credential.suspended",
        "credential.restored", "credential.revoked", "credential.cancelled", "credential.filed",
        "training.completed"}
    for c in CONTRACTS:
        assert (c.owner, c.version) == ("any" if c.type.startswith("finding.") else "personnel", 1)
        assert c.doc and "\n" not in c.doc
    assert {c.type for c in CONTRACTS if c.direction == "internal"} == {
        "officer.changed", "finding.raised", "finding.resolved"}
    assert BY_TYPE["finding.raised"].schema["severity"]["allowed"] == list(SEVERITIES)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.type)
def test_example_round_trips_through_the_wire(contract):
    sent = envelope(contract.type, contract.example)
    received = CATALOG.decode(json.dumps(sent, ensure_ascii=False).encode())
    assert CATALOG.validate(received, direction=contract.direction) is contract
    assert received == sent


@pytest.mark.parametrize("contract", INGRESS, ids=lambda c: c.type)
def test_ingress_example_becomes_a_fact_of_its_aggregate(contract):
    fact = d.Fact.from_envelope(envelope(contract.type, contract.example))
    assert d.Fact.from_dict(json.loads(json.dumps(fact.to_dict()))) == fact
    kind, key = d.aggregate_of(fact)
    assert key == contract.example["agency_id" if kind == "agency" else "officer_id"]
    assert d.apply(None, fact).version == 1


def test_internal_events_are_not_accepted_from_departments():
    for type_ in ("officer.changed", "finding.raised"):
        with pytest.raises(ContractError):
            CATALOG.validate(envelope(type_, BY_TYPE[type_].example))


@pytest.mark.parametrize("type_, change, expected", [
    ("credential.issued", lambda p: p.pop("valid_to"), ("payload.valid_to", "required")),
    ("credential.suspended", lambda p: p.pop("credential_no"), ("payload.credential_no", "required")),
    ("officer.registered", lambda p: p.update(id_card="510000199001011234"), ("payload.id_card", "unknown")),
    ("training.completed", lambda p: p.update(hours="8"), ("payload.hours", "type")),
    ("credential.suspended", lambda p: p.update(reason="暂" * 201), ("payload.reason", "maxlength")),
    ("credential.issued", lambda p: p.update(issuer_level="village"), ("payload.issuer_level", "allowed")),
    ("credential.issued", lambda p: p.update(valid_to="2029/01/09"), ("payload.valid_to", "regex")),
    ("credential.issued", lambda p: p.update(areas=[]), ("payload.areas", "minlength")),
    ("credential.issued", lambda p: p.update(areas=["市场"]), ("payload.areas.0", "regex")),
    ("officer.registered", lambda p: p.update(kind="boss"), ("payload.kind", "allowed")),
    ("training.completed", lambda p: p.update(hours=0), ("payload.hours", "min")),
    ("officer.changed", lambda p: p["credentials"][0].pop("usable"), ("payload.credentials.0.usable", "required")),
    ("finding.raised", lambda p: p.update(severity="fatal"), ("payload.severity", "allowed")),
])
def test_bad_payload_is_refused_naming_field_and_rule(type_, change, expected):
    payload = copy.deepcopy(BY_TYPE[type_].example)
    change(payload)
    assert expected in rejection(type_, payload)


def test_hostile_keys_never_reach_the_store():
    payload = {**BY_TYPE["finding.raised"].example, "evidence": {"$where": "1"}}
    assert ("payload.evidence.$where", "forbidden_key") in rejection("finding.raised", payload)


def _rich_officer():
    def f(type_, day, **p):
        return d.Fact(str(uuid.uuid4()), type_, datetime.fromisoformat(f"{day}T10:00+08:00"),
                      "511322-sthj", {"officer_id": "511322-sthj-0003", **p})
    return d.officer_from_facts([
        f("officer.registered", "2024-01-02", name="王芳", agency_id="A511322-STHJ", kind="officer"),
        f("credential.issued", "2024-03-28", credential_no="HB13000000215", issuer="生态环境部",
          issuer_level="state_council", areas=["environment"], issued_on="2024-03-28", valid_from="2024-03-28",
          valid_to="2024-12-20"),
        f("credential.issued", "2024-01-10", credential_no="川A5113220003", issuer="四川省人民政府",
          issuer_level="provincial", areas=["environment"], regions=["511322"], issued_on="2024-01-10",
          valid_from="2024-01-10", valid_to="2029-01-09"),
        f("credential.suspended", "2024-06-03", credential_no="川A5113220003", suspended_on="2024-06-03", reason="调查"),
        f("credential.restored", "2024-07-01", credential_no="川A5113220009", restored_on="2024-07-01"),
        f("credential.restored", "2024-07-02", credential_no="HB13000000215", restored_on="2024-07-02"),
        f("training.completed", "2024-05-16", completed_on="2024-05-16", hours=6, topic="生态环境执法培训"),
    ])


def test_what_the_domain_emits_satisfies_the_internal_contracts():
    o, as_of = _rich_officer(), datetime(2024, 11, 25, 8, tzinfo=CST)
    CATALOG.validate(envelope("officer.changed", d.officer_changed_payload(o, as_of), dept="511322-sthj"),
                     direction="internal")
    findings = d.evaluate_officer(o, as_of)
    assert {f.rule_id for f in findings} == {"PER-CRED-EXPIRING", "PER-CRED-UNFILED", "PER-TRAIN-HOURS",
                                             "PER-FACT-CONFLICT", "PER-FACT-HELD"}
    for finding in findings:
        raised = finding.to_payload()
        CATALOG.validate(envelope("finding.raised", raised, dept=finding.dept), direction="internal")
        # the kernel resolves with the raised payload and a new as_of
        CATALOG.validate(envelope("finding.resolved", {**raised, "as_of": "2024-12-01T08:00:00+08:00"},
                                  dept=finding.dept), direction="internal")


def test_strict_command_facts_satisfy_the_ingress_contracts():
    o, when = _rich_officer(), datetime(2024, 8, 1, 15, tzinfo=CST)
    commands = [
        d.restore_credential(o, "川A5113220003", when, "调查结束", event_id="z0", dept="511322-sfj"),
        d.suspend_credential(o, "HB13000000215", when, "拒不出示证件", event_id="z1", dept="511322-sfj"),
        d.revoke_credential(o, "川A5113220003", when, "考核不合格", event_id="z2", dept="511322-sfj"),
        d.cancel_credential(o, "HB13000000215", when, "调离执法岗位", event_id="z3", dept="511322-sfj"),
        d.file_credential(o, "HB13000000215", when, "营山县司法局", event_id="z4", dept="511322-sfj"),
    ]
    for fact in commands:
        CATALOG.validate(envelope(fact.type, fact.payload, dept=fact.dept))


def test_contract_vocabularies_match_the_domain():
    changed_credential = BY_TYPE["officer.changed"].schema["credentials"]["schema"]["schema"]
    assert tuple(BY_TYPE["agency.registered"].schema["kind"]["allowed"]) == d.AGENCY_KINDS
    assert tuple(BY_TYPE["officer.registered"].schema["kind"]["allowed"]) == d.OFFICER_KINDS
    assert tuple(BY_TYPE["officer.updated"].schema["status"]["allowed"]) == d.OFFICER_STATUSES
    assert tuple(BY_TYPE["credential.issued"].schema["issuer_level"]["allowed"]) == d.ISSUER_LEVELS
    assert tuple(changed_credential["status"]["allowed"]) == d.CREDENTIAL_STATUSES
    assert {c.type for c in INGRESS} == set(d.FACT_TYPES)
