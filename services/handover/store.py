"""Handover storage: handover and penalty-case aggregate documents, the links between them, and
counters kept on write (FerretDB v1 cannot group on read).

Counters: `counters` holds one document per (party, status) and per ('*', status) with `n`, the
number of handovers in that status that involve the party. `after_save` moves a handover from its
old (parties, status) to its new one; `status_of` remembers what was counted, guarded by the
aggregate's version so a slow writer never recounts an older state over a newer one.
`month_counters` holds one document per (handing-over department or '*', month) with `reached.<status>`:
how many handovers reached that status in the month (the month of the step that moved it), counted
under the same version guard — the coordination service reads it for its monthly/quarterly reports.

Links: `case_handovers` holds, per penalty case id, the handovers that name it (`{_id: case_id,
handovers: [...]}`), kept after every save of a handover (a store listener, so facts, commands and
sweeps alike). A `case.changed` reads its handovers through it by `_id` — FerretDB v1 would decode
every handover document for a `find({"snapshot.case_id": ...})`, and did so twice per `case.changed`.
It is built from the handovers at the first start that finds it missing.

Which cases have handovers at all: `linked_cases` holds one document `{_id: "cases", ids: [...]}`,
the ids of the cases any handover ever named (added after the link, never removed: a case whose
handovers all moved away costs one `_id` look-up in `case_handovers`, nothing else). After a batch of
`case.changed` the service reads it once and looks up `case_handovers` only for the cases in it
(`cases_with_handovers`) — one read per batch instead of one per case saved; FerretDB v1 would scan
the collection for a `{_id: {$in: ...}}`. Built from `case_handovers` at the first start without it.
"""
from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel.aggregates import AggregateStore
from services.kernel.packing import FACTS, unpack_from

ALL = "*"


def ensure_indexes(db: Database) -> None:
    AggregateStore.ensure_indexes(db.handovers, "dept", "snapshot.parties", "snapshot.case_id", "snapshot.status")
    AggregateStore.ensure_indexes(db.penalty_cases, "dept")
    db.month_counters.create_index("month")
    if db.case_handovers.find_one({}, {"_id": 1}) is None:  # first start with the links: build them
        for doc in db.handovers.find({}, {"snapshot.case_id": 1}):
            link_case(db, doc["_id"], None, (doc.get("snapshot") or {}).get("case_id"), set())
    if db.linked_cases.find_one({"_id": LINKED_CASES}, {"_id": 1}) is None:  # first start with the index
        ids = sorted(doc["_id"] for doc in db.case_handovers.find({}, {"_id": 1}))
        db.linked_cases.update_one({"_id": LINKED_CASES}, {"$addToSet": {"ids": {"$each": ids}}}, upsert=True)


LINKED_CASES = "cases"  # the `_id` of the one `linked_cases` document


def link_case(db: Database, handover_id: str, old_case: str | None, new_case: str | None, known: set) -> None:
    """Keep `case_handovers` in step with a saved handover (idempotent). `known` is a process-local
    set of (case id, handover id) links already written, to skip repeat writes."""
    if old_case and old_case != new_case:
        db.case_handovers.update_one({"_id": old_case}, {"$pull": {"handovers": handover_id}})
        known.discard((old_case, handover_id))
    if new_case and (new_case, handover_id) not in known:
        db.case_handovers.update_one({"_id": new_case}, {"$addToSet": {"handovers": handover_id}}, upsert=True)
        # after the link: whoever finds the case in the index finds its link too
        db.linked_cases.update_one({"_id": LINKED_CASES}, {"$addToSet": {"ids": new_case}}, upsert=True)
        known.add((new_case, handover_id))


def cases_with_handovers(db: Database) -> set[str]:
    """The ids of the cases any handover named (a superset of those that have one now)."""
    doc = db.linked_cases.find_one({"_id": LINKED_CASES})
    return set(doc.get("ids") or ()) if doc else set()


def handover_ids_of_case(db: Database, case_id: str) -> list[str]:
    doc = db.case_handovers.find_one({"_id": case_id})
    return sorted(doc.get("handovers") or ()) if doc else []


def handover_docs_of_case(db: Database, case_id: str) -> list[dict]:
    """The handovers naming `case_id`, with their facts (one `_id` look-up each)."""
    found = (db.handovers.find_one({"_id": h}, {**FACTS, "snapshot.case_id": 1})
             for h in handover_ids_of_case(db, case_id))
    return [unpack_from(db.handovers, doc) for doc in found
            if doc is not None and (doc.get("snapshot") or {}).get("case_id") == case_id]


def case_doc(db: Database, case_id: str) -> dict | None:
    return unpack_from(db.penalty_cases, db.penalty_cases.find_one({"_id": case_id}, FACTS))


def mark_due(store: AggregateStore, agg_id: str, when: datetime) -> None:
    """Re-evaluate an existing aggregate at the next sweep (a linked aggregate changed)."""
    if store.col.find_one({"_id": agg_id}, {"_id": 1}) is not None:
        store.mark_due(agg_id, when)


SUMMARY = {"snapshot.handover_id": 1, "snapshot.dept": 1, "snapshot.case_id": 1, "snapshot.status": 1,
           "snapshot.status_label": 1, "snapshot.origin": 1, "snapshot.suspected_crime": 1,
           "snapshot.police_dept": 1, "snapshot.procuratorates": 1, "snapshot.parties": 1,
           "snapshot.transfer": 1, "findings_count": 1}


def list_handovers(db: Database, *, party: str | None, status: str | None, case_id: str | None,
                   origin: str | None, limit: int, offset: int) -> dict:
    query: dict = {}
    if party:
        query["snapshot.parties"] = party
    if status:
        query["snapshot.status"] = status
    if case_id:
        query["snapshot.case_id"] = case_id
    if origin:
        query["snapshot.origin"] = origin
    docs = db.handovers.find(query, SUMMARY).sort("_id", ASCENDING).skip(offset).limit(limit)
    items = []
    for doc in docs:
        snap = doc.get("snapshot") or {}
        items.append({**{k: v for k, v in snap.items() if k != "parties"}, "depts": snap.get("parties", []),
                      "transferred_at": (snap.get("transfer") or {}).get("at"),
                      "open_findings": doc.get("findings_count", 0)})
        items[-1].pop("transfer", None)
    return {"items": items, "total": db.handovers.count_documents(query), "limit": limit, "offset": offset}


def count_status(db: Database, handover_id: str, version: int, parties: list[str], status: str,
                 dept: str | None = None, month: str | None = None) -> None:
    """Move one handover's count from what was last counted to (parties, status); a new status is
    also counted as reached in `month` (the month of its latest step) for the handing-over `dept`
    and the county (`month_counters`, the coordination service's reports)."""
    new = {"version": version, "parties": sorted(set(parties)), "status": status}
    try:
        old = db.status_of.find_one_and_update({"_id": handover_id, "version": {"$lt": version}}, {"$set": new},
                                               upsert=True)
    except DuplicateKeyError:
        return  # a newer state was counted already
    if old is not None and old.get("status") == status and old.get("parties") == new["parties"]:
        return
    # upsert both ways: a racing writer's decrement may reach a counter before the increment creating it
    moves = [(party, old["status"], -1) for party in old.get("parties", []) + [ALL]] if old else []
    moves += [(party, status, 1) for party in new["parties"] + [ALL]]
    for party, what, step in moves:
        db.counters.update_one({"_id": f"{party}|{what}"},
                               {"$inc": {"n": step}, "$setOnInsert": {"party": party, "status": what}}, upsert=True)
    if month and status != "unknown" and (old is None or old.get("status") != status):
        for party in {dept or ALL, ALL}:
            db.month_counters.update_one({"_id": f"{party}|{month}"},
                                         {"$inc": {f"reached.{status}": 1},
                                          "$setOnInsert": {"dept": party, "month": month}}, upsert=True)


def month_counters(db: Database, months) -> dict[str, dict[str, dict]]:
    """{dept or '*': {month: {status: handovers that reached it in the month}}}."""
    out: dict[str, dict[str, dict]] = {}
    for doc in db.month_counters.find({"month": {"$in": sorted(set(months))}}):
        out.setdefault(doc["dept"], {})[doc["month"]] = {k: int(v) for k, v in (doc.get("reached") or {}).items() if v}
    return out


def counters(db: Database, party: str | None) -> dict:
    key = party or ALL
    by_status = {}
    for doc in db.counters.find({"party": key}):
        if doc.get("n"):
            by_status[doc["status"]] = doc["n"]
    return {"dept": party, "by_status": by_status, "total": sum(by_status.values())}
