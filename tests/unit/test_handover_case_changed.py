"""Penalty's `case.changed` (the summary the handover service reads): built from a folded case,
valid against its contract, carrying the item's legal basis from penalty's registry projection."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime

from contracts.catalog import Catalog
from contracts.events.penalty import CONTRACTS as CASE_CONTRACTS
from contracts.events.registry_internal import CONTRACTS as REGISTRY_INTERNAL
from services.common.chinatime import CST
from services.handover.domain import PenaltyCaseView, thresholds_reached
from services.penalty import case_changed
from services.penalty.domain import case as c

EXAMPLES = {x.type: x.example for x in CASE_CONTRACTS}
ITEM = next(x.example for x in REGISTRY_INTERNAL if x.type == "item.changed")
AS_OF = datetime(2026, 6, 1, tzinfo=CST)


def fact(type_: str, when: str, **over) -> c.Fact:
    payload = {**copy.deepcopy(EXAMPLES[type_]), **over}
    return c.Fact.from_dict({"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
                             "occurred_at": when, "dept": "370322-scjg", "source": "t", "payload": payload})


def test_nothing_is_sent_before_the_case_has_measures_a_decision_or_a_transfer():
    case = c.fold([fact("case.filed", "2026-03-03T09:00:00+08:00")])
    assert case_changed.events(case, {}, 1, "cause", AS_OF) == []


def test_a_decided_and_paid_case_is_summarised_with_its_legal_basis():
    code = ITEM["item_code"]
    facts = [fact("case.filed", "2026-03-03T09:00:00+08:00", item_code=code),
             fact("case.investigated", "2026-03-04T09:00:00+08:00"),
             fact("case.notified", "2026-03-10T09:00:00+08:00", hearing_right=False),
             fact("case.decided", "2026-04-01T09:00:00+08:00", item_code=code),
             fact("case.served", "2026-04-02T09:00:00+08:00", served_at="2026-04-02T09:00:00+08:00"),
             fact("case.paid", "2026-04-05T09:00:00+08:00")]
    case = c.fold(facts)
    [event] = case_changed.events(case, {code: ITEM}, 4, "cause", AS_OF)
    Catalog().validate({**event, "event_id": str(uuid.uuid4())}, direction="internal")
    body = event["payload"]
    assert body["decision"]["kinds"] == ["fine", "confiscation"] and body["payments"][0]["amount"] == 50000
    assert body["measures"] == {"sales_amount": 8600}
    assert body["legal_basis"] and all(b["law"] and b["article"] for b in body["legal_basis"])
    view = PenaltyCaseView.from_payload(body)
    assert view.penalized and view.paid_before(datetime(2026, 4, 6, tzinfo=CST)) == 50000
    law, article = body["legal_basis"][0]["law"], body["legal_basis"][0]["article"]
    hit = thresholds_reached(view, [{"id": "X", "bases": [{"law": law, "article": article}], "law": "《刑法》",
                                     "measure": "sales_amount", "threshold": 5000, "name": "某罪"}])
    assert [h["id"] for h in hit] == ["X"]
