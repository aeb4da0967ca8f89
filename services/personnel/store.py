"""Personnel storage: officer and agency aggregate documents (facts + snapshot + outbox)."""
from __future__ import annotations

import re

from pymongo import ASCENDING
from pymongo.database import Database

from services.kernel.aggregates import AggregateStore
from services.kernel.packing import reading, unpack_from


def ensure_indexes(db: Database) -> None:
    AggregateStore.ensure_indexes(db.officers, "dept", "snapshot.credential_numbers")
    AggregateStore.ensure_indexes(db.agencies, "dept")


# the snapshot is packed (manifest: only status, name and credential numbers are lifted for the queries)
PUBLIC = reading("snapshot", "dept", "version", "findings_open")


def list_officers(db: Database, *, dept: str | None, status: str | None, q: str | None,
                  limit: int, offset: int) -> dict:
    query: dict = {}
    if dept:
        query["dept"] = dept
    if status:
        query["snapshot.status"] = status
    if q:
        query["snapshot.name"] = {"$regex": re.escape(q[:50])}
    cursor = db.officers.find(query, PUBLIC).sort("_id", ASCENDING).skip(offset).limit(limit)
    items = [doc["snapshot"] | {"open_findings": len(doc.get("findings_open", {}))}
             for doc in (unpack_from(db.officers, d) for d in cursor)]
    return {"items": items, "total": db.officers.count_documents(query), "limit": limit, "offset": offset}


def officer_by_credential(db: Database, number: str) -> dict | None:
    return unpack_from(db.officers, db.officers.find_one({"snapshot.credential_numbers": number}))
