"""Registry service with nameko's worker_factory: ingress facts in, `item.changed` and findings out,
refused facts dead-lettered; the `item.changed` contract against what the service really emits."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import worker_factory

from contracts.catalog import Catalog, ContractError
from contracts.events.registry import CONTRACTS as INGRESS
from contracts.events.registry_internal import CONTRACTS as INTERNAL, ITEM_CHANGED
from plugins.host import build_plugin_manager
from services.kernel.messaging import PoisonMessage
from services.kernel.settings import DeptSettings, RunConfig
from services.registry import domain as d
from services.registry.service import RegistryAdapter, RegistryService, item_changed_payload, record_of
from tests.fakes import FakeDb

CST = timezone(timedelta(hours=8))
NOW = datetime(2024, 10, 8, 9, 0, tzinfo=CST)
CODE = "330217001000"
SCJG = "511322-scjg"
EXAMPLES = {c.type: c.example for c in INGRESS}
CATALOG = Catalog([*INGRESS, *INTERNAL])


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager(load_entrypoints=False)


@pytest.fixture
def service(plugins):
    return worker_factory(RegistryService, db=FakeDb(), plugins=plugins, clock=lambda: NOW,
                          settings=DeptSettings.of(RegistryService.manifest, plugins), conf=RunConfig.from_config())


def envelope(type_: str, payload: dict, occurred_at: str = "2024-07-01T09:30:00+08:00") -> dict:
    return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1, "occurred_at": occurred_at,
            "dept": SCJG, "source": "scjg-zfxt", "payload": payload}


def example(type_: str, **changes) -> dict:
    env = envelope(type_, {**copy.deepcopy(EXAMPLES[type_]), **changes})
    CATALOG.validate(env)  # every fact the tests send is one the gateway would let through
    return env


def dispatched(service, type_: str) -> list[dict]:
    return [call.args[1] for call in service.dispatch.call_args_list if call.args[0] == type_]


def test_item_changed_example_is_internal_and_round_trips():
    env = envelope("item.changed", ITEM_CHANGED.example)
    assert CATALOG.validate(json.loads(json.dumps(env)), direction="internal") is ITEM_CHANGED
    assert (ITEM_CHANGED.owner, ITEM_CHANGED.version, ITEM_CHANGED.direction) == ("registry", 1, "internal")
    assert ITEM_CHANGED.doc and "\n" not in ITEM_CHANGED.doc
    # departments cannot publish it
    with pytest.raises(ContractError):
        CATALOG.validate(env)


def test_published_item_is_stored_and_announced_as_item_changed(service):
    service.handle_item(example("item.published"))

    [changed] = dispatched(service, "item.changed")
    assert CATALOG.validate(changed, direction="internal") is ITEM_CHANGED
    assert changed["source"] == "registry" and changed["dept"] == SCJG
    payload = changed["payload"]
    assert (payload["item_code"], payload["revision"]) == (CODE, 1)
    assert payload["versions"][0]["delegated_depts"] == ["511322-jxz"]
    item = service.get_item(CODE)
    assert item["current"]["version"] == 1 and len(item["history"]) == 1


def test_standard_reaches_projections_as_flat_tier_ranges(service):
    service.handle_item(example("item.published"))
    service.handle_item(example("standard.published"))

    changed = dispatched(service, "item.changed")[-1]
    assert changed["payload"]["revision"] == 2
    [standard] = changed["payload"]["standards"]
    assert standard["tiers"][2] == {"tier": "normal", "name": "一般", "kind": "amount", "min": 70000, "max": 80000}
    assert service.tier_range(CODE, "一般", "2024-08-01")["max"] == 80000
    assert service.tier_range(CODE, "normal", "2024-06-30")["error"]["code"] == "standard_not_found"
    assert service.tier_range(CODE, "normal", "yesterday")["error"]["code"] == "invalid_at"
    assert service.tier_range("NOPE", "normal")["error"]["code"] == "not_found"


def test_refused_standard_is_poison_with_every_reason(service):
    service.handle_item(example("item.published"))
    three = copy.deepcopy(EXAMPLES["standard.published"]["tiers"][:3])

    with pytest.raises(PoisonMessage) as err:
        service.handle_item(example("standard.published", tiers=three))
    assert "invalid_standard" in str(err.value) and "至少应有 5 个阶次，实有 3 个" in str(err.value)
    # nothing was recorded and nothing announced
    assert service.get_item(CODE)["standards"] == []
    assert len(dispatched(service, "item.changed")) == 1


def test_impossible_date_is_refused_at_the_ingress_and_poison_if_it_gets_through(service):
    from contracts.catalog import ContractError

    with pytest.raises(ContractError, match="calendar_date"):  # the gateway refuses it first
        example("item.published", effective_from="2024-02-30")
    env = envelope("item.published", {**copy.deepcopy(EXAMPLES["item.published"]), "effective_from": "2024-02-30"})
    with pytest.raises(PoisonMessage) as err:
        service.handle_item(env)
    assert "invalid_fact" in str(err.value)


def test_redelivered_fact_is_applied_once(service):
    env = example("item.published")
    service.handle_item(env)
    service.handle_item(copy.deepcopy(env))
    assert len(dispatched(service, "item.changed")) == 1
    assert len(service.get_item(CODE)["history"]) == 1


def test_overdue_standard_raises_finding_with_the_item(service):
    service.handle_item(example("item.published", effective_from="2023-01-01", delegated_to_township=False,
                                delegated_depts=[]))

    [raised] = dispatched(service, "finding.raised")
    assert raised["payload"]["rule_id"] == d.RULE_STANDARD_MISSING
    assert [f["rule_id"] for f in service.get_item(CODE)["findings"]] == [d.RULE_STANDARD_MISSING]


def test_settings_come_from_the_jurisdiction_preset(plugins):
    settings = DeptSettings.of(RegistryService.manifest, plugins).for_dept(SCJG)  # seed001 by default: five tiers
    assert settings.min_tiers == 5 and settings.standard_filing_deadline == (8, 15)


def test_accepted_standards_are_not_revalidated_when_folded():
    """A stricter preset later never un-accepts history (nor makes the deadline sweep raise)."""
    three = copy.deepcopy(EXAMPLES["standard.published"]["tiers"][:3])
    facts = [envelope("item.published", copy.deepcopy(EXAMPLES["item.published"])),
             envelope("standard.published", {**copy.deepcopy(EXAMPLES["standard.published"]), "tiers": three})]
    national = d.RegistrySettings(min_tiers=3, lightest_tier_floor_ratio=0)
    accepted = RegistryAdapter(national, incoming=facts[1]["event_id"]).fold(facts)
    assert len(accepted.standards) == 1

    strict = d.RegistrySettings(min_tiers=5)
    assert len(RegistryAdapter(strict).fold(facts).standards) == 1
    with pytest.raises(d.InvalidStandardError):
        RegistryAdapter(strict, incoming=facts[1]["event_id"]).fold(facts)


def test_item_changed_payload_keeps_every_version_window():
    published = envelope("item.published", copy.deepcopy(EXAMPLES["item.published"]))
    amended = envelope("item.amended", copy.deepcopy(EXAMPLES["item.amended"]))
    record = record_of(CODE, [published, amended])

    payload = item_changed_payload(record, NOW, SCJG)
    CATALOG.validate(envelope("item.changed", payload), direction="internal")
    first, second = payload["versions"]
    assert (first["effective_from"], first["effective_to"]) == ("2024-03-01", "2024-08-31")
    assert (second["effective_from"], second["effective_to"], second["delegated_to_township"]) == (
        "2024-09-01", None, False)
    assert payload["revision"] == 2 and payload["as_of"] == NOW.isoformat()
