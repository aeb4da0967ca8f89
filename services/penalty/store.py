"""Penalty storage: case aggregates, the officer and item projections, the decisions index.

- `cases`: the kernel's aggregate documents (facts + snapshot + findings + due date + outbox);
  the snapshot lists the officers, item codes and party a case refers to (indexed).
- `officers` / `items`: the newest `officer.changed` / `item.changed` payload per id, kept only
  when its version is not older than the stored one, so out-of-order delivery is harmless.
- `decisions`: one entry per decided case (its current decision), looked up by party.
- In a database of their own (`<this database>_caselist`, `lists`):
  - the case list (`case_list.<dept>.<stage>.<0|1>`, `case_counts`, `case_list_at`): see "case list"
    below; lists and their totals never read the aggregate documents;
  - `case_refs`: which cases refer to each officer, item code and party (the reverse index), officers'
    and items' lists split into buckets (`REF_BUCKETS`, below).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sys
import threading
import time
import uuid
import weakref
from datetime import datetime
from typing import Any, Callable, Iterable

import bson
from pymongo import DeleteOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, InvalidOperation

from services.kernel import config, leases
from services.kernel.sidewrites import chunked as _bulk  # (ordered bulks of ≤ 50 operations; the matched or upserted)
from services.kernel.sidewrites import updates_clean
from services.kernel.aggregates import AggregateStore, Change
from services.kernel.process_memo import ProcessMemo
from services.kernel.memo import Memo, remembered
from services.kernel.metrics import MARKED_DUE
from services.kernel.mongo import ConcurrencyError  # noqa: F401 (raised by the lease; callers catch store.ConcurrencyError)
from services.kernel.mongo import Failed, by_id, companion, insert_new
from services.kernel.packing import reading, unpack_from
from services.kernel.projection_cache import ProjectionReader, record_change, record_changes, shared_cache
from services.kernel.sidewrites import SideWrites, deferred, in_flight, patched
from services.penalty.manifest import MANIFEST
from services.penalty.projections import case_summary

log = logging.getLogger("zhifa.penalty.store")

MAX_OTHER_DECISIONS = 500


def ensure_indexes(db: Database) -> None:
    # No secondary index on the case documents beyond the kernel's: no query filters them any more
    # (lists: the case list; references: case_refs; findings: the findings index; deadlines: cases_due),
    # FerretDB v1 never uses one for a find, each costs every write, and building one on an existing
    # collection blocks the database for minutes (9 of them over 244,100 cases: > 10 min).
    AggregateStore.ensure_indexes(db.cases)
    db.decisions.create_index("party_id")
    # a find of one document, not a count: FerretDB v1 counts by reading every document (1,000,000
    # locators: 9 minutes)
    if lists(db).case_list_at.find_one({}, {"_id": 1}) is None and db.cases.find_one({}, {"_id": 1}) is not None:
        rebuild_list(db)  # first start on cases stored before the case list (or its own database) existed
    if "case_refs" in db.list_collection_names():
        move_refs(db)  # first start on a reverse index kept beside the cases (before 2026-12-03)


def cases(db: Database) -> AggregateStore:
    """The case aggregates with their declared layout (the snapshot packed: manifest.py), without the
    case list's sync — for writes outside the service's own store, e.g. making cases due."""
    return AggregateStore(db.cases, layout=next(a for a in MANIFEST.aggregates if a.name == "case").layout)


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


# What penalty derives from an officer projection (services/common/qualification.py `holder_from_payload`
# and `credential_from_payload`, projections.case_facts `officer_kinds`): payloads equal in these judge
# every case alike, so a process may keep serving the older one from its cache. Not read: the
# statuses personnel computed as of its evaluation (`status`; a credential's `status` and `usable`),
# which change with every `officer.changed` that a later `as_of` makes differ (a training record).
OFFICER_READ = ("officer_id", "name", "dept", "kind", "active", "statuses", "credentials")
CREDENTIAL_NOT_READ = ("status", "usable")


def _officer_read(payload: dict | None) -> dict | None:
    if payload is None:
        return None
    read = {k: payload.get(k) for k in OFFICER_READ}
    read["credentials"] = [{k: v for k, v in c.items() if k not in CREDENTIAL_NOT_READ}
                           for c in payload.get("credentials") or ()]
    return read


def store_officer(db: Database, payload: dict, now: datetime) -> tuple[bool, bool]:
    """Store a newer officer projection: (whether what penalty reads of it changed — OFFICER_READ —
    or the same version was stored again, whether what the credential rule reads changed,
    `_officer_facts`, or the same version was stored again). The same version again is a redelivery,
    maybe after a crash between the write and its change log or its cases' due marks: both are
    answered True so the log and the marks are made again (as `upsert_item` does for an item). One
    command: the write hands back the projection it replaced (none: a new officer)."""
    return _write_alone(db.officers, OFFICERS, payload["officer_id"], int(payload["version"]), payload, now)[0]


def _write_alone(col: Collection, kind: str, key: str, version: int, payload: dict,
                 now: datetime) -> tuple[tuple[bool, bool], bool]:
    """One officer or item projection kept unless a newer version is stored, in one command: (its answer
    as `store_officer` / `upsert_item` give it, whether it was stored)."""
    if kind != OFFICERS:
        stored = _upsert_newer(col, key, version, payload, now)
        return (stored, stored), stored
    try:
        old = col.find_one_and_update(
            {"_id": key, "version": {"$lte": version}},
            {"$set": {"version": version, "payload": payload, "received_at": now}},
            upsert=True, return_document=ReturnDocument.BEFORE)  # (FerretDB v1: no projection here)
    except DuplicateKeyError:  # a newer version is stored: the filter missed and the insert collided
        return (False, False), False
    return _officer_answer(old, version, payload), True


def store_projections(db: Database, kind: str, payloads: list[dict], now: datetime) -> list:
    """`store_officer` (kind OFFICERS) or `upsert_item` (ITEMS) of each of a batch's projections, in
    order, with their answers — (kept, changed); an item's are both whether it was stored — or
    `Failed` (a payload without a string key or an integer version fails alone, before the read). The
    batch's projections are read in one find; one stored already is written in one ordered bulk of
    replacements guarded by the version read (a single conditional UPDATE in FerretDB, patch 0006)
    instead of a command each. The first versions of new ones are inserted together, in one unordered
    insert before that bulk (an insert costs FerretDB a fraction of an upsert's `findAndModify`, and
    under a burst most officers are new); one whose insert collided (another writer stored it since the
    read) is written alone, as before. The batch's later ones of a new projection are guarded by the
    version its first inserted. When a guard missed (another process stored a version meanwhile, or a
    first insert collided and its write alone stored another), every guarded one is written alone
    again: that write finds its own version stored and answers as for a redelivery (True), so the log
    and the due marks are made again rather than missed. Raises when the read, the insert or the bulk
    fails (nothing of the batch is known stored)."""
    col = db.officers if kind == OFFICERS else db.items
    id_field, version_field = PROJECTION_FIELDS[kind]
    answers: list = [None] * len(payloads)
    parsed: dict[int, tuple[str, int]] = {}
    for i, payload in enumerate(payloads):
        try:
            if not isinstance(payload[id_field], str):  # (a key the batch's read cannot hold)
                raise TypeError(f"{id_field} must be a string")
            parsed[i] = payload[id_field], int(payload[version_field])
        except Exception:
            answers[i] = Failed(sys.exc_info())
    stored = by_id(col, [key for key, _ in parsed.values()])

    def alone(i: int) -> None:
        key, version = parsed[i]
        try:
            answers[i], written = _write_alone(col, kind, key, version, payloads[i], now)
        except Exception:
            answers[i] = Failed(sys.exc_info())
            return
        if written:
            stored[key] = {"_id": key, "version": version, "payload": payloads[i]}

    ops, guarded, inserts = [], [], []
    for i, (key, version) in parsed.items():
        doc = stored.get(key)
        if doc is None:  # new: its first version inserted with the batch's other new ones
            stored[key] = {"_id": key, "version": version, "payload": payloads[i], "received_at": now}
            inserts.append((i, stored[key]))
            answers[i] = _officer_answer(None, version, payloads[i]) if kind == OFFICERS else (True, True)
        elif isinstance(doc.get("version"), bool) or not isinstance(doc.get("version"), int):
            alone(i)  # (not in this form)
        elif doc["version"] > version:
            answers[i] = (False, False)  # a newer one is stored: not stored, nothing changed
        else:
            new = {"_id": key, "version": version, "payload": payloads[i], "received_at": now}
            ops.append(ReplaceOne({"_id": key, "version": doc["version"]}, new))
            guarded.append(i)
            answers[i] = _officer_answer(doc, version, payloads[i]) if kind == OFFICERS else (True, True)
            stored[key] = new  # (a later one of the same projection in the batch is guarded by this version)
    for position in sorted(insert_new(col, [first for _, first in inserts]) if inserts else ()):
        alone(inserts[position][0])  # (stored by another writer since the read: its write alone)
    if ops and _bulk(col, ops) < len(ops):
        for i in guarded:
            alone(i)
    return answers


def _officer_answer(old: dict | None, version: int, payload: dict) -> tuple[bool, bool]:
    """`store_officer`'s answer for `payload` stored over `old` (None: a new officer)."""
    before = old["payload"] if old else None
    again = old is not None and old.get("version") == version
    return (again or _officer_read(before) != _officer_read(payload),
            again or _officer_facts(before) != _officer_facts(payload))


def upsert_officer(db: Database, payload: dict, now: datetime) -> bool:
    """Store a newer officer projection; True only when what the rules read has changed."""
    return store_officer(db, payload, now)[1]


def upsert_item(db: Database, payload: dict, now: datetime) -> bool:
    return _upsert_newer(db.items, payload["item_code"], int(payload["revision"]), payload, now)


OFFICERS, ITEMS = "officers", "items"  # projection kinds in the process cache and its change log
PROJECTION_FIELDS = {OFFICERS: ("officer_id", "version"), ITEMS: ("item_code", "revision")}  # key, version


def projection_changed(db: Database, kind: str, key: str) -> None:
    """A newer officer or item projection was stored: every process's cache drops it at its next
    batch (services/kernel/projection_cache.py). Call after storing it and before making the cases
    that refer to it due."""
    record_change(db, kind, key)


def cache_generation() -> int | None:
    """The process projection cache's generation now (None: no cache): take it before storing a
    projection whose change `projection_stored` then logs."""
    cache = shared_cache()
    return cache.generation if cache is not None else None


def projection_stored(db: Database, kind: str, key: str, payload: dict, generation: int | None) -> None:
    """`projection_changed` of the officer or item projection `payload` this process has just stored
    (its write began at the cache's `generation`, `cache_generation()`): logged, then put into this
    process's cache as a read would find it, and this log entry no longer drops it here
    (projection_cache.ProjectionCache.seed) — the next judgement of a case referring to it, made due
    by this change, reads nothing. Safe as a read after the log: a newer version another process
    stored and logged before this write made it miss (not stored: no call); one stored after it is
    another writer's log entry, which drops it at the next batch; one this cache has already seen
    since `generation` refuses the seed."""
    projections_stored(db, kind, {key: payload}, generation)


def projections_stored(db: Database, kind: str, stored: dict[str, dict], generation: int | None) -> None:
    """`projection_stored` of several projections of one kind (key -> payload stored) whose writes
    all began at `generation`: their changes logged in one write, then each seeded."""
    if not stored:
        return
    logged = record_changes(db, [(kind, key) for key in stored])
    cache = shared_cache()
    if cache is not None and generation is not None:
        for key, payload in stored.items():
            as_read = bson.decode(bson.encode({"payload": payload}), codec_options=db.codec_options)["payload"]
            cache.seed(db.name, kind, key, as_read, generation, logged)


def _without_id(doc: dict | None) -> dict | None:
    return None if doc is None else {k: v for k, v in doc.items() if k != "_id"}


def _payloads(col: Collection) -> Callable[[list], dict]:
    return lambda keys: {k: d["payload"] for k, d in by_id(col, keys).items()}


def projected(db: Database, officer_ids: Iterable[str], item_codes: Iterable[str],
              memo: Memo | None = None, reader: ProjectionReader | None = None,
              case_id: str | None = None) -> tuple[dict, dict]:
    """The stored officer and item payloads a case refers to, by id. With the unit of work's
    `reader` they come from the process cache across batches (services/kernel/projection_cache.py;
    `case_id`: the case judged on them, checked at the unit's end); else with its `memo`
    (services/kernel/memo.py) each is read once in the unit; else from the database."""
    officer_ids, item_codes = sorted(set(officer_ids)), sorted(set(item_codes))
    if reader is not None:
        return (reader.payloads(OFFICERS, officer_ids, _payloads(db.officers), case_id),
                reader.payloads(ITEMS, item_codes, _payloads(db.items), case_id))
    officers = remembered(memo, "penalty.officers", officer_ids, _payloads(db.officers))
    items = remembered(memo, "penalty.items", item_codes, _payloads(db.items))
    return officers, items


REF_FIELDS = ("officer_ids", "item_codes", "party_id")

# `case_refs`, the reverse index (what a case refers to -> the cases), is split into *buckets*: the
# case ids referring to `<field>:<value>` are kept in REF_BUCKETS[field] documents `<field>:<value>#<b>`,
# b a stable hash of the case id. FerretDB v1 decodes and re-encodes a whole document for every
# `$addToSet`, so one document per officer or item code made every new case's reference cost grow
# with the cases already there (0.458 ms of database CPU at 120 cases, bench_db --side-writes; at a
# million cases an item code's list would be hundreds of KB); a bucket holds 1/REF_BUCKETS of them.
# A reader asks for every bucket and the unbucketed `<field>:<value>` (written before the buckets) in
# one `_id $in`. A party's cases stay in one document (a party has few cases). Changing a field's
# bucket count strands what its old buckets hold: it is part of the storage layout, not a setting.
REF_BUCKETS = {"officer_ids": 16, "item_codes": 32, "party_id": 1}


def ref_key(field: str, value: Any) -> str:
    """The unbucketed `case_refs` key of an officer, item or party (`<field>:<value>`)."""
    return f"{field}:{value}"


def ref_bucket(field: str, value: Any, case_id: str) -> str:
    """The `case_refs` document that holds `case_id` among the cases referring to `value`."""
    key, buckets = ref_key(field, value), REF_BUCKETS.get(field, 1)
    if buckets == 1:
        return key
    digest = hashlib.blake2b(str(case_id).encode(), digest_size=4).digest()
    return f"{key}#{int.from_bytes(digest, 'big') % buckets}"


def ref_documents(field: str, value: Any) -> list[str]:
    """Every `case_refs` document that may hold cases referring to `value`: the unbucketed one first."""
    key, buckets = ref_key(field, value), REF_BUCKETS.get(field, 1)
    return [key] if buckets == 1 else [key, *(f"{key}#{b}" for b in range(buckets))]


def ref_targets(snapshot: dict, case_id: str) -> list[str]:
    """The `case_refs` documents a case belongs in: one per officer, item code and party it refers to."""
    targets = []
    for field in REF_FIELDS:
        values = snapshot.get(field)
        for value in values if isinstance(values, list) else [values]:
            if value:
                targets.append(ref_bucket(field, value, case_id))
    return targets


REF_ENTRY_BYTES = 310  # one (database, document, case) entry held (measured: tests/unit/test_process_memo.py)


def known_refs(limit: int | None = None) -> ProcessMemo:
    """The (database, reference document, case) entries a process remembers having written, the most
    recently written of them (its share of PROCESS_MEMO_MB, kernel/process_memo.py; `limit` entries in a
    test). Keyed by the database too: a process serving several (a test's, the bench's prefixed ones)
    never skips a write one of them still needs. An entry forgotten costs one idempotent write again,
    never a missed one (a set of every entry ever written grew with the cases: ~4 per case, hundreds of
    MB over a million cases)."""
    return ProcessMemo("penalty.case_refs", share=0.2, entry_bytes=REF_ENTRY_BYTES, limit=limit)


def index_refs(db: Database, case_id: str, snapshot: dict, known: Any, writes: SideWrites | None = None) -> None:
    """Record in `case_refs` which cases refer to each officer, item and party (idempotent, blind:
    deferred to the end of the unit of work, one bulk for all its cases, when `writes` is given).

    `known` (`known_refs()`, or a set) holds the (database name, document, case_id) entries this process
    wrote already, to skip repeat writes (an entry joins it once its write is done; a known entry is written
    into it again, so the entries of the cases in progress are the ones it keeps).

    An entry a unit of work of this process holds deferred or is sending (this one's, or the other batch
    worker's with a fact of the same case: `sidewrites.in_flight`) is not added again: with two batch
    workers a case's consecutive facts are often saved by both at once, and each wrote the case's
    references (0.51 operations per event in the bench against 0.38 with one worker). If that unit fails
    its writes, its facts come again and write them (the entry never joined `known`), and so does the
    case's next save.
    """
    new, seen = [], []
    refs = lists(db).case_refs
    for target in ref_targets(snapshot, case_id):
        key = (db.name, target, case_id)
        if key in known:
            seen.append(key)
        elif writes is None or not in_flight(refs, (target, case_id)):
            new.append(key)
    known.update(seen)
    for _, target, _ in new:
        deferred(writes, refs, UpdateOne({"_id": target}, {"$addToSet": {"cases": case_id}}, upsert=True),
                 key=(target, case_id))
    if new:
        if writes is None:
            known.update(new)
        else:
            writes.after(lambda: known.update(new))


MOVE_BATCH = 1000  # reference documents read and inserted per command when moving them (`move_refs`)


def move_refs(db: Database) -> int:
    """Move a reverse index kept beside the cases (`db.case_refs`, before it had the list's database) into
    `lists(db)`, then drop the old collection; the number of documents moved. Idempotent and safe to cut
    short: a document already in its new place (a move interrupted, or a reference written there since)
    gets the old one's cases added (`$addToSet`), so a second run finishes the move and loses nothing.
    Meant for a start with no other penalty process running (as `rebuild_list`)."""
    new, moved, cursor = lists(db).case_refs, 0, db.case_refs.find({}).batch_size(MOVE_BATCH)
    while batch := list(itertools.islice(cursor, MOVE_BATCH)):
        taken = insert_new(new, batch)  # (the documents already there; any other error is raised)
        _bulk(new, [UpdateOne({"_id": batch[i]["_id"]},
                              {"$addToSet": {"cases": {"$each": list(batch[i].get("cases") or ())}}}, upsert=True)
                    for i in sorted(taken)])
        moved += len(batch)
    db.drop_collection("case_refs")
    return moved


def cases_referring(db: Database, field: str, value: Any) -> list[str]:
    """The cases referring to `value` (officer id, item code or party), from all its documents (one find)."""
    return cases_referring_each(db, field, [value])[value]


def cases_referring_each(db: Database, field: str, values: Iterable[Any]) -> dict[Any, list[str]]:
    """`cases_referring` of several values, {value: cases} (each case once; one find per ID_IN_CHUNK
    documents: a value has 1 + REF_BUCKETS[field] of them)."""
    documents = {value: ref_documents(field, value) for value in dict.fromkeys(values)}
    docs = by_id(lists(db).case_refs, [doc_id for ids in documents.values() for doc_id in ids])
    return {value: list(dict.fromkeys(case for doc_id in ids for case in docs.get(doc_id, {}).get("cases", ())))
            for value, ids in documents.items()}


def mark_due(db: Database, field: str, value: Any, now: datetime, *, except_case: str | None = None) -> int:
    """Make every case that refers to `value` (officer, item code or party) due now.

    Cases are found through the `case_refs` reverse index by `_id` (no scan of the cases). The
    version bump makes a concurrent save of the same case retry on fresh projections.
    """
    return mark_due_each(db, field, [value], now, except_case=except_case)


REF_CAUSES = {"officer_ids": "officer", "item_codes": "item", "party_id": "party"}  # (zhifa_marked_due_total)


def mark_due_each(db: Database, field: str, values: Iterable[Any], now: datetime, *,
                  except_case: str | None = None) -> int:
    """`mark_due` of several values (one reverse-index read per ID_IN_CHUNK values, then
    `mark_cases_due` of every case referring to any of them, each once)."""
    referring = cases_referring_each(db, field, values)
    return mark_cases_due(db, (c for cases in referring.values() for c in cases if c != except_case), now,
                          REF_CAUSES.get(field, field))


def mark_cases_due(db: Database, case_ids: Iterable[str], now: datetime, cause: str = "other") -> int:
    """`AggregateStore.mark_due` of each case, in bulks (`AggregateStore.mark_many_due`). The cases modified.
    Counted by `cause` (what changed: officer, item, party, projection read) in zhifa_marked_due_total."""
    ids = list(dict.fromkeys(case_ids))
    if ids:
        MARKED_DUE.labels("penalty", cause).inc(len(ids))
    return AggregateStore(db.cases).mark_many_due(ids, now)


# -- decisions index ------------------------------------------------------------------------------

def index_decision(db: Database, case_id: str, entry: dict | None) -> bool:
    """Store (or drop) the decisions-index entry of a case; True when it changed (reads it first)."""
    current = db.decisions.find_one({"_id": case_id})
    if current is not None:
        current.pop("_id")
    if current == entry:
        return False
    put_decision(db, case_id, entry)
    return True


def put_decision(db: Database, case_id: str, entry: dict | None, writes: SideWrites | None = None) -> None:
    """Store (or drop) the decisions-index entry of a case without reading it (idempotent, blind:
    deferred to the end of the unit of work when `writes` is given)."""
    op = DeleteOne({"_id": case_id}) if entry is None else ReplaceOne({"_id": case_id}, entry, upsert=True)
    deferred(writes, db.decisions, op)


PARTIES = "parties"  # a party's cases and their decisions-index entries, in the process cache


def _party_decisions(db: Database) -> Callable[[list], dict]:
    """{party: [(case id, its decisions-index entry or None)] for the first MAX_OTHER_DECISIONS + 1 cases
    referring to it, in case-id order} (enough for any one of them to find its first MAX others)."""
    def load(parties: list) -> dict:
        listed = {party: sorted(cases)[:MAX_OTHER_DECISIONS + 1]
                  for party, cases in cases_referring_each(db, "party_id", parties).items()}
        entries = by_id(db.decisions, [c for cases in listed.values() for c in cases])
        return {party: [(c, _without_id(entries.get(c))) for c in cases] for party, cases in listed.items()}
    return load


def read_ahead(reader: ProjectionReader, db: Database, officer_ids: Iterable[str], item_codes: Iterable[str],
               parties: Iterable[str]) -> None:
    """Read into the process cache, through the unit's `reader`, the officer and item projections and
    the parties' decision lists a batch's cases will be judged on and that it does not hold: one find
    per kind (per ID_IN_CHUNK keys) instead of one for each case that misses (`projected`,
    `other_decisions` then find them cached)."""
    for kind, keys, load in ((OFFICERS, officer_ids, _payloads(db.officers)), (ITEMS, item_codes, _payloads(db.items)),
                             (PARTIES, parties, _party_decisions(db))):
        keys = sorted(set(keys))
        if keys:
            reader.payloads(kind, keys, load)


def _others(listed: list | None, case_id: str) -> list[dict]:
    """A party's list (`_party_decisions`) as the case `case_id` reads it: the entries of the first
    MAX_OTHER_DECISIONS other cases (what the end check of its unit compares, `ProjectionReader.finish`:
    its own entry, changed by its own decision, is not part of it)."""
    return [entry for c, entry in [(c, e) for c, e in listed or () if c != case_id][:MAX_OTHER_DECISIONS] if entry]


def other_decisions(db: Database, party_id: str | None, case_id: str,
                    reader: ProjectionReader | None = None) -> list[dict]:
    """The decisions-index entries of the other cases referring to `party_id` (the first
    MAX_OTHER_DECISIONS of them). With the unit's `reader` the party's list comes from the process
    cache (services/kernel/projection_cache.py; a changed entry is logged, `decision_changed`)."""
    if not party_id:
        return []
    if reader is not None:
        return _others(reader.payloads(PARTIES, [party_id], _party_decisions(db), case_id,
                                       view=lambda listed: _others(listed, case_id)).get(party_id), case_id)
    others = sorted(c for c in cases_referring(db, "party_id", party_id) if c != case_id)[:MAX_OTHER_DECISIONS]
    entries = by_id(db.decisions, others)
    return [d for d in (_without_id(entries.get(c)) for c in others) if d]


def decision_changed(db: Database, parties: Iterable[str | None], now: datetime, case_id: str, *,
                     make_due: bool = True) -> None:
    """A case's decisions-index entry changed (written): the lists of its parties are logged as
    changed (every process's cache drops them), then the parties' other cases fall due."""
    decisions_changed(db, [(parties, case_id)], now, make_due=make_due)


def decisions_changed(db: Database, changed: Iterable[tuple[Iterable[str | None], str]], now: datetime, *,
                      make_due: bool = True, entries: dict[str, dict | None] | None = None) -> None:
    """`decision_changed` of several cases (parties, case id) of one unit of work: their parties logged
    in one write, then each party's cases fall due but for the one whose entry changed (a party
    with several changed cases in `changed`: all of its cases, each is another's other case).

    `entries`: the decisions-index entries this unit wrote (case id -> entry, None: dropped), stored
    before this call. When every one of a party's first cases (as the due marks' read of the reverse
    index, made after the log, lists them) is among them, that list is what the party look-up
    (`_party_decisions`) would read now: it goes into this process's cache, and this process's own
    log entry no longer drops it (projection_cache.ProjectionCache.seed) — the look-up at the case's
    next fact reads nothing."""
    by_party: dict[str, set] = {}
    for parties, case_id in changed:
        for party in {p for p in parties if p}:
            by_party.setdefault(party, set()).add(case_id)
    logged = record_changes(db, [(PARTIES, party) for party in sorted(by_party)])
    if not make_due:
        return
    cache = shared_cache() if entries else None
    generation = cache.generation if cache is not None else 0
    referring_each = cases_referring_each(db, "party_id", sorted(by_party))
    due = []
    for party, cases in sorted(by_party.items()):
        skip = next(iter(cases)) if len(cases) == 1 else None
        due.extend(case_id for case_id in referring_each[party] if case_id != skip)
    mark_cases_due(db, due, now, "party")  # (a case of several of these parties: made due once)
    for party in sorted(by_party):
        referring = referring_each[party]
        first = sorted(referring)[:MAX_OTHER_DECISIONS + 1]
        if cache is not None and all(c in entries for c in first):
            cache.seed(db.name, PARTIES, party, [(c, entries[c]) for c in first], generation, logged)


# -- case list ------------------------------------------------------------------------------------
#
# FerretDB v1 (SQLite) hands SQLite only an `_id` equality or `_id $in` filter (patches 0001, 0012),
# and a limit (and skip, 0008) only when a find has no filter and no sort: any other filter, sort or
# count decodes every document of the collection (secondary indexes are created but a find never
# uses them). `count_documents` plus a sorted page over the aggregate documents (11-15 KB each) took
# > 20 s at 3,000 cases. So the list is laid out for `_id` look-ups and unfiltered, lazily read collections:
#
# - `case_list.<dept>.<stage>.<0|1>` (a *partition*): one small row per case, exactly the list's
#   summary, for each (department, stage, overdue) key; a case is in exactly one partition. Rows
#   stay in the order they entered (SQLite rowid order; insertion order on MongoDB), so the list is
#   ordered by department, stage (process order), overdue first, then the time the case reached
#   that state. A page is `find({}).skip(k).limit(n)` on one or a few partitions.
# - `case_counts`: one counter document per key, `{n}`, changed with `$inc` when a case enters or
#   leaves the key. List totals and the overview's case figures are sums of these few documents.
# - `case_list_at`: per case (a *locator*), the key it is counted under, the aggregate version
#   counted, the move in progress (`pending`) and a short lease.
#
# Exactly once without transactions. Counters change only when a case *moves* (its key changes).
# Under a per-case lease the move is first written into the locator (`pending`: to, the row, token
# `<case>@<version>`; it moves from the locator's `key`, which stays until the move is done) — in the
# same write that takes the lease when the locator is free —, then carried out in steps that are
# each idempotent:
#   1. the row is put into `to` and removed from `from`;
#   2. each counter takes `$inc` in one write whose filter requires that the counter has not seen
#      the move (`applied.<mark>` absent, the mark a digest of the token) and which sets the mark:
#      single-document atomic, so a counter applies one move at most once however often the step
#      is repeated;
#   3. the locator takes `key = to` and the version and drops `pending` and the lease.
# A finished move's marks are dropped by the same process's next `$inc` of each counter, in that
# write (see `_count`), so a move costs no write of its own for them.
# A crash leaves either no pending move (nothing happened, or it is done) or a pending one that the
# next sync of the case (the redelivered fact, the next fact, the deadline sweep) or `repair`
# carries out again, step 2 skipping counters already applied. A redelivered fact or a
# compare-and-set retry reaches the sync with a version the locator has already counted: nothing
# changes; versions only grow, so a late sync never moves a case back. A crashed process leaves the
# marks of its last finished moves in the counters (harmless; `repair --fix` drops them). The lease
# serialises the syncs of one case across greenlets and processes; a crashed holder's lease expires
# after LEASE_SECONDS.

LIST_PREFIX = "case_list"
LEASE_SECONDS = 30.0
LEASE_WAIT_SECONDS = 20.0
FILL_BATCH = 50  # FerretDB v1 hung on a bulk write of 100
# cases per case-list sync batch: a unit of work's syncs in batches of up to 200 cases, so a partition
# a batch's moves touch gets one command, not one per 50 cases (each command still carries ≤ MAX_OPS
# operations: the bulks are chunked; `bench_db --case-list` prices a move)
SYNC_BATCH = 200


def list_key(dept: str | None, stage: str | None, overdue: bool | None) -> str:
    return f"{dept or '_'}.{stage or '_'}.{1 if overdue else 0}"


def key_parts(key: str) -> tuple[str | None, str | None, bool]:
    dept, stage, flag = key.rsplit(".", 2)
    return (None if dept == "_" else dept), (None if stage == "_" else stage), flag == "1"


def partition(db: Database, key: str) -> Collection:
    return lists(db)[f"{LIST_PREFIX}.{key}"]


# The case list lives in a database of its own, `<cases' database>_caselist`: FerretDB on SQLite keeps
# one file per database, and one writer per file (SQLite's lock; patch 0016's mutex per database), so
# the list's ≈ 25 commands at a unit's end no longer wait for the case saves of the other batch worker
# nor hold them up (docs/architecture.md, "FerretDB"). The reverse index (`case_refs`, one bulk at a
# unit's end, and read before a unit's saves) lives there too since 2026-12-03 (eight alternating pairs:
# 6% less CPU per event, less in seven). On MongoDB it is merely a second database.
LIST_DATABASE_SUFFIX = "_caselist"


def lists(db: Database) -> Database:
    """The database holding the case list (partitions, `case_counts`, `case_list_at`, batches) and the
    reverse index (`case_refs`) of the cases in `db` (kernel/mongo.py `companion`)."""
    return companion(db, LIST_DATABASE_SUFFIX)


ROW_VOLATILE = ("version", "evaluated_at")  # change on every save: not part of a row


# what a case list row is made of (`list_row`), the snapshot packed or not (kernel/packing.py)
LISTED = reading("snapshot", "dept", "due_at", "evaluated_at", "version")


def list_row(doc: dict) -> dict:
    """The case list's row of a case document: its summary, by case id, without what changes on
    every save (the aggregate version, the time of the last evaluation), so a save that changes
    nothing the list shows leaves the row as it is (see `sync_case`)."""
    row = {"_id": doc["_id"], **case_summary(doc)}
    for name in ROW_VOLATILE:
        row.pop(name, None)
    return row


def row_digest(row: dict) -> str:
    """A short digest of a row's content (kept in the locator: the row the list holds)."""
    return hashlib.blake2b(json.dumps(row, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def row_key(row: dict) -> str:
    return list_key(row.get("dept"), row.get("stage"), row.get("overdue"))


def _acquire(db: Database, case_id: str) -> tuple[dict, str]:
    """Take the case's lease (creating its locator); the locator as it is now, and the lease token."""
    return leases.acquire(lists(db).case_list_at, case_id, seconds=LEASE_SECONDS,
                          wait_seconds=LEASE_WAIT_SECONDS, what="case list")


def _acquire_with_move(db: Database, case_id: str, move: dict) -> tuple[dict | None, str] | None:
    """The lease and the pending move in one write, when the locator is free (no live lease), has no
    move pending and counts an older version (or does not exist yet): the locator as it was before
    (None: a new case), and the lease token. None when it is not so (the caller takes the lease the
    slow way, which waits, finishes a pending move, or finds the version counted)."""
    return leases.try_acquire(lists(db).case_list_at, case_id, seconds=LEASE_SECONDS, before=True,
                              also={"pending": move}, only_if={"pending": None, "version": {"$lt": move["version"]}})


def _release(db: Database, case_id: str, lease: str, fields: dict) -> bool:
    """Write `fields` and drop the lease, if it is still ours; False when it is not (it expired and
    another sync took it over)."""
    return lists(db).case_list_at.update_one({"_id": case_id, "lease.token": lease},
                                             {"$set": {**fields, "lease": None}}).matched_count == 1


# Marks (`applied.<mark>` in a counter) of moves this process finished, per (database, key): each is
# dropped by this process's next `$inc` of that counter, in the same write, instead of a write of its
# own. A finished move is never carried out again (its locator has no pending move), so its mark is
# no longer needed; a crashed process leaves its few marks behind (harmless; `repair --fix` drops them).
_finished: dict[tuple[str, str], set[str]] = {}


def _mark(token: str) -> str:
    return hashlib.blake2b(token.encode(), digest_size=12).hexdigest()


def finished_marks(db: Database, key: str) -> set[str]:
    """The marks of finished moves this process will drop from the counter of `key` (tests, repair)."""
    return set(_finished.get((db.name, key), ()))


def _count(db: Database, key: str, delta: int, token: str) -> None:
    """`$inc` the counter of `key` unless it has applied `token` already (see above); the same write
    drops the marks of moves this process finished on this counter."""
    dept, stage, overdue = key_parts(key)
    mark, slot = _mark(token), (db.name, key)
    drop = _finished.pop(slot, set()) - {mark}
    update = {"$inc": {"n": delta}, "$set": {f"applied.{mark}": 1},
              "$setOnInsert": {"dept": dept, "stage": stage, "overdue": overdue}}
    if drop:
        update["$unset"] = {f"applied.{m}": "" for m in drop}
    dropped = False
    try:
        # `tokens`: the array of marks counters kept before (a move pending across the upgrade)
        lists(db).case_counts.update_one(
            {"_id": key, "tokens": {"$ne": token}, f"applied.{mark}": {"$exists": False}}, update, upsert=True)
        dropped = True
    except DuplicateKeyError:  # the counter exists and holds the mark: applied before
        pass
    finally:
        if drop and not dropped:
            _finished.setdefault(slot, set()).update(drop)


def _carry_out(db: Database, case_id: str, frm: str | None, pending: dict, lease: str, *, release: bool) -> None:
    """Steps 1-3 of a pending move from `frm` (the locator's key while the move is pending; each
    step idempotent)."""
    to, token = pending["to"], pending["token"]
    partition(db, to).replace_one({"_id": case_id}, pending["row"], upsert=True)
    if frm and frm != to:
        partition(db, frm).delete_one({"_id": case_id})
        _count(db, frm, -1, token)
    if frm != to:
        _count(db, to, 1, token)
    done = {"key": to, "version": pending["version"], "pending": None, "digest": row_digest(pending["row"])}
    if release:
        ours = _release(db, case_id, lease, done)
    else:
        ours = lists(db).case_list_at.update_one({"_id": case_id, "lease.token": lease},
                                                 {"$set": done}).matched_count == 1
    if frm != to and ours:  # (a lease lost meanwhile: the move may still be pending; its marks stay)
        for key in {frm, to} - {None}:
            _finished.setdefault((db.name, key), set()).add(_mark(token))


def sync_case(db: Database, doc: dict, row_kept: bool = True) -> bool:
    """Bring the case list and the counters in step with a saved case document (idempotent).

    Called after every save of a case, and after a save that changed nothing (a redelivery), so a
    move left pending by a crash is carried out. True when the case moved to another key.

    A save that changes nothing the list shows (a redelivery; a fact that keeps the stage, the overdue
    flag, the due date and the rest of the summary): when the locator already names this key and this
    row's digest, no sync holds the lease and no move is pending, one small conditional write moves
    the locator's version forward (so a slower sync of an older version, from another worker, still
    finds it counted and changes nothing). Otherwise — the filter did not match — one write takes the
    lease and records the move together when the locator is free and counts an older version; failing
    that the sync takes the lease as below. `row_kept=False` (the caller saw the row change) skips
    the first try.
    """
    return _sync_row(db, doc["_id"], int(doc.get("version") or 0), list_row(doc), row_kept)


def _sync_row(db: Database, case_id: str, version: int, row: dict, row_kept: bool = True) -> bool:
    """`sync_case` of the case `case_id` saved at `version` with the list row `row`."""
    _known.pop((db.name, case_id), None)  # (what a batch of this process last saw may change here)
    digest = row_digest(row)
    to = row_key(row)
    if row_kept and lists(db).case_list_at.update_one({"_id": case_id, "key": to, "digest": digest,
                                                       "pending": None, "lease": None, "version": {"$lte": version}},
                                                      {"$set": {"version": version}}).matched_count:
        return False
    move = {"to": to, "token": f"{case_id}@{version}", "version": version, "row": row}
    taken = _acquire_with_move(db, case_id, move)
    if taken is not None:
        before, lease = taken
        frm = (before or {}).get("key")
        if frm == to and (before or {}).get("digest") == digest:  # nothing to write but the locator
            _release(db, case_id, lease, {"version": version, "pending": None})
            return False
        _carry_out(db, case_id, frm, move, lease, release=True)
        return frm != to
    loc, lease = _acquire(db, case_id)
    released = False
    try:
        batch = (loc.get("pending") or {}).get("batch")
        if batch:  # claimed by a batch whose holder died (its lease expired): finish all of that batch
            if not finish_batch(db, batch):  # (gone: finished, so the claim is a left-over; drop it)
                lists(db).case_list_at.update_one({"_id": case_id, "pending.batch": batch},
                                                  {"$set": {"pending": None, "lease": None}})
            released = True  # (the batch's last step dropped every lease it holds, ours included)
            return _sync_row(db, case_id, version, row, row_kept=False)
        if loc.get("pending"):  # a move a crashed sync left half done
            pending = loc["pending"]
            _carry_out(db, case_id, loc.get("key"), pending, lease, release=False)
            loc = {**loc, "key": pending["to"], "version": pending["version"], "pending": None}
        if int(loc.get("version") or 0) >= version:
            return False  # redelivered, retried or older: counted already
        frm = loc.get("key")
        if to == frm:  # same key: the row changes in place, no counter does
            if loc.get("digest") != digest:
                partition(db, to).replace_one({"_id": case_id}, row, upsert=True)
            _release(db, case_id, lease, {"version": version, "digest": digest})
            released = True
            return False
        lists(db).case_list_at.update_one({"_id": case_id, "lease.token": lease}, {"$set": {"pending": move}})
        _carry_out(db, case_id, frm, move, lease, release=True)
        released = True
        return True
    finally:
        if not released:
            _release(db, case_id, lease, {})


# -- case list: the syncs of one unit of work, together ------------------------------------------
#
# A batch of facts (a sweep, a command) saves its cases in one unit of work (services/kernel/
# sidewrites.py). `CaseStore` then collects their syncs, and at the unit's end — before any of its
# messages is acked — they are carried out together (`sync_cases`, ≤ SYNC_BATCH cases per *batch*,
# token T) in a few bulk commands instead of 1 to 6 commands per case:
#   0. a batch document `case_list_batches/T` records every move the batch means to make (case,
#      from, to, row, version): the key a case's row leaves is the one its previous document was
#      listed under, known without a read;
#   1. one bulk on the locators: a case whose row is kept takes `sync_case`'s small write (its
#      version); a case whose row changes is *claimed*: lease T and `pending: {batch: T}`, on
#      condition that the locator is free, has no move pending, counts an older version and stands
#      under `from` (a new case's locator is created empty just before, in the same bulk). Its matched
#      count says whether every condition held; when not (another process synced a case meanwhile),
#      one read per case says which did, and the others are synced alone afterwards (`sync_case`:
#      waits for the lease, finishes what is pending, compares versions);
#   2. the rows: one bulk per partition (put into `to`, removed from `from`);
#   3. the counters: per key the *net* change of the claimed moves, one `$inc` each, in one bulk, each
#      guarded by the batch's mark (`applied.<mark of T>`) as a single move's by its own;
#   4. the claimed locators: key, version and digest, no pending move, no lease (one bulk);
#   5. the batch document is deleted.
# A crash leaves the batch document and its claimed locators: the next sync of any of those cases
# (the redelivered facts: none was acked) waits out the lease and finishes the whole batch
# (`finish_batch`: the claimed moves are the locators still pending for T — the same set, as no
# locator is released before every counter is applied), counters guarded by the mark; `repair` does
# so for batch documents older than the lease. A locator pending for a batch whose document is gone
# holds a left-over claim (its batch finished): dropped.

BATCHES = "case_list_batches"

# the cases each unit of work (SideWrites) saved: (database name, case id) keys
_units: "weakref.WeakKeyDictionary[Any, set]" = weakref.WeakKeyDictionary()
# the syncs waiting for the end of their unit, of every unit of this process: key -> entry. A case two
# units saved at once (two batches in flight) has one entry — the newest version, over the document
# the first of them saved over (what the list shows, unless another process synced it meanwhile) —
# and the unit that ends first syncs it; the other finds it gone. (If that sync fails, its unit's
# messages are redelivered and sync the case at its newest version.)
_waiting: dict[tuple[str, str], dict] = {}


def defer_sync(writes: Any, db: Database, doc: dict, old: dict | None) -> None:
    """Sync the saved case `doc` (saved over `old`) at the end of the unit of work `writes`; of a case
    saved again before that, the newest version over the first `old`."""
    keys = _units.get(writes)
    if keys is None:
        keys = _units[writes] = set()
        writes.after(lambda: _unit_ended(writes))
    keys.add((db.name, doc["_id"]))
    _merge(_waiting, {"db": db, "case": doc["_id"], "version": int(doc.get("version") or 0), "row": list_row(doc),
                      "old_row": None if old is None else list_row(old)})


def _merge(queue: dict[tuple[str, str], dict], entry: dict) -> dict:
    """Put the sync `entry` into `queue` (key -> entry); of a case queued already, the newest version and row over
    the row the first of them moved from. The entry queued."""
    queued = queue.setdefault((entry["db"].name, entry["case"]), entry)
    if queued is not entry and entry["version"] >= queued["version"]:
        queued.update(version=entry["version"], row=entry["row"])
    return queued


def _by_db(entries: list[dict]) -> list[list[dict]]:
    """`entries` in groups of one database each."""
    groups: dict[str, list[dict]] = {}
    for entry in entries:
        groups.setdefault(entry["db"].name, []).append(entry)
    return list(groups.values())


def _unit_ended(writes: Any) -> None:
    """The syncs of the unit `writes`, at its end: carried out now (`sync_cases`), or — a unit that `may_lag`
    and CASE_LIST_LAG_MS above 0 — recorded (`_intend`) and left to the process's next lagged sync."""
    entries = [e for e in (_waiting.pop(k, None) for k in _units.pop(writes, ())) if e is not None]
    if not entries:
        return
    lag = config.checked("CASE_LIST_LAG_MS") / 1000 if writes.kept(MAY_LAG) else 0.0
    if lag <= 0 or not patched():
        sync_cases(entries)
        return
    for group in _by_db(entries):
        _lag(group, _intend(group[0]["db"], group))
    _lagged_sync_within(lag)


# -- case list: synced a moment after the unit (CASE_LIST_LAG_MS) --------------------------------
#
# A batch of facts syncs the list of the cases it saved at its end, ≈ 25 commands (a partition's rows, the
# counters, the locators) whether it saved 10 cases or 300. At an even rate of a few hundred events a second
# the batches are small and those commands were a third of the database's and most of a batch's time:
# the next facts of the cases waited for them (docs/benchmark.md, thirty-eighth session). A unit of facts
# (`may_lag`: penalty's fact batches and its deadline sweep; not a clerk's command, whose answer shows the
# case moved) now only records its syncs, in one insert — an *intent*, `case_list_batches/intent:<token>`,
# before its messages are acked, so nothing is lost when the process dies — and the process carries out the
# syncs of all the units that ended in the last CASE_LIST_LAG_MS together (`_lagged_sync`, a green thread):
# one `sync_cases` (steps 0-5 above), then the intents are deleted. The list and its counters are that much
# behind the cases. A process that dies leaves its intents: once they are older than INTENT_STALE_SECONDS,
# `sweep_batches` — which every penalty process runs every BATCH_SWEEP_SECONDS from its list syncs and from its
# periodic sweep (`look_for_abandoned`), so also when no fact arrives — or `repair` syncs each case they name
# alone (`_finish_intent`: `_sync_row`, which compares versions, so a case synced since is left as it is).

INTENT_PREFIX = "intent:"
MAY_LAG = "case_list.may_lag"  # (the unit's kept flag: `may_lag`)
LAG_RETRY_SECONDS = 5.0  # the longest wait before a lagged sync that failed is tried again

_lagged: dict[tuple[str, str], dict] = {}  # the syncs waiting for the next lagged sync: key -> entry
_intents: dict[str, tuple[Database, list[str]]] = {}  # database name -> (database, the intents they cover)
_lag_timer: list = [None]  # the green thread of the next lagged sync (None: none pending)
_locks: dict[str, Any] = {}  # this process's locks by name, made at first use (after eventlet's patch: green locks)


def _process_lock(name: str) -> Any:
    """This process's lock `name`: "lag" is held while a lagged sync runs, "flush" lets one case list batch run
    at a time."""
    lock = _locks.get(name)
    if lock is None:
        lock = _locks[name] = threading.Lock()
    return lock


def may_lag(writes: Any) -> None:
    """Let the unit of work `writes` leave the case list's syncs to the process's lagged sync."""
    if writes is not None:
        writes.kept(MAY_LAG, lambda: True)


def _intend(db: Database, entries: list[dict]) -> str:
    """Record the syncs `entries` (one insert); the intent's token."""
    token = INTENT_PREFIX + uuid.uuid4().hex
    moves = [{"case": e["case"], "version": e["version"], "row": e["row"]} for e in entries]
    lists(db)[BATCHES].insert_one({"_id": token, "at": time.time(), "intent": True,
                                   "moves": bson.encode({"moves": moves})})
    return token


def _lag(entries: list[dict], token: str | None) -> None:
    """Queue `entries` for the lagged sync (of a case queued already: the newest version and row, over the
    row the list showed before the first of them), and the intent that covers them."""
    for e in entries:
        queued = _merge(_lagged, e)
        if e["version"] < queued["version"]:  # (an older entry put back after a failed sync: the row it moved from is the older one)
            queued["old_row"] = e["old_row"]
    if token is not None and entries:
        db = entries[0]["db"]
        _intents.setdefault(db.name, (db, []))[1].append(token)


def _lagged_sync_within(lag: float) -> None:
    if _lag_timer[0] is None:
        import eventlet

        _lag_timer[0] = eventlet.spawn_after(lag, _timed_lagged_sync, lag)


def _timed_lagged_sync(lag: float) -> None:
    with _process_lock("lag"):  # (`settle_lagged` waits for it: a stopping service's client closes only after)
        _lagged_sync(lag)


def _lagged_sync(lag: float, retry: bool = True) -> None:
    """Carry out the queued syncs together, then drop their intents. When that fails they are queued
    again and tried again (`retry`) — the intents stay, so if this process dies meanwhile another one
    finishes them —, except after the database client closed (the service stopped): then, and without
    `retry`, the intents are left to that recovery."""
    entries, intents = list(_lagged.values()), list(_intents.values())
    _lagged.clear()
    _intents.clear()
    wait = lag
    try:
        sync_cases(entries)
        for db, tokens in intents:
            lists(db)[BATCHES].delete_many({"_id": {"$in": tokens}})
    except InvalidOperation:
        log.warning("lagged case list sync of %s cases left to the intents' recovery (a closed client)", len(entries))
    except Exception:
        log.warning("lagged case list sync of %s cases failed%s", len(entries), "; tried again" if retry else "",
                    exc_info=True)
        if retry:
            _lag(entries, None)
            for db, tokens in intents:
                _intents.setdefault(db.name, (db, []))[1].extend(tokens)
            wait = min(LAG_RETRY_SECONDS, max(lag, 0.5))
    _lag_timer[0] = None
    if _lagged or _intents:
        _lagged_sync_within(wait)


def settle_lagged(db: Database | None = None) -> None:
    """Carry out the queued syncs now, once — of every database, `db` (a stopping service's, before its client
    closes: kernel/mongo.py `before_close`) among them; tests. A lagged sync already running is waited for
    first: one cut off by the client closing under it would leave the cases it had claimed leased (until
    LEASE_SECONDS), and the next sync of any of them waiting for that lease."""
    timer = _lag_timer[0]
    if timer is not None:
        timer.cancel()  # (one already running goes on: waited for below)
        _lag_timer[0] = None
    with _process_lock("lag"):
        if _lagged or _intents:
            _lagged_sync(0.0, retry=False)


def _finish_intent(db: Database, token: str, batch: dict) -> None:
    """The syncs an intent records whose process died before carrying them out: each case alone, at the
    recorded version and row (`_sync_row` leaves a case whose locator counts that version or a newer one)."""
    for m in bson.decode(batch["moves"])["moves"]:
        _sync_row(db, m["case"], int(m["version"]), m["row"], row_kept=False)
    _drop_batch(db, token)


BATCH_SWEEP_SECONDS = 15.0  # how often a process looks for batches and intents whose holder died (60 until 2026-12-05)
# an intent this old is taken to be left by a process that died (its own carries it out within CASE_LIST_LAG_MS;
# finishing one that is still its process's does no harm: each case is synced alone, idempotently)
INTENT_STALE_SECONDS = 10.0
_swept: dict[str, float] = {}  # database name -> when this process last looked (time.monotonic)


def sync_cases(entries: list[dict]) -> None:
    """The deferred syncs of one unit of work, in batches of ≤ SYNC_BATCH cases (see above); now and
    then (BATCH_SWEEP_SECONDS) also the batches whose holder died before claiming any case (nothing
    else would find them)."""
    for group in _by_db(entries):
        db = group[0]["db"]
        for start in range(0, len(group), SYNC_BATCH):
            _sync_batch(db, group[start:start + SYNC_BATCH])
        look_for_abandoned(db)


def look_for_abandoned(db: Database) -> int:
    """`sweep_batches`, once per BATCH_SWEEP_SECONDS per database (the first BATCH_SWEEP_SECONDS after this
    process first asked): from every list sync, and from penalty's periodic sweep, so an intent a dead
    process left is carried out also when no fact arrives. How many were finished."""
    now = time.monotonic()
    if now - _swept.setdefault(db.name, now) <= BATCH_SWEEP_SECONDS:
        return 0
    _swept[db.name] = now
    return sweep_batches(db)


def sweep_batches(db: Database) -> int:
    """Finish the batches whose holder died (their document older than the lease) and the intents whose
    process did (older than INTENT_STALE_SECONDS); how many."""
    now = time.time()
    stale = [b["_id"] for b in lists(db)[BATCHES].find(
        {"$or": [{"at": {"$lt": now - LEASE_SECONDS}}, {"intent": True, "at": {"$lt": now - INTENT_STALE_SECONDS}}]},
        {"_id": 1})]
    for token in stale:
        finish_batch(db, token)
    return len(stale)


# What this process last saw of each locator it wrote or read in a batch: (database, case) ->
# (key, digest, version), the most recently written (its share of PROCESS_MEMO_MB, kernel/process_memo.py). It picks each case's expected `from` and
# whether its row is kept more surely than the previous document does (a case saved by two batches
# of this process at once: the first one's sync may not be done); every use is checked by the
# write's condition, so a stale entry costs reads and a sync alone, never exactness.
LOCATOR_ENTRY_BYTES = 450  # one case's (key, digest, version) held (measured: tests/unit/test_process_memo.py)
_known = ProcessMemo("penalty.case_list_at", share=0.1, entry_bytes=LOCATOR_ENTRY_BYTES)
def _know(db: Database, case_id: str, key: str | None, digest: str | None, version: int) -> None:
    _known.put((db.name, case_id), (key, digest, version))


def _sync_batch(db: Database, entries: list[dict]) -> None:
    if len(entries) == 1:  # one case: its own sync costs fewer commands (4 for a new case, 6 for a move)
        e = entries[0]
        _sync_row(db, e["case"], e["version"], e["row"], row_kept=e["old_row"] is not None and e["old_row"] == e["row"])
        return
    with _process_lock("flush"):
        alone = _claim_and_finish(db, entries)
    for m in alone:  # (outside the lock: a sync alone may wait for another holder's lease)
        _sync_row(db, m["case"], m["version"], m["row"], row_kept=False)


def _claim_and_finish(db: Database, entries: list[dict]) -> list[dict]:
    """Steps 0-5 for `entries`; the moves to be synced alone (a condition did not hold)."""
    token, start = uuid.uuid4().hex, time.time()
    kept, moves, counted = [], [], []
    for e in entries:
        row = e["row"]
        move = {"case": e["case"], "from": None if e["old_row"] is None else row_key(e["old_row"]),
                "to": row_key(row), "row": row, "digest": row_digest(row), "version": e["version"]}
        known = _known.get((db.name, e["case"]))
        if known is not None and known[2] >= move["version"]:
            counted.append(move)  # as far as this process saw, counted already (checked below)
        elif known is not None:
            move["from"] = known[0]
            (kept if known[:2] == (move["to"], move["digest"]) else moves).append(move)
        else:
            (kept if e["old_row"] is not None and e["old_row"] == row else moves).append(move)
    if moves:
        lists(db)[BATCHES].insert_one({"_id": token, "at": start, "moves": bson.encode({"moves": moves})})
    lease = {"token": token, "until": start + LEASE_SECONDS}
    # a case new as far as this process knows: its locator inserted already claimed (one insert for all of
    # them; before 2026-12-04 an upsert creating it and the claim, two updates each). One that exists
    # (another sync created it) is claimed as any other below, and synced alone when that fails.
    fresh = [m for m in moves if m["from"] is None]
    taken = insert_new(lists(db).case_list_at, [
        {"_id": m["case"], "version": 0, "pending": {"batch": token, "version": m["version"]}, "lease": lease}
        for m in fresh]) if fresh else set()
    inserted = {m["case"] for i, m in enumerate(fresh) if i not in taken}
    ops = [UpdateOne({"_id": m["case"], "key": m["from"], "pending": None, "version": {"$lt": m["version"]},
                      "$or": [{"lease": None}, {"lease.until": {"$lt": start}}]},
                     {"$set": {"lease": lease, "pending": {"batch": token, "version": m["version"]}}})
           for m in moves if m["case"] not in inserted]
    ops += [UpdateOne({"_id": m["case"], "key": m["to"], "digest": m["digest"], "pending": None, "lease": None,
                       "version": {"$lte": m["version"]}}, {"$set": {"version": m["version"]}})
            for m in kept]
    ops += [UpdateOne({"_id": m["case"], "version": {"$gte": m["version"]}}, {"$max": {"version": m["version"]}})
            for m in counted]  # (changes nothing; matches only when the version is counted indeed)
    claimed, alone = moves, []
    if ops and _bulk(lists(db).case_list_at, ops) < len(ops):  # some condition did not hold: which, one read each
        locators = by_id(lists(db).case_list_at, [m["case"] for m in moves + kept + counted])
        found = {m["case"]: locators.get(m["case"]) or {} for m in moves + kept + counted}
        claimed = [m for m in moves if (found[m["case"]].get("pending") or {}).get("batch") == token]
        alone = [m for m in moves if m not in claimed] + \
                [m for m in kept + counted if int(found[m["case"]].get("version") or 0) < m["version"]]
        for case_id, loc in found.items():
            _known.pop((db.name, case_id), None)
            if loc.get("key") and not loc.get("pending"):
                _know(db, case_id, loc["key"], loc.get("digest"), int(loc.get("version") or 0))
    for m in kept:
        if m not in alone:
            _know(db, m["case"], m["to"], m["digest"], m["version"])
    if moves:
        if time.time() > start + LEASE_SECONDS / 2:  # (a holder this slow may have lost its leases)
            raise ConcurrencyError(f"case list batch {token} took over {LEASE_SECONDS / 2:g} s to claim")
        _finish(db, token, claimed, recovering=False)
        for m in claimed:
            _know(db, m["case"], m["to"], m["digest"], m["version"])
    for m in alone:
        _known.pop((db.name, m["case"]), None)
    return alone


def _finish(db: Database, token: str, claimed: list[dict], *, recovering: bool) -> None:
    """Steps 2-5 of the batch `token` for its claimed moves (each step idempotent)."""
    rows: dict[str, list] = {}
    net: dict[str, int] = {}
    for m in claimed:
        frm, to = m["from"], m["to"]
        rows.setdefault(to, []).append(ReplaceOne({"_id": m["case"]}, m["row"], upsert=True))
        if frm != to:
            net[to] = net.get(to, 0) + 1
            if frm is not None:
                rows.setdefault(frm, []).append(DeleteOne({"_id": m["case"]}))
                net[frm] = net.get(frm, 0) - 1
    for key, ops in rows.items():  # (one command for the replacements, one for the deletes: `_bulk` groups them)
        _bulk(partition(db, key), ops)
    net = {key: delta for key, delta in net.items() if delta}
    _count_net(db, net, token, recovering=recovering)
    released = _bulk(lists(db).case_list_at, [
        UpdateOne({"_id": m["case"], "pending.batch": token},
                  {"$set": {"key": m["to"], "version": m["version"], "digest": m["digest"], "pending": None,
                            "lease": None}}) for m in claimed])
    if released == len(claimed):  # (a claim lost meanwhile: the batch may still be pending; marks stay)
        for key in net:
            _finished.setdefault((db.name, key), set()).add(_mark(token))
    _drop_batch(db, token)


def _drop_batch(db: Database, token: str) -> None:
    lists(db)[BATCHES].delete_one({"_id": token})


def _count_net(db: Database, net: dict[str, int], token: str, *, recovering: bool) -> None:
    """`$inc` each counter by its net change unless it has applied the batch `token` already: one
    bulk (and the marks of finished moves dropped in it, as `_count` does); counter by counter when a
    counter has applied it (FerretDB v1 stops a bulk at its first error and its reply then lacks the
    counts) or when finishing a batch another process began."""
    if not net:
        return
    if not recovering:
        mark, drops, updates = _mark(token), {}, []
        for key, delta in net.items():
            dept, stage, overdue = key_parts(key)
            drops[key] = _finished.pop((db.name, key), set()) - {mark}
            update = {"$inc": {"n": delta}, "$set": {f"applied.{mark}": 1},
                      "$setOnInsert": {"dept": dept, "stage": stage, "overdue": overdue}}
            if drops[key]:
                update["$unset"] = {f"applied.{m}": "" for m in drops[key]}
            updates.append({"q": {"_id": key, f"applied.{mark}": {"$exists": False}}, "u": update, "upsert": True})
        if updates_clean(lists(db), "case_counts", updates):
            return
        for key, drop in drops.items():  # (dropped again, or still, by the next $inc)
            if drop:
                _finished.setdefault((db.name, key), set()).update(drop)
    for key, delta in net.items():
        _count(db, key, delta, token)


def finish_batch(db: Database, token: str) -> bool:
    """Finish the batch `token` another sync began (its holder died): the moves whose locators are
    still claimed by it. False when its document is gone (it finished)."""
    batch = lists(db)[BATCHES].find_one({"_id": token})
    if batch is None:
        return False
    if batch.get("intent"):  # (syncs recorded for the lagged sync of a process that died)
        _finish_intent(db, token, batch)
        return True
    moves = bson.decode(batch["moves"])["moves"]
    locators = by_id(lists(db).case_list_at, [m["case"] for m in moves], {"pending": 1})
    claimed = [m for m in moves if ((locators.get(m["case"]) or {}).get("pending") or {}).get("batch") == token]
    _finish(db, token, claimed, recovering=True)
    return True


class CaseStore(AggregateStore):
    """The case aggregates; every save (fact, batch, command, deadline sweep) and every redelivery
    that finds its fact applied is followed by a sync of the case list (`sync_case`; in a unit of
    work, `writes()` not None, all of the unit's at its end: `defer_sync`, or CASE_LIST_LAG_MS later for a
    unit that `may_lag`), so the case list and its counters follow the stage and the overdue flag
    whichever path changed them."""

    def __init__(self, collection: Collection, *args: Any, writes: Callable[[], Any] | None = None, **kwargs: Any):
        super().__init__(collection, *args, **kwargs)
        self.writes = writes or (lambda: None)  # the unit of work's SideWrites (None: none runs)

    def update(self, agg_id: str, decide: Callable[[dict | None], Change | None],
               probably_new: bool = False) -> tuple[dict | None, list[dict]]:
        decided_on: list = [None]

        def watching(current: dict | None) -> Change | None:
            decided_on[0] = current  # the document the saved attempt started from
            return decide(current)

        doc, pending = super().update(agg_id, watching, probably_new)
        if doc is not None:
            old, unit = decided_on[0], self.writes()
            if unit is not None:
                defer_sync(unit, self.col.database, doc, old)
            else:
                sync_case(self.col.database, doc, row_kept=old is not None and list_row(old) == list_row(doc))
        return doc, pending


# -- case list: queries -------------------------------------------------------------------------

def counted_keys(db: Database, *, dept: str | None = None, stage: str | None = None,
                 overdue: bool | None = None, stage_order: Iterable[str] = ()) -> list[tuple[str, int]]:
    """(key, count) of every non-empty key matching the filters, in list order."""
    rank = {s: i for i, s in enumerate(stage_order)}
    found = []
    for counter in lists(db).case_counts.find({}, {"n": 1}):
        d, s, o = key_parts(counter["_id"])
        if (dept and d != dept) or (stage and s != stage) or (overdue is not None and o != overdue):
            continue
        if counter.get("n", 0) > 0:
            found.append((counter["_id"], int(counter["n"])))
    found.sort(key=lambda kn: (lambda d, s, o: (d or "", rank.get(s, len(rank)), s or "", not o))(*key_parts(kn[0])))
    return found


def list_cases(db: Database, *, dept: str | None, stage: str | None, overdue: bool | None,
               limit: int, offset: int, stage_order: Iterable[str] = ()) -> tuple[list[dict], int]:
    """One page of the case list and the total, from the counters and the partitions."""
    keys = counted_keys(db, dept=dept, stage=stage, overdue=overdue, stage_order=stage_order)
    total = sum(n for _, n in keys)
    items: list[dict] = []
    skip = offset
    for key, n in keys:
        if len(items) >= limit:
            break
        if skip >= n:
            skip -= n
            continue
        cursor = partition(db, key).find({}, {"_id": 0})
        if skip:
            cursor = cursor.skip(skip)
        items.extend(cursor.limit(limit - len(items)))
        skip = 0
    return items, total


def case_counts(db: Database, dept: str | None = None) -> list[dict]:
    """The counters: one {dept, stage, overdue, count} per non-empty key (of `dept` if given)."""
    out = []
    for key, n in counted_keys(db, dept=dept):
        d, s, o = key_parts(key)
        out.append({"dept": d, "stage": s, "overdue": o, "count": n})
    return out


# -- case list: rebuild and repair (operators: python -m services.penalty.caselist) -------------

def rebuild_list(db: Database) -> dict:
    """Rebuild the partitions, locators and counters from the case documents (a full scan).

    Meant for a first start on existing cases and for operators with the penalty service stopped:
    a sync running meanwhile may be overwritten (run `repair` afterwards to check)."""
    for where in (db, lists(db)):  # (`db`: a list kept beside the cases before it had a database of its own)
        for name in where.list_collection_names():
            if name.startswith(LIST_PREFIX + ".") or name in ("case_counts", "case_list_at", BATCHES):
                where.drop_collection(name)
    counts: dict[str, int] = {}
    rows: dict[str, list[dict]] = {}
    locators: list[dict] = []

    def flush(key: str | None = None) -> None:
        for k in [key] if key else list(rows):
            if rows.get(k):
                partition(db, k).insert_many(rows.pop(k))
        if key is None and locators:
            lists(db).case_list_at.insert_many(locators)
            locators.clear()

    for doc in (unpack_from(db.cases, d) for d in db.cases.find({}, LISTED)):
        row = list_row(doc)
        key = row_key(row)
        counts[key] = counts.get(key, 0) + 1
        rows.setdefault(key, []).append(row)
        locators.append({"_id": doc["_id"], "key": key, "version": int(doc.get("version") or 0),
                         "pending": None, "lease": None, "digest": row_digest(row)})
        if len(rows[key]) >= FILL_BATCH:
            flush(key)
        if len(locators) >= FILL_BATCH:
            lists(db).case_list_at.insert_many(locators)
            locators.clear()
    flush()
    write_counts(db, counts)
    return counts


def write_counts(db: Database, counts: dict[str, int]) -> None:
    """Set the counters to `counts` (key -> n), dropping any marks of applied moves."""
    for key, n in counts.items():
        dept, stage, overdue = key_parts(key)
        lists(db).case_counts.replace_one({"_id": key}, {"n": n, "tokens": [], "dept": dept, "stage": stage,
                                                         "overdue": overdue}, upsert=True)


def recount(db: Database) -> dict[str, int]:
    """The true number of rows in each partition (reads every row: an operator's check)."""
    out = {}
    for name in lists(db).list_collection_names():
        if name.startswith(LIST_PREFIX + "."):
            n = lists(db)[name].count_documents({})
            if n:
                out[name[len(LIST_PREFIX) + 1:]] = n
    return out


def repair(db: Database, *, fix: bool = False) -> dict:
    """Carry out moves and batches left pending by crashed syncs (lease expired), then compare the counters with
    a recount; with `fix`, set the counters that differ and drop stale tokens. `stale_tokens` counts the
    marks the counters hold: a running service's last finished moves leave a few (each process drops
    them with its next `$inc` of that counter), a crashed process's stay until a fix."""
    carried = sweep_batches(db)  # batches whose holder died (their leases expired)
    for loc in lists(db).case_list_at.find({"pending": {"$ne": None}}, {"_id": 1}):
        doc = unpack_from(db.cases, db.cases.find_one({"_id": loc["_id"]}, LISTED))
        if doc is not None:
            sync_case(db, {**doc, "version": -1})  # carries out the pending move; counts nothing new
            carried += 1
    true = recount(db)
    stored = {c["_id"]: (int(c.get("n", 0)), len(c.get("tokens") or ()) + len(c.get("applied") or {}))
              for c in lists(db).case_counts.find({})}
    wrong = {k: {"counter": stored.get(k, (0, 0))[0], "recount": true.get(k, 0)}
             for k in set(true) | set(stored) if stored.get(k, (0, 0))[0] != true.get(k, 0)}
    tokens = sum(t for _, t in stored.values())
    if fix and (wrong or tokens):
        write_counts(db, {k: true.get(k, 0) for k in stored if k in wrong or stored[k][1]} |
                     {k: n for k, n in true.items() if k in wrong})
    return {"pending_carried_out": carried, "wrong": wrong, "stale_tokens": tokens, "fixed": bool(fix)}
