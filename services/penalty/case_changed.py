"""`case.changed`: the small summary of a penalty case that the handover service (行刑衔接) reads.

Contract: contracts/events/penalty_internal.py. Sent by the penalty adapter's `changed_events`
once a case has something a handover rule needs (measures, a decision, a transfer to the police);
the kernel drops a summary whose content did not change. The item's legal basis (law + article,
what crime thresholds key on) comes from penalty's own registry projection — no RPC.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from services.kernel.aggregates import derived_event_id, outbound
from services.penalty import projections
from services.penalty.domain.case import Case


def legal_basis(item_payload: Mapping[str, Any] | None, at: datetime) -> list[dict]:
    """(law, article) pairs of the item version in force at `at` (latest known if none yet)."""
    if not item_payload:
        return []
    item = projections.item_record(item_payload)
    if not item.versions:
        return []
    version = item.latest_version_on(at) or item.versions[0]
    return [{"law": b.law, "article": b.article} for b in version.legal_basis if b.law and b.article]


def payload(case: Case, item_payload: Mapping[str, Any] | None, revision: int, as_of: datetime) -> dict | None:
    d = case.decision
    if not case.exists or (d is None and not case.measures and not case.handovers):
        return None
    item_code = (d.item_code if d else "") or case.item_code
    out: dict[str, Any] = {
        "case_id": case.case_id, "dept": case.dept, "revision": revision, "as_of": as_of.isoformat(),
        "item_code": item_code or None, "legal_basis": legal_basis(item_payload, d.at if d else as_of),
        "measures": dict(case.measures), "decision": None, "payments": [],
        "transferred_at": [t.isoformat() for t in case.handovers],
    }
    if d is not None:
        out["decision"] = {"decision_no": d.decision_no, "decided_at": d.at.isoformat(), "kinds": list(d.kinds),
                           "fine_amount": d.fine_amount, "revoked": d.revoked}
        out["payments"] = [{"at": p.at.isoformat(), "amount": p.amount} for p in d.payments]
    return out


def events(case: Case, items: Mapping[str, Mapping[str, Any]], revision: int, cause: str, as_of: datetime) -> list[dict]:
    """The `case.changed` event of `case` (none while nothing a handover rule reads exists)."""
    code = (case.decision.item_code if case.decision else "") or case.item_code
    body = payload(case, items.get(code) if code else None, revision, as_of)
    if body is None:
        return []
    return [outbound("case.changed", body, dept=case.dept, source="penalty", occurred_at=as_of,
                     event_id=derived_event_id(cause, "case.changed", case.case_id))]
