"""Personnel service with nameko's worker_factory: facts in, `officer.changed` and findings out,
duplicates ignored, impossible facts dead-lettered, credential commands and the verdict RPC."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import worker_factory

from plugins.host import build_plugin_manager
from services.kernel.messaging import PoisonMessage
from services.kernel.settings import DeptSettings, RunConfig
from services.personnel.service import PersonnelService
from tests.fakes import FakeDb

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 5, 20, 10, 0, tzinfo=CST)
SCJG = "511322-scjg"


def envelope(type_, payload):
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": "2025-05-01T09:00:00+08:00", "dept": SCJG, "source": "scjg-zfxt", "payload": payload}


REGISTERED = envelope("officer.registered", {"officer_id": "511322-scjg-0001", "name": "李明",
                                             "agency_id": "A511322-SCJG", "kind": "officer", "status": "active"})
ISSUED = envelope("credential.issued", {
    "officer_id": "511322-scjg-0001", "credential_no": "HB13000000215", "issuer": "国家市场监督管理总局",
    "issuer_level": "state_council", "areas": ["market"], "regions": ["511322"],
    "valid_from": "2025-01-10", "valid_to": "2030-01-10", "issued_on": "2025-01-10"})


@pytest.fixture
def service():
    host = build_plugin_manager(load_entrypoints=False)
    return worker_factory(PersonnelService, db=FakeDb(), plugins=host, clock=lambda: NOW,
                          settings=DeptSettings.of(PersonnelService.manifest, host), conf=RunConfig.from_config())


def sent(service, type_):
    return [call.args[1] for call in service.dispatch.call_args_list if call.args[0] == type_]


def settle(service, officer_id: str = "511322-scjg-0001", after: float = 11):
    """The deadline sweep once the arrivals settled (arrival_settle_seconds = 10): its finding events."""
    repo = service.repository(service.aggregate("officer"))
    _, pending = repo.reevaluate(officer_id, NOW + timedelta(seconds=after))
    return pending


def test_facts_produce_officer_changed_and_a_finding_once_the_arrivals_settle(service):
    service.handle_officer(REGISTERED)
    service.handle_officer(ISSUED)
    changed = sent(service, "officer.changed")[-1]["payload"]
    assert changed["name"] == "李明" and changed["credentials"][0]["number"] == "HB13000000215"
    # the filing may be in the same batch: nothing is raised while the officer's facts are arriving,
    # and the officer is due again the instant they settle
    assert sent(service, "finding.raised") == []
    assert service.db.officers.find_one({"_id": "511322-scjg-0001"})["due_at"] == NOW + timedelta(seconds=10)
    [raised] = settle(service)
    assert raised["type"] == "finding.raised"
    assert raised["payload"]["rule_id"] == "PER-CRED-UNFILED"  # State Council credential, not filed


def test_an_open_finding_stays_open_while_new_facts_arrive(service):
    service.handle_officer(REGISTERED)
    service.handle_officer(ISSUED)
    [raised] = settle(service)
    # a training record arrives (it changes nothing about the filing): the open finding is neither
    # resolved nor raised again while the officer settles
    service.handle_officer(envelope("training.completed", {"officer_id": "511322-scjg-0001", "hours": 4,
                                                            "topic": "行政处罚法", "completed_on": "2025-05-02"}))
    doc = service.db.officers.find_one({"_id": "511322-scjg-0001"})
    assert list(doc["findings_open"]) == [raised["payload"]["finding_key"]]
    assert sent(service, "finding.resolved") == [] and settle(service, after=30) == []


def test_duplicate_fact_changes_nothing(service):
    service.handle_officer(REGISTERED)
    calls = service.dispatch.call_count
    service.handle_officer(REGISTERED)
    assert service.dispatch.call_count == calls
    assert service.db.officers.find_one({"_id": "511322-scjg-0001"})["fact_ids"] == [REGISTERED["event_id"]]


def test_impossible_fact_is_poison_not_retried(service):
    bad = envelope("credential.issued", {**ISSUED["payload"], "valid_to": "2020-01-01"})  # ends before it starts
    with pytest.raises(PoisonMessage):
        service.handle_officer(bad)


def test_suspension_command_and_verdict(service):
    service.handle_officer(REGISTERED)
    service.handle_officer(ISSUED)
    assert service.verify_officer("511322-scjg-0001", "market", "2025-05-02T10:00:00+08:00")["reasons"][0]["code"] \
        == "unfiled"
    filed = service.change_credential("file", "511322-scjg-0001", "HB13000000215", "2025-05-03T09:00:00+08:00", SCJG)
    assert filed["ok"], filed
    assert service.verify_officer("511322-scjg-0001", "market", "2025-05-04T10:00:00+08:00")["allowed"] is True
    done = service.change_credential("suspend", "511322-scjg-0001", "HB13000000215", "2025-05-10T09:00:00+08:00",
                                     SCJG, reason="涉嫌违纪")
    assert done["ok"], done
    verdict = service.verify_officer("511322-scjg-0001", "market", "2025-05-11T10:00:00+08:00")
    assert verdict["allowed"] is False and "suspended" in {r["code"] for r in verdict["reasons"]}
    again = service.change_credential("restore", "511322-scjg-0001", "NO-SUCH", "2025-05-12T09:00:00+08:00", SCJG)
    assert again["ok"] is False and again["error"]["message"]


def test_the_settle_instant_is_due_only_when_a_finding_was_held_back(service):
    """Arrivals that hold no finding back are not judged again when they settle (no sweep re-evaluation
    and no due-date write per fact); with a finding held back they are (docs/consistency.md, rule 2)."""
    service.handle_officer(REGISTERED)
    doc = service.db.officers.find_one({"_id": "511322-scjg-0001"})
    assert doc["findings_open"] == {} and doc["due_at"] != NOW + timedelta(seconds=10)
    assert settle(service) == []
    service.handle_officer(ISSUED)  # a State Council credential not filed: held back while settling
    assert service.db.officers.find_one({"_id": "511322-scjg-0001"})["due_at"] == NOW + timedelta(seconds=10)
    # asked outside an evaluation (not known whether anything was held back): the settle instant stays
    adapter = service.adapter(service.aggregate("officer"))
    officer = adapter.fold(service.aggregate_doc("officer", "511322-scjg-0001")["facts"])
    assert adapter.due_at(officer, NOW) == NOW + timedelta(seconds=10)
