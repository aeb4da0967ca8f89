"""Penalty storage: case aggregates, the officer and item projections, the decisions index.

- `cases`: the kernel's aggregate documents (facts + snapshot + findings + due date + outbox);
  the snapshot lists the officers, item codes and party a case refers to (indexed).
- `officers` / `items`: the newest `officer.changed` / `item.changed` payload per id, kept only
  when its version is not older than the stored one, so out-of-order delivery is harmless.
- `decisions`: one entry per decided case (its current decision), looked up by party.
- The case list (`case_list.<dept>.<stage>.<0|1>`, `case_counts`, `case_list_at`): see "case
  list" below; lists and their totals never read the aggregate documents.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, Iterable

from pymongo import DeleteOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel import leases
from services.kernel.aggregates import AggregateStore, Change
from services.kernel.memo import Memo, remembered
from services.kernel.mongo import ConcurrencyError  # noqa: F401 (raised by the lease; callers catch store.ConcurrencyError)
from services.kernel.packing import reading, unpack_from
from services.kernel.projection_cache import ProjectionReader, record_change
from services.kernel.sidewrites import SideWrites, deferred
from services.penalty.projections import case_summary

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
    if db.case_list_at.find_one({}, {"_id": 1}) is None and db.cases.find_one({}, {"_id": 1}) is not None:
        rebuild_list(db)  # first start on cases stored before the case list existed


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


# What penalty derives from an officer projection (services/common/qualification.py `holder_from_payload`,
# projections.case_facts `officer_kinds`): payloads equal in these judge every case alike (a training
# record changes neither), so a process may keep serving the older one from its cache.
OFFICER_READ = ("officer_id", "name", "dept", "kind", "active", "statuses", "credentials")


def _officer_read(payload: dict | None) -> dict | None:
    return None if payload is None else {k: payload.get(k) for k in OFFICER_READ}


def store_officer(db: Database, payload: dict, now: datetime) -> tuple[bool, bool]:
    """Store a newer officer projection: (whether what penalty reads of it changed — OFFICER_READ —
    or the same version was stored again (a redelivery: maybe after a crash before its change was
    logged), whether what the credential rule reads changed, `_officer_facts`). One command: the
    write hands back the projection it replaced (none: a new officer)."""
    version = int(payload["version"])
    try:
        old = db.officers.find_one_and_update(
            {"_id": payload["officer_id"], "version": {"$lte": version}},
            {"$set": {"version": version, "payload": payload, "received_at": now}},
            upsert=True, return_document=ReturnDocument.BEFORE)  # (FerretDB v1: no projection here)
    except DuplicateKeyError:  # a newer version is stored: the filter missed and the insert collided
        return False, False
    before = old["payload"] if old else None
    again = old is not None and old.get("version") == version
    return again or _officer_read(before) != _officer_read(payload), _officer_facts(before) != _officer_facts(payload)


def upsert_officer(db: Database, payload: dict, now: datetime) -> bool:
    """Store a newer officer projection; True only when what the rules read has changed."""
    return store_officer(db, payload, now)[1]


def upsert_item(db: Database, payload: dict, now: datetime) -> bool:
    return _upsert_newer(db.items, payload["item_code"], int(payload["revision"]), payload, now)


OFFICERS, ITEMS = "officers", "items"  # projection kinds in the process cache and its change log


def projection_changed(db: Database, kind: str, key: str) -> None:
    """A newer officer or item projection was stored: every process's cache drops it at its next
    batch (services/kernel/projection_cache.py). Call after storing it and before making the cases
    that refer to it due."""
    record_change(db, kind, key)


def _payloads(col: Collection) -> Callable[[list], dict]:
    # one _id lookup each: FerretDB v1 pushes down `_id` equality only, so `$in` would read every document
    return lambda keys: {d["_id"]: d["payload"] for d in (col.find_one({"_id": k}) for k in keys) if d}


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


def ref_keys(snapshot: dict) -> list[str]:
    """Reverse-index keys of what a case refers to: `officer_ids:<id>`, `item_codes:<code>`, `party_id:<id>`."""
    keys = []
    for field in REF_FIELDS:
        values = snapshot.get(field)
        for value in values if isinstance(values, list) else [values]:
            if value:
                keys.append(f"{field}:{value}")
    return keys


def index_refs(db: Database, case_id: str, snapshot: dict, known: set, writes: SideWrites | None = None) -> None:
    """Record in `case_refs` which cases refer to each officer, item and party (idempotent, blind:
    deferred to the end of the unit of work, one bulk for all its cases, when `writes` is given).

    `known` is a process-local set of (key, case_id) already written, to skip repeat writes (a pair
    joins it once its write is done).
    """
    new = [(key, case_id) for key in ref_keys(snapshot) if (key, case_id) not in known]
    for key, _ in new:
        deferred(writes, db.case_refs, UpdateOne({"_id": key}, {"$addToSet": {"cases": case_id}}, upsert=True))
    if new:
        if writes is None:
            known.update(new)
        else:
            writes.after(lambda: known.update(new))


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
        out = {}
        for party in parties:
            cases = sorted(cases_referring(db, "party_id", party))[:MAX_OTHER_DECISIONS + 1]
            out[party] = [(c, db.decisions.find_one({"_id": c}, {"_id": 0})) for c in cases]
        return out
    return load


def other_decisions(db: Database, party_id: str | None, case_id: str,
                    reader: ProjectionReader | None = None) -> list[dict]:
    """The decisions-index entries of the other cases referring to `party_id` (the first
    MAX_OTHER_DECISIONS of them). With the unit's `reader` the party's list comes from the process
    cache (services/kernel/projection_cache.py; a changed entry is logged, `decision_changed`)."""
    if not party_id:
        return []
    if reader is not None:
        listed = reader.payloads(PARTIES, [party_id], _party_decisions(db), case_id).get(party_id, [])
        return [entry for c, entry in [(c, e) for c, e in listed if c != case_id][:MAX_OTHER_DECISIONS] if entry]
    others = sorted(c for c in cases_referring(db, "party_id", party_id) if c != case_id)[:MAX_OTHER_DECISIONS]
    found = (db.decisions.find_one({"_id": c}, {"_id": 0}) for c in others)
    return [d for d in found if d]


def decision_changed(db: Database, parties: Iterable[str | None], now: datetime, case_id: str, *,
                     make_due: bool = True) -> None:
    """A case's decisions-index entry changed (written): the lists of its parties are logged as
    changed (every process's cache drops them), then the parties' other cases fall due."""
    for party in sorted({p for p in parties if p}):
        record_change(db, PARTIES, party)
        if make_due:
            mark_due(db, "party_id", party, now, except_case=case_id)


# -- case list ------------------------------------------------------------------------------------
#
# FerretDB v1 (SQLite) hands SQLite only an `_id` equality filter, and a limit only when a find has
# no filter, no sort and no skip: any other filter, sort, count or skip decodes every document of
# the collection (secondary indexes are created but a find never uses them). `count_documents` plus
# a sorted page over the aggregate documents (11-15 KB each) took > 20 s at 3,000 cases. So the
# list is laid out for `_id` look-ups and unfiltered, lazily read collections:
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


def list_key(dept: str | None, stage: str | None, overdue: bool | None) -> str:
    return f"{dept or '_'}.{stage or '_'}.{1 if overdue else 0}"


def key_parts(key: str) -> tuple[str | None, str | None, bool]:
    dept, stage, flag = key.rsplit(".", 2)
    return (None if dept == "_" else dept), (None if stage == "_" else stage), flag == "1"


def partition(db: Database, key: str) -> Collection:
    return db[f"{LIST_PREFIX}.{key}"]


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
    return leases.acquire(db.case_list_at, case_id, seconds=LEASE_SECONDS, wait_seconds=LEASE_WAIT_SECONDS,
                          what="case list")


def _acquire_with_move(db: Database, case_id: str, move: dict) -> tuple[dict | None, str] | None:
    """The lease and the pending move in one write, when the locator is free (no live lease), has no
    move pending and counts an older version (or does not exist yet): the locator as it was before
    (None: a new case), and the lease token. None when it is not so (the caller takes the lease the
    slow way, which waits, finishes a pending move, or finds the version counted)."""
    return leases.try_acquire(db.case_list_at, case_id, seconds=LEASE_SECONDS, before=True, also={"pending": move},
                              only_if={"pending": None, "version": {"$lt": move["version"]}})


def _release(db: Database, case_id: str, lease: str, fields: dict) -> bool:
    """Write `fields` and drop the lease, if it is still ours; False when it is not (it expired and
    another sync took it over)."""
    return db.case_list_at.update_one({"_id": case_id, "lease.token": lease},
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
        db.case_counts.update_one({"_id": key, "tokens": {"$ne": token}, f"applied.{mark}": {"$exists": False}},
                                  update, upsert=True)
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
        ours = db.case_list_at.update_one({"_id": case_id, "lease.token": lease}, {"$set": done}).matched_count == 1
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
    case_id, version = doc["_id"], int(doc.get("version") or 0)
    row = list_row(doc)
    digest = row_digest(row)
    to = row_key(row)
    if row_kept and db.case_list_at.update_one({"_id": case_id, "key": to, "digest": digest,
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
        db.case_list_at.update_one({"_id": case_id, "lease.token": lease}, {"$set": {"pending": move}})
        _carry_out(db, case_id, frm, move, lease, release=True)
        released = True
        return True
    finally:
        if not released:
            _release(db, case_id, lease, {})


class CaseStore(AggregateStore):
    """The case aggregates; every save (fact, batch, command, deadline sweep) and every redelivery
    that finds its fact applied is followed by `sync_case`, so the case list and its counters
    follow the stage and the overdue flag whichever path changed them."""

    def update(self, agg_id: str, decide: Callable[[dict | None], Change | None]) -> tuple[dict | None, list[dict]]:
        decided_on: list = [None]

        def watching(current: dict | None) -> Change | None:
            decided_on[0] = current  # the document the saved attempt started from
            return decide(current)

        doc, pending = super().update(agg_id, watching)
        if doc is not None:
            old = decided_on[0]
            sync_case(self.col.database, doc, row_kept=old is not None and list_row(old) == list_row(doc))
        return doc, pending


# -- case list: queries -------------------------------------------------------------------------

def counted_keys(db: Database, *, dept: str | None = None, stage: str | None = None,
                 overdue: bool | None = None, stage_order: Iterable[str] = ()) -> list[tuple[str, int]]:
    """(key, count) of every non-empty key matching the filters, in list order."""
    rank = {s: i for i, s in enumerate(stage_order)}
    found = []
    for counter in db.case_counts.find({}, {"n": 1}):
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
    for name in db.list_collection_names():
        if name.startswith(LIST_PREFIX + "."):
            db.drop_collection(name)
    db.case_counts.drop()
    db.case_list_at.drop()
    counts: dict[str, int] = {}
    rows: dict[str, list[dict]] = {}
    locators: list[dict] = []

    def flush(key: str | None = None) -> None:
        for k in [key] if key else list(rows):
            if rows.get(k):
                partition(db, k).insert_many(rows.pop(k))
        if key is None and locators:
            db.case_list_at.insert_many(locators)
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
            db.case_list_at.insert_many(locators)
            locators.clear()
    flush()
    write_counts(db, counts)
    return counts


def write_counts(db: Database, counts: dict[str, int]) -> None:
    """Set the counters to `counts` (key -> n), dropping any marks of applied moves."""
    for key, n in counts.items():
        dept, stage, overdue = key_parts(key)
        db.case_counts.replace_one({"_id": key}, {"n": n, "tokens": [], "dept": dept, "stage": stage,
                                                  "overdue": overdue}, upsert=True)


def recount(db: Database) -> dict[str, int]:
    """The true number of rows in each partition (reads every row: an operator's check)."""
    out = {}
    for name in db.list_collection_names():
        if name.startswith(LIST_PREFIX + "."):
            n = db[name].count_documents({})
            if n:
                out[name[len(LIST_PREFIX) + 1:]] = n
    return out


def repair(db: Database, *, fix: bool = False) -> dict:
    """Carry out moves left pending by crashed syncs (lease expired), then compare the counters with
    a recount; with `fix`, set the counters that differ and drop stale tokens. `stale_tokens` counts the
    marks the counters hold: a running service's last finished moves leave a few (each process drops
    them with its next `$inc` of that counter), a crashed process's stay until a fix."""
    carried = 0
    for loc in db.case_list_at.find({"pending": {"$ne": None}}, {"_id": 1}):
        doc = unpack_from(db.cases, db.cases.find_one({"_id": loc["_id"]}, LISTED))
        if doc is not None:
            sync_case(db, {**doc, "version": -1})  # carries out the pending move; counts nothing new
            carried += 1
    true = recount(db)
    stored = {c["_id"]: (int(c.get("n", 0)), len(c.get("tokens") or ()) + len(c.get("applied") or {}))
              for c in db.case_counts.find({})}
    wrong = {k: {"counter": stored.get(k, (0, 0))[0], "recount": true.get(k, 0)}
             for k in set(true) | set(stored) if stored.get(k, (0, 0))[0] != true.get(k, 0)}
    tokens = sum(t for _, t in stored.values())
    if fix and (wrong or tokens):
        write_counts(db, {k: true.get(k, 0) for k in stored if k in wrong or stored[k][1]} |
                     {k: n for k, n in true.items() if k in wrong})
    return {"pending_carried_out": carried, "wrong": wrong, "stale_tokens": tokens, "fixed": bool(fix)}
