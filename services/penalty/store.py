"""Penalty storage: case aggregates, the officer and item projections, the decisions index.

- `cases`: the kernel's aggregate documents (facts + snapshot + findings + due date + outbox);
  the snapshot lists the officers, item codes and party a case refers to (indexed).
- `officers` / `items`: the newest `officer.changed` / `item.changed` payload per id, kept only
  when its version is not older than the stored one, so out-of-order delivery is harmless.
- `decisions`: one entry per decided case (its current decision), looked up by party.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel.aggregates import AggregateStore

MAX_OTHER_DECISIONS = 500
SUMMARY_FIELDS = {"snapshot": 1, "dept": 1, "due_at": 1, "evaluated_at": 1, "version": 1}


def ensure_indexes(db: Database) -> None:
    AggregateStore.ensure_indexes(db.cases, "dept", "snapshot.stage", "snapshot.officer_ids",
                                  "snapshot.item_codes", "snapshot.party_id", "snapshot.overdue",
                                  "snapshot.open_findings")
    db.decisions.create_index("party_id")


def cases(db: Database) -> AggregateStore:
    return AggregateStore(db.cases)


# -- projections ----------------------------------------------------------------------------------

def _upsert_newer(col: Collection, key: str, version: int, payload: dict, now: datetime) -> bool:
    """Keep `payload` unless a newer version is stored; True when it was stored (or re-stored)."""
    try:
        col.update_one({"_id": key, "version": {"$lte": version}},
                       {"$set": {"version": version, "payload": payload, "received_at": now}}, upsert=True)
    except DuplicateKeyError:  # a newer version is stored: the filter missed and the insert collided
        return False
    return True


def _officer_facts(payload: dict | None) -> tuple:
    """What the credential rule reads from an officer projection (statuses as-of excluded)."""
    if payload is None:
        return ()
    creds = [{k: v for k, v in c.items() if k != "status"} for c in payload.get("credentials", [])]
    return payload.get("kind"), payload.get("active"), creds


def upsert_officer(db: Database, payload: dict, now: datetime) -> bool:
    """Store a newer officer projection; True only when what the rules read has changed."""
    old = db.officers.find_one({"_id": payload["officer_id"]}, {"payload": 1})
    stored = _upsert_newer(db.officers, payload["officer_id"], int(payload["version"]), payload, now)
    return stored and _officer_facts(old and old["payload"]) != _officer_facts(payload)


def upsert_item(db: Database, payload: dict, now: datetime) -> bool:
    return _upsert_newer(db.items, payload["item_code"], int(payload["revision"]), payload, now)


def projected(db: Database, officer_ids: Iterable[str], item_codes: Iterable[str]) -> tuple[dict, dict]:
    """The stored officer and item payloads a case refers to, by id."""
    officer_ids, item_codes = sorted(set(officer_ids)), sorted(set(item_codes))
    # one _id lookup each: FerretDB v1 pushes down `_id` equality only, so `$in` would read every document
    officers = {d["_id"]: d["payload"] for d in (db.officers.find_one({"_id": i}) for i in officer_ids) if d}
    items = {d["_id"]: d["payload"] for d in (db.items.find_one({"_id": c}) for c in item_codes) if d}
    return officers, items


REF_FIELDS = ("officer_ids", "item_codes", "party_id")


def ref_keys(snapshot: dict) -> list[str]:
    """Reverse-index keys of what a case refers to: `officer_ids:<id>`, `item_codes:<code>`, `party_id:<id>`."""
    keys = []
    for field in REF_FIELDS:
        values = snapshot.get(field)
        for value in values if isinstance(values, list) else [values]:
            if value:
                keys.append(f"{field}:{value}")
    return keys


def index_refs(db: Database, case_id: str, snapshot: dict, known: set) -> None:
    """Record in `case_refs` which cases refer to each officer, item and party (idempotent).

    `known` is a process-local set of (key, case_id) already written, to skip repeat writes.
    """
    for key in ref_keys(snapshot):
        if (key, case_id) not in known:
            db.case_refs.update_one({"_id": key}, {"$addToSet": {"cases": case_id}}, upsert=True)
            known.add((key, case_id))


def cases_referring(db: Database, field: str, value: Any) -> list[str]:
    doc = db.case_refs.find_one({"_id": f"{field}:{value}"})
    return list(doc.get("cases", [])) if doc else []


def mark_due(db: Database, field: str, value: Any, now: datetime, *, except_case: str | None = None) -> int:
    """Make every case that refers to `value` (officer, item code or party) due now.

    Cases are found through the `case_refs` reverse index by `_id` (no scan of the cases). The
    version bump makes a concurrent save of the same case retry on fresh projections.
    """
    cases = AggregateStore(db.cases)
    return sum(cases.mark_due(case_id, now) for case_id in cases_referring(db, field, value)
               if case_id != except_case)


# -- decisions index ------------------------------------------------------------------------------

def index_decision(db: Database, case_id: str, entry: dict | None) -> bool:
    """Store (or drop) the decisions-index entry of a case; True when it changed."""
    current = db.decisions.find_one({"_id": case_id})
    if current is not None:
        current.pop("_id")
    if current == entry:
        return False
    if entry is None:
        db.decisions.delete_one({"_id": case_id})
    else:
        db.decisions.replace_one({"_id": case_id}, entry, upsert=True)
    return True


def other_decisions(db: Database, party_id: str | None, case_id: str) -> list[dict]:
    if not party_id:
        return []
    others = sorted(c for c in cases_referring(db, "party_id", party_id) if c != case_id)[:MAX_OTHER_DECISIONS]
    found = (db.decisions.find_one({"_id": c}, {"_id": 0}) for c in others)
    return [d for d in found if d]


# -- queries --------------------------------------------------------------------------------------

def list_cases(db: Database, *, dept: str | None, stage: str | None, overdue: bool | None,
               limit: int, offset: int) -> tuple[list[dict], int]:
    query: dict[str, Any] = {}
    if dept:
        query["dept"] = dept
    if stage:
        query["snapshot.stage"] = stage
    if overdue is True:
        query["snapshot.overdue"] = True
    elif overdue is False:
        query["snapshot.overdue"] = {"$ne": True}
    docs = list(db.cases.find(query, SUMMARY_FIELDS).sort("_id", ASCENDING).skip(offset).limit(limit))
    return docs, db.cases.count_documents(query)
