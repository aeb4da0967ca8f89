"""Inspection storage: the kernel's aggregate documents plus side collections kept on write.

- `plans`, `pools`, `draws`, `enterprises`, `units`: aggregate documents (AggregateStore).
- `officers` / `items`: the newest `officer.changed` / `item.changed` payload per id (the same
  keep-the-newer projection penalty uses, services/penalty/store.py) and, in `targets`, the
  enterprises whose inspections refer to it, so a late projection makes exactly those enterprises
  due for re-evaluation (no scan). Storing one projection is one findAndModify that hands back the
  document it replaced, targets included: no read of its own; a batch's are one read, one insert and
  one bulk of guarded updates (`store_projections`). An enterprise may refer to an officer
  or item before its projection arrives: then `targets` waits in a placeholder (`version` -1, no
  payload). (These were a `refs` collection read on every projection change; `ensure_indexes`
  moves one left by an earlier version into the projections once.)
- `inspection_index`: inspection id -> enterprise and department (checking a 检查码 needs it).
- `draw_secrets`: the secret seed of each commit-reveal announcement until it is revealed by the
  draw (never part of the facts, so it cannot leak through a query before the draw).
- `figures` / `counted`: counters for the console's figures (per year; per month too, with `dept` and
  `month` fields, for the coordination reports), incremented once per inspection and
  department (`counted` is the idempotency marker; written first, so a crash between can only
  under-count, never double-count).
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from pymongo import ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel.aggregates import AggregateStore
from services.kernel.mongo import Failed, by_id, insert_new
from services.kernel.packing import unpack_from
from services.kernel.sidewrites import chunked

MAX_LIST = 5000
ALL = "*"          # the county in the figures' keys


def ensure_indexes(db: Database) -> None:
    _move_refs(db)
    AggregateStore.ensure_indexes(db.plans, "dept", "snapshot.year")
    AggregateStore.ensure_indexes(db.pools, "dept")
    AggregateStore.ensure_indexes(db.draws, "dept")
    AggregateStore.ensure_indexes(db.enterprises, "snapshot.depts")
    AggregateStore.ensure_indexes(db.units, "dept")
    db.inspection_index.create_index("dept")
    db.figures.create_index("month")


def aggregate(db: Database, collection: str, agg_id: str) -> dict | None:
    return unpack_from(db[collection], db[collection].find_one({"_id": agg_id}))  # facts packed (kernel/packing.py)


def officer_payloads(db: Database, officer_ids: Iterable[str]) -> dict[str, dict]:
    found = (db.officers.find_one({"_id": i}) for i in sorted(set(officer_ids)))
    return {doc["_id"]: doc["payload"] for doc in found if doc and doc.get("payload") is not None}


def item_payloads(db: Database, codes: Iterable[str]) -> dict[str, dict]:
    found = (db.items.find_one({"_id": c}) for c in sorted(set(codes)))
    return {doc["_id"]: doc["payload"] for doc in found if doc and doc.get("payload") is not None}


def officers_of_dept(db: Database, dept: str) -> list[dict]:
    return [doc["payload"] for doc in db.officers.find({"payload.dept": dept}).limit(MAX_LIST)]


# -- projections and the enterprises referring to them ------------------------------------------------

PLACEHOLDER = -1        # the version of a projection not received yet (only its `targets`)
REFS_MOVED = {"_id": "inspection:refs-in-projections"}


def store_projection(col: Collection, key: str, version: int, payload: dict, now: datetime) -> tuple[bool, dict | None]:
    """Keep `payload` unless a newer version is stored: (whether it was stored — or stored again —,
    the document it replaced: None for a new one, a placeholder, or the older projection; with the
    `targets` referring to it)."""
    try:
        old = col.find_one_and_update({"_id": key, "version": {"$lte": version}},
                                      {"$set": {"version": version, "payload": payload, "received_at": now}},
                                      upsert=True, return_document=ReturnDocument.BEFORE)
    except DuplicateKeyError:  # a newer version is stored: the filter missed and the insert collided
        return False, None
    return True, old


def store_projections(col: Collection, entries: list[tuple[str, int, dict]], now: datetime) -> list:
    """`store_projection` of each of a batch's (key, version, payload), in order: its answer, or
    `Failed` (its write raised). The batch's projections are read in one find; the first versions
    of new ones are inserted in one unordered insert, and one stored already is updated in one ordered
    bulk guarded by what was read of it — its version *and* its `targets` — instead of a findAndModify
    each (under a burst most officers are new; a findAndModify alone costs FerretDB several times an
    insert or an update in a bulk). The guard on `targets` keeps the answer exact: an enterprise that
    added itself since the read (`index_refs`, then its `projection_newer` check) makes the guard miss,
    so no enterprise referring to the projection is left out of the answer. What missed — an insert
    that collided (another writer stored it, or a placeholder, since the read), a guard (any of the
    bulk) — is written alone as before, and its answer is that write's (the same version stored
    again answers as a redelivery). A later version of a projection in the batch is guarded by the one
    before it. A key that is not a string fails (`Failed`, TypeError), unwritten. Raises when the read fails."""
    answers: list = [None] * len(entries)
    stored = by_id(col, [key for key, _, _ in entries if isinstance(key, str)])

    def alone(i: int) -> None:
        key, version, payload = entries[i]
        try:
            answers[i] = store_projection(col, key, version, payload, now)
        except Exception:
            answers[i] = Failed(sys.exc_info())

    inserts, ops, guarded = [], [], []
    for i, (key, version, payload) in enumerate(entries):
        if not isinstance(key, str):  # (an operator object as `_id` would select another document)
            try:
                raise TypeError("a projection's key must be a string")
            except TypeError:
                answers[i] = Failed(sys.exc_info())
            continue
        doc = stored.get(key)
        if doc is not None and (isinstance(doc.get("version"), bool) or not isinstance(doc.get("version"), int)):
            alone(i)
            continue
        new = {"version": version, "payload": payload, "received_at": now}
        if doc is None:
            stored[key] = {"_id": key, **new}
            inserts.append((i, stored[key]))
            answers[i] = (True, None)
        elif doc["version"] > version:
            answers[i] = (False, None)  # a newer one is stored
        else:
            targets = {"targets": doc["targets"]} if "targets" in doc else {"targets": {"$exists": False}}
            ops.append(UpdateOne({"_id": key, "version": doc["version"], **targets}, {"$set": new}))
            guarded.append(i)
            answers[i] = (True, doc)
            stored[key] = {**doc, **new}
    try:
        for position in sorted(insert_new(col, [first for _, first in inserts]) if inserts else ()):
            alone(inserts[position][0])
        missed = bool(ops) and chunked(col, ops) < len(ops)
    except Exception:  # (which of them landed is not known: each is written alone, idempotent)
        missed, guarded = True, [i for i, _ in inserts] + guarded
    if missed:
        for i in guarded:
            alone(i)
    return answers


def _ref(db: Database, key: str) -> tuple[Collection, str]:
    kind, _, ident = key.partition(":")
    return (db.officers if kind == "officer" else db.items), ident


def index_refs(db: Database, target_id: str, keys: Iterable[str], known: set) -> None:
    """Record that enterprise `target_id` refers to `keys` (`officer:<id>`, `item:<code>`)."""
    for key in keys:
        if (key, target_id) not in known:
            col, ident = _ref(db, key)
            col.update_one({"_id": ident}, {"$addToSet": {"targets": target_id},
                                            "$setOnInsert": {"version": PLACEHOLDER}}, upsert=True)
            known.add((key, target_id))


def mark_due(db: Database, targets: Iterable[str], now: datetime) -> int:
    """Make the enterprises `targets` due now (a projection they refer to changed), each once, in bulks."""
    return AggregateStore(db.enterprises).mark_many_due(targets, now)


def _move_refs(db: Database) -> None:
    """Once: the `refs` collection of an earlier version into the projections' `targets` (idempotent)."""
    if db.kernel_migrations.find_one(REFS_MOVED) is not None:
        return
    for doc in db.refs.find({}):
        if doc.get("targets"):
            col, ident = _ref(db, doc["_id"])
            col.update_one({"_id": ident}, {"$addToSet": {"targets": {"$each": list(doc["targets"])}},
                                            "$setOnInsert": {"version": PLACEHOLDER}}, upsert=True)
    db.kernel_migrations.replace_one(REFS_MOVED, REFS_MOVED, upsert=True)
    db.drop_collection("refs")


def projection_newer(db: Database, officer_ids: Iterable[str], item_codes: Iterable[str], since: datetime) -> bool:
    """Did an officer or item projection an aggregate refers to arrive at or after `since` (its
    evaluation)? Then the evaluation may have missed it: the projection's handler marks due only the
    aggregates already in its `targets`, and this one may have been added just after."""
    for col, ids in ((db.officers, officer_ids), (db.items, item_codes)):
        for key in set(ids):
            doc = col.find_one({"_id": key}, {"received_at": 1})
            if doc is not None and doc.get("received_at") is not None and _aware(doc["received_at"]) >= _aware(since):
                return True
    return False


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def index_inspections(db: Database, target_id: str, inspections: Iterable[dict], known: set) -> None:
    for insp in inspections:
        if insp["inspection_id"] not in known:
            db.inspection_index.replace_one({"_id": insp["inspection_id"]},
                                            {"target_id": target_id, "dept": insp["dept"],
                                             "year": int(insp["started_at"][:4])}, upsert=True)
            known.add(insp["inspection_id"])


def inspection_ref(db: Database, inspection_id: str) -> dict | None:
    return db.inspection_index.find_one({"_id": inspection_id})


# -- draw secrets ------------------------------------------------------------------------------------

def save_secret(db: Database, commitment: str, seed: str) -> None:
    db.draw_secrets.replace_one({"_id": commitment}, {"seed": seed}, upsert=True)


def secret(db: Database, commitment: str) -> str | None:
    doc = db.draw_secrets.find_one({"_id": commitment})
    return doc["seed"] if doc else None


# -- figures -------------------------------------------------------------------------------------------

def _claim(db: Database, key: str) -> bool:
    try:
        db.counted.insert_one({"_id": key})
    except DuplicateKeyError:
        return False
    return True


def count_inspection(db: Database, target_id: str, insp: dict, known: set,
                     caps_for: Callable[[str], Mapping[str, int]] = lambda dept: {}) -> bool:
    """Count one registered inspection for each department in it and for the county (once).

    `caps_for(dept)`: the department's yearly caps per kind; the inspection that takes one department
    over its cap for one enterprise counts that enterprise in `over_cap.<kind>` of the department and
    of the county (the cap in force when it happened)."""
    marker = str(insp["inspection_id"])
    if marker in known:
        return False
    known.add(marker)
    if not _claim(db, marker):
        return False
    year = int(insp["started_at"][:4])
    kind = "special_from_above" if insp.get("ordered_from_above") else insp["kind"]
    joint = bool(insp.get("joint_depts"))
    drawn = bool(insp.get("draw_id"))
    remote = insp.get("method") not in (None, "on_site")
    over = []
    for dept in [insp["dept"], *insp.get("joint_depts", [])]:
        n = _bump(db, f"freq:{dept}:{year}:{kind}:{target_id}")
        cap = dict(caps_for(dept)).get(kind)
        moves = {**_moved(kind, n), **_moved("all", _bump(db, f"freq:{dept}:{year}:all:{target_id}"))}
        if cap is not None and n == cap + 1:
            moves[f"over_cap.{kind}"] = 1
            over.append(kind)
        _add(db, f"{dept}:{year}", kind, moves, joint, drawn, remote, lead=dept == insp["dept"])
    moves = _moved("all", _bump(db, f"freq:*:{year}:all:{target_id}"))
    for k in over:
        moves[f"over_cap.{k}"] = moves.get(f"over_cap.{k}", 0) + 1
    _add(db, f"*:{year}", kind, moves, joint, drawn, remote, lead=True)
    month = insp["started_at"][:7]   # the monthly figures of the coordination service's reports (月报/季报)
    for dept in [insp["dept"], *insp.get("joint_depts", []), ALL]:
        _add(db, f"{dept}:{month}", kind, {}, joint, drawn, remote, lead=dept in (insp["dept"], ALL),
             fields={"dept": dept, "month": month})
    return True


def _bump(db: Database, key: str) -> int:
    doc = db.frequency.find_one_and_update({"_id": key}, {"$inc": {"n": 1}}, upsert=True, return_document=True)
    return int(doc["n"])


def _add(db: Database, key: str, kind: str, moves: dict[str, int], joint: bool, drawn: bool, remote: bool, *,
         lead: bool, fields: dict | None = None) -> None:
    """One write per figures document, so a reader never sees the count without its distribution."""
    inc: dict[str, int] = {"inspections": 1, f"by_kind.{kind}": 1, "joint": int(joint), "drawn": int(drawn),
                           "remote": int(remote), "led": int(lead), **moves}
    update: dict[str, Any] = {"$inc": inc}
    if fields:
        update["$setOnInsert"] = fields
    db.figures.update_one({"_id": key}, update, upsert=True)


def _moved(kind: str, n: int) -> dict[str, int]:
    """One enterprise moves from n-1 to n inspections in the distribution `dist.<kind>`."""
    return {f"dist.{kind}.{n}": 1, **({f"dist.{kind}.{n - 1}": -1} if n > 1 else {})}


def figures_doc(db: Database, dept: str | None, year: int) -> dict[str, Any]:
    return db.figures.find_one({"_id": f"{dept or '*'}:{year}"}) or {}


def month_figures(db: Database, months: Iterable[str]) -> dict[str, dict[str, dict]]:
    """{dept or '*': {month: {inspections, joint, drawn, remote, led, by_kind}}} of the given months."""
    out: dict[str, dict[str, dict]] = {}
    for doc in db.figures.find({"month": {"$in": sorted(set(months))}}):
        out.setdefault(doc["dept"], {})[doc["month"]] = {
            k: int(doc.get(k, 0)) for k in ("inspections", "joint", "drawn", "remote", "led")} | {
            "by_kind": {k: int(v) for k, v in (doc.get("by_kind") or {}).items()}}
    return out


# -- lists ---------------------------------------------------------------------------------------------

def list_docs(db: Database, collection: str, query: dict, limit: int, offset: int) -> tuple[list[dict], int]:
    col = db[collection]
    total = col.count_documents(query)
    docs = list(col.find(query, {"snapshot": 1, "dept": 1, "findings_open": 1}).sort("_id", 1).skip(offset).limit(limit))
    return docs, total
