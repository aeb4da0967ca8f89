"""Registry storage: one aggregate document per item code, one document per leniency list.

Item documents are the kernel's aggregates (facts + snapshot + findings + outbox); the snapshot
lists `depts` (every owner or delegated township) so a department's items are one indexed query.
Leniency lists are immutable facts: a later list replaces an earlier one by date, never by
overwriting, so each is stored once under its event id.
"""
from __future__ import annotations

from typing import Iterable

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel.aggregates import AggregateStore
from services.kernel.packing import FACTS, unpack_from

ITEM_FIELDS = {**FACTS, "findings_open": 1, "dept": 1}  # facts packed (kernel/packing.py)
MAX_ITEMS = 5000


def ensure_indexes(db: Database) -> None:
    AggregateStore.ensure_indexes(db.items, "dept", "snapshot.depts")
    db.leniency_lists.create_index("dept")


def items(db: Database) -> AggregateStore:
    return AggregateStore(db.items)


def item_docs_of_dept(db: Database, dept: str, limit: int = MAX_ITEMS) -> list[dict]:
    """Item documents the department ever owned or had delegated (facts and open findings)."""
    return [unpack_from(db.items, doc)
            for doc in db.items.find({"snapshot.depts": dept}, ITEM_FIELDS).sort("_id", ASCENDING).limit(limit)]


def add_leniency_list(db: Database, event_id: str, doc: dict) -> bool:
    """Store one published list; False when that event was stored before (redelivery)."""
    try:
        db.leniency_lists.insert_one({"_id": event_id, **doc})
    except DuplicateKeyError:
        return False
    return True


def leniency_lists(db: Database, depts: Iterable[str]) -> list[dict]:
    wanted = sorted(set(depts))
    if not wanted:
        return []
    return list(db.leniency_lists.find({"dept": {"$in": wanted}}, {"_id": 0}).sort("_id", ASCENDING))
