"""Coordination storage: inbox entries and supervision cases (aggregate documents), console counters.

Counters (`inbox_counters`, one document per department × rule × severity × state × escalated)
are kept on write: after each save of an inbox entry its count moves from the counter it was in to
the one it is in now. Which counter an entry is in is remembered per entry (`inbox_counted`, moved
with a compare-and-set on the entry's version, or for several entries saved at one moment with one
read and one bulk of guarded updates), so a redelivered or repeated save changes nothing
and an older save arriving late cannot move the count back. FerretDB v1 has no transactions: a
crash between the move and the increment leaves one counter off by one, set right by `reconcile_counters` (the service
runs it periodically; docs/rules-coordination.md); a process stopped between saving an entry and
counting it is repaired by `repair_counts` (run with it).
"""
from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from pymongo import ASCENDING, DESCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.coordination.domain.inbox import OPEN, OPEN_STATES
from services.kernel.aggregates import AggregateStore
from services.kernel.mongo import by_id
from services.kernel.sidewrites import MAX_OPS, grouped, together

INBOX, CASES = "inbox", "supervision_cases"
COMPLAINTS, NORMATIVE, DEVICES, DISPUTES = "complaints", "normative_documents", "devices", "disputes"
REVIEW_PLANS, EVALUATIONS, REPORT_MONTHS = "review_plans", "evaluations", "report_months"
COUNTER_FIELDS = ("dept", "rule_id", "severity", "state", "escalated")
MAX_ATTEMPTS = 10

log = logging.getLogger("zhifa.coordination")


def ensure_indexes(db: Database) -> None:
    AggregateStore.ensure_indexes(db[INBOX], "dept", "snapshot.state", "snapshot.rule_id", "snapshot.merged_into",
                                  "snapshot.known")
    AggregateStore.ensure_indexes(db[CASES], "snapshot.depts", "snapshot.status")
    db.inbox_counters.create_index("dept")
    AggregateStore.ensure_indexes(db[COMPLAINTS], "dept", "snapshot.status", "snapshot.received_on")
    AggregateStore.ensure_indexes(db[NORMATIVE], "dept", "snapshot.status")
    AggregateStore.ensure_indexes(db[DEVICES], "dept", "snapshot.status")
    AggregateStore.ensure_indexes(db[DISPUTES], "snapshot.depts", "snapshot.status")
    AggregateStore.ensure_indexes(db[REVIEW_PLANS], "snapshot.year")
    AggregateStore.ensure_indexes(db[EVALUATIONS])
    AggregateStore.ensure_indexes(db[REPORT_MONTHS], "snapshot.depts")
    db[INBOX].create_index("snapshot.subject_type")


# ---- counters -----------------------------------------------------------------------------------------

def counter_id(key: dict) -> str:
    return "|".join(str(int(key[f]) if f == "escalated" else key[f]) for f in COUNTER_FIELDS)


def counter_key(cid: str) -> dict | None:
    """The fields of counter `cid` (`counter_id`'s inverse); None when they cannot be told apart (a field
    holding "|")."""
    parts = cid.split("|")
    if len(parts) != len(COUNTER_FIELDS):
        return None
    key: dict[str, Any] = dict(zip(COUNTER_FIELDS, parts))
    key["escalated"] = key["escalated"] == "1"
    return key


def _inc(cid: str, key: dict | None, delta: int) -> UpdateOne:
    """The write that moves counter `cid` by `delta`, creating it with its fields (`key`, else read from
    `cid`) when it does not exist yet: a `-1` can come first when another process counts the entry's
    first save at the same moment (`count`), and the `+1` that follows must meet it."""
    update, creatable = _inc_update(cid, key, delta)
    return UpdateOne({"_id": cid}, update, upsert=creatable)


def _inc_update(cid: str, key: dict | None, delta: int) -> tuple[dict, bool]:
    """`_inc`'s update, and whether it may create the counter (False: its fields cannot be told from `cid`)."""
    update: dict[str, Any] = {"$inc": {"n": delta}}
    fields = key if key is not None else counter_key(cid)
    if fields is not None:
        update["$setOnInsert"] = {f: fields[f] for f in COUNTER_FIELDS}
    return update, fields is not None


_COUNTED: dict[tuple[str, str], tuple[int, str]] = {}  # (database, entry) -> (version, counter) counted here
_COUNTED_MAX = 20_000


def count(db: Database, entry_id: str, version: int, key: dict, fresh: bool = False) -> bool:
    """Move one entry's count to counter `key` as of its saved `version`; True if it moved.

    The move is one compare-and-set on the entry's `inbox_counted` document, which also tells where
    the count was (findAndModify returning the document before: absent — a new entry —, in another
    counter, or in this one already); an older version than the one counted fails its filter, and
    its upsert then fails on the duplicate key. An entry saved for the first time (version 1: nearly
    always a new one) is first tried as an insert sent with the other green threads' writes of that
    moment (`together`: one bulk for a batch's new entries); when that bulk fails (this entry or
    another was counted already) the compare-and-set above decides, and the random token the insert
    carried (kept by later moves) tells whether it was this insert that stored the document — also
    when another process has moved the entry on meanwhile (its `-1` then needs this `+1`). Then the
    counters: `+1` (and `-1` where it was), sent with the other green threads' increments of that moment.

    An entry saved again (version > 1) is moved with the other green threads' moves of that moment
    (`_send_moves`: one read of where their counts are, one bulk of guarded updates) when there are
    several; alone, or when its guarded update lost to another writer, it takes the compare-and-set.

    A save is counted from `after_save` and again from the relay (sweeps have no `after_save`): the
    second call for the same (version, counter) in this process sends nothing (`_COUNTED`); the
    stored state can only have moved past what this process counted, never back — except when an
    operator's repair found it missing: `fresh` asks the database again whatever this process remembers."""
    cid = counter_id(key)
    memo_key = (db.name, entry_id)
    if not fresh and _COUNTED.get(memo_key) == (version, cid):
        return False
    if len(_COUNTED) >= _COUNTED_MAX:
        _COUNTED.clear()
    token = None
    if version == 1 and not fresh:
        token = uuid.uuid4().hex
        try:
            together(db.inbox_counted, InsertOne({"_id": entry_id, "key": cid, "version": version, "t": token}))
        except Exception:  # (a duplicate key in the bulk, or it failed): the compare-and-set says what holds
            log.debug("counting %s as new failed; compare-and-set", entry_id, exc_info=True)
        else:
            return _moved(db, memo_key, version, cid, key, None)
    elif version > 1 and not fresh:
        was = grouped(db.inbox_counted, (entry_id, version, cid), _send_moves, "moves")
        if was is _STALE:
            return False
        if was is not None:
            return _moved(db, memo_key, version, cid, key, was)
    for _ in range(MAX_ATTEMPTS):
        try:
            seen = db.inbox_counted.find_one_and_update(
                {"_id": entry_id, "version": {"$lte": version}}, {"$set": {"key": cid, "version": version}},
                upsert=True, return_document=ReturnDocument.BEFORE)
        except DuplicateKeyError:  # counted at a newer version — or created meanwhile: ask which
            stored = db.inbox_counted.find_one({"_id": entry_id}, {"version": 1, "t": 1})
            if stored is not None and token is not None and stored.get("t") == token:
                # this call's insert stored it after all (its bulk failed on another write), and another
                # process moved it on since, taking the count out of `cid`: it still has to go in
                return _moved(db, memo_key, version, cid, key, None)
            if stored is not None and stored["version"] > version:
                return False
            continue
        if seen is not None and token is not None and seen.get("t") == token:
            seen = None  # stored by the insert above after all (its bulk failed on another write)
        return _moved(db, memo_key, version, cid, key, None if seen is None else seen["key"])
    return False


def _moved(db: Database, memo_key: tuple[str, str], version: int, cid: str, key: dict, was: str | None) -> bool:
    """The counters after one entry's count went to `cid` from counter `was` (None: from none); True if it
    moved — nothing to write when it was in `cid` already."""
    _COUNTED[memo_key] = (version, cid)
    if was == cid:
        return False
    ops = [_inc(cid, key, 1)] if was is None else [_inc(cid, key, 1), _inc(was, None, -1)]
    grouped(db.inbox_counters, ops, _send_increments, "increments")
    return True


_STALE = object()  # (`_send_moves`: the entry is counted at a newer version already)


def _stored(collection, entry_ids: list[str]) -> dict[str, dict]:
    """Where the counts of these entries are: their `inbox_counted` documents, by id."""
    return by_id(collection, entry_ids, {"key": 1, "version": 1})


def _send_moves(collection, moves: list[tuple[str, int, str]]) -> list:
    """The moves (entry, version, counter) green threads ask for at one moment, decided together: one read
    of where each count is, one ordered bulk of updates each guarded by the version and counter it read,
    carrying a random token of its own under its version (`mv.v<version>`; `t` stays the first insert's).
    Per move: the counter the count was in (the same one: nothing to move), `_STALE` (counted at a newer
    version), or None — decide it alone by the compare-and-set: a move alone in its group (one
    findAndModify is cheaper than a read and a write), an entry not counted yet or twice in the group, a
    guarded update another writer beat (when the bulk matched fewer than it sent, the tokens read back tell
    whose landed). A token is kept per version, not in one field, because another process can move the
    entry on between this bulk and its read-back: one field would then hold that process's token, and a
    move that landed would be taken for one that missed — and counted by nobody."""
    out: list = [None] * len(moves)
    if len(moves) < 2:
        return out
    stored = _stored(collection, [entry_id for entry_id, _, _ in moves])
    planned: dict[int, tuple[str, str]] = {}
    ops, taken = [], set()
    for i, (entry_id, version, cid) in enumerate(moves):
        doc = stored.get(entry_id)
        if doc is None or entry_id in taken:
            continue
        taken.add(entry_id)
        if doc["version"] > version:
            out[i] = _STALE
        elif doc["version"] == version and doc["key"] == cid:
            out[i] = cid  # (counted there already: a repeated save)
        else:
            token = uuid.uuid4().hex
            ops.append(UpdateOne({"_id": entry_id, "version": doc["version"], "key": doc["key"]},
                                 {"$set": {"key": cid, "version": version, f"mv.v{version}": token}}))
            planned[i] = (token, doc["key"])
    if not ops:
        return out
    result = collection.bulk_write(ops, ordered=True)
    landed = None
    if result.matched_count != len(ops):
        landed = _landed(collection, [moves[i][0] for i in planned])
    for i, (token, was) in planned.items():
        entry_id, version, _ = moves[i]
        if landed is None or landed.get(entry_id, {}).get(f"v{version}") == token:
            out[i] = was
    return out


def _landed(collection, entry_ids: list[str]) -> dict[str, dict]:
    """The grouped moves' tokens these entries keep, by entry and version (`_send_moves`)."""
    return {entry_id: doc.get("mv") or {} for entry_id, doc in by_id(collection, entry_ids, {"mv": 1}).items()}


def _send_increments(collection, groups: list[list[UpdateOne]]) -> list:
    """The counter writes of the moves green threads made at one moment, in ordered bulks of ≤ MAX_OPS;
    one move's `+1` and `-1` travel in one command."""
    chunk: list = []
    for ops in groups:
        if chunk and len(chunk) + len(ops) > MAX_OPS:
            collection.bulk_write(chunk, ordered=True)
            chunk = []
        chunk.extend(ops)
    if chunk:
        collection.bulk_write(chunk, ordered=True)
    return [None] * len(groups)


def repair_counts(db: Database, counter_key, *, full: bool = True) -> int:
    """Count every known inbox entry whose count did not follow its last save (a process stopped
    between saving the entry and counting it); returns how many moved. `counter_key(snapshot)` is
    the domain's. Safe to run beside live writers: each move is the same compare-and-set.

    `full` compares every entry's snapshot with the counter it is counted in (a process's first round:
    the code that maps a snapshot to its counter may have changed since the entry was counted). Else
    only the entries saved since they were last counted are read whole — a counted version older than
    the entry's (or none) —, the rest by their version alone. FerretDB v1 still reads each whole document,
    but the others' snapshots are neither sent nor decoded: at 20,000 entries (2.4 KB each) 1.45 s a round
    against 2.0 s, this process's CPU 0.13 s against 0.3 s. Every entry is looked at (until 2026-12-06 the
    first 100,000 only)."""
    moved = 0
    seen = {doc["_id"]: (doc.get("key"), int(doc.get("version") or 0))
            for doc in db.inbox_counted.find({}, {"key": 1, "version": 1})}
    known = {"snapshot.known": True}
    if full:
        entries: Iterable[dict] = db[INBOX].find(known, {"snapshot": 1, "version": 1})
    else:
        behind = [doc["_id"] for doc in db[INBOX].find(known, {"version": 1})
                  if doc["_id"] not in seen or seen[doc["_id"]][1] < int(doc.get("version") or 0)]
        entries = [doc for doc in by_id(db[INBOX], behind, {"snapshot": 1, "version": 1}).values()
                   if (doc.get("snapshot") or {}).get("known")]
    for doc in entries:
        key = counter_key(doc["snapshot"])
        mine = seen.get(doc["_id"])
        if mine is None or mine[0] != counter_id(key):
            moved += count(db, doc["_id"], doc["version"], key, fresh=True)
    return moved


# A stop between moving an entry's count (`inbox_counted`) and its counters' increments leaves a counter off
# by one; nothing else would ever find it. Every count is where its `inbox_counted` document says, so the
# counters are reconciled against a recount of those documents. A writer beside it moves a count in two
# writes a moment apart, so a difference seen once may be a move in flight: a counter is set only when the
# recount and the counter read the same at two observations at least a timer's interval apart (`before`) —
# nothing moved in or out meanwhile and the difference stayed —, guarded by the value it read (a move landing
# at that moment, or another process's reconciliation, makes the guard fail: the next round looks again).

@dataclass(frozen=True)
class NotACount:
    """A counter's stored `n` that is no whole number (written by hand, say), as stored: never equal to a
    recount, so the reconciliation sets it (`$inc` on it fails, as every move's increment of it does until then).
    Two reads of the same value are equal (by its repr: a NaN read twice too)."""
    value: Any = field(compare=False)
    shown: str  # (`repr(value)`: what two reads compare)


def _held(doc: dict) -> int | NotACount:
    """A counter document's `n` as a count (missing: 0)."""
    if "n" not in doc:
        return 0
    value = doc["n"]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return NotACount(value, repr(value))


def recount(db: Database) -> dict[str, tuple[int, Any]]:
    """Per counter: (the entries `inbox_counted` puts there, the counter's `n` — None: no counter document;
    NotACount: a value that is no whole number)."""
    truth: dict[str, int] = {}
    for doc in db.inbox_counted.find({}, {"key": 1}):
        truth[doc["key"]] = truth.get(doc["key"], 0) + 1
    held = {doc["_id"]: _held(doc) for doc in db.inbox_counters.find({}, {"n": 1})}
    return {cid: (truth.get(cid, 0), held.get(cid)) for cid in truth.keys() | held.keys()}


def reconcile_counters(db: Database, before: dict[str, tuple[int, Any]] | None) -> tuple[dict, list[dict]]:
    """Set the counters that differ from the recount and read the same as at the observation `before` (a
    `recount` at least a move's moment earlier; None: observe only). The observation made now, and what was
    set: [{counter, was, now}]."""
    seen = recount(db)
    fixed: list[dict] = []
    for cid, (truth, n) in sorted(seen.items()):
        if truth == (n or 0) or before is None or before.get(cid) != (truth, n):
            continue
        try:
            if n is None:  # (an entry's first count whose `+1` never landed: the counter made with its fields)
                update, creatable = _inc_update(cid, None, truth)
                if not creatable:
                    continue
                done = db.inbox_counters.update_one({"_id": cid, "n": {"$exists": False}}, update, upsert=True)
                landed = done.upserted_id is not None or done.modified_count == 1
            elif isinstance(n, int):
                landed = db.inbox_counters.update_one({"_id": cid, "n": n}, {"$inc": {"n": truth - n}}).modified_count == 1
            else:  # (NotACount: set, guarded by the value as stored)
                landed = db.inbox_counters.update_one({"_id": cid, "n": n.value}, {"$set": {"n": truth}}).modified_count == 1
        except DuplicateKeyError:  # (made meanwhile by a move: looked at again next round)
            continue
        if landed:
            fixed.append({"counter": cid, "was": n.value if isinstance(n, NotACount) else n or 0, "now": truth})
            seen[cid] = (truth, truth)
    if fixed:
        log.warning("inbox counters set to their recount (a stop between a move and its increments): %s", fixed)
    return seen, fixed


def counters(db: Database, dept: str | None = None) -> dict:
    """Open/closed counts by department, rule, severity and state (+ escalated), summed from the counters."""
    query = {"dept": dept} if dept else {}
    out: dict[str, Any] = {"by_dept": {}, "by_rule": {}, "by_severity": {}, "by_state": {}, "escalated": 0,
                           "total": 0}
    for doc in db.inbox_counters.find(query):
        n = _held(doc)
        if isinstance(n, NotACount):  # (set to its recount by the next reconciliations: `reconcile_counters`)
            log.warning("inbox counter %s holds %r, not a count: left out of the figures", doc.get("_id"), n.value)
            continue
        if n <= 0:
            continue
        out["total"] += n
        for field, group in (("dept", "by_dept"), ("rule_id", "by_rule"), ("severity", "by_severity"),
                             ("state", "by_state")):
            out[group][doc[field]] = out[group].get(doc[field], 0) + n
        if doc.get("escalated"):
            out["escalated"] += n
    return out


# ---- listings -------------------------------------------------------------------------------------------

def list_inbox(db: Database, *, dept: str | None, state: str | None, rule_id: str | None, severity: str | None,
               escalated: bool | None, assignee: str | None, limit: int, offset: int) -> dict:
    query: dict[str, Any] = {"snapshot.known": True}   # not: triage facts held before their finding
    states = {"$in": sorted(OPEN_STATES)} if state == OPEN else state
    for field, value in (("dept", dept), ("snapshot.state", states), ("snapshot.rule_id", rule_id),
                         ("snapshot.severity", severity), ("snapshot.assignee", assignee)):
        if value:
            query[field] = value
    if escalated is not None:
        query["snapshot.escalated"] = bool(escalated)
    cursor = db[INBOX].find(query, {"snapshot": 1}).sort(
        [("snapshot.severity_rank", ASCENDING), ("snapshot.raised_at", ASCENDING), ("_id", ASCENDING)]
    ).skip(offset).limit(limit)
    items = [{k: v for k, v in doc["snapshot"].items() if k != "log"} for doc in cursor]
    return {"items": items, "total": db[INBOX].count_documents(query), "limit": limit, "offset": offset}


def duplicates_of(db: Database, finding_key: str) -> list[str]:
    return sorted(doc["_id"] for doc in db[INBOX].find({"snapshot.merged_into": finding_key}, {"_id": 1}))


def list_cases(db: Database, *, dept: str | None, status: str | None, kind: str | None, limit: int,
               offset: int) -> dict:
    query: dict[str, Any] = {"snapshot.status": status or {"$ne": "unknown"}}   # unknown: facts held before the case
    if dept:
        query["snapshot.depts"] = dept
    if kind:
        query["snapshot.kind"] = kind
    cursor = db[CASES].find(query, {"snapshot": 1, "findings_count": 1}).sort(
        [("snapshot.opened_on", DESCENDING), ("_id", ASCENDING)]).skip(offset).limit(limit)
    items = []
    for doc in cursor:
        snap = doc["snapshot"]
        items.append({k: snap.get(k) for k in ("case_id", "kind", "kind_label", "origin", "title", "opened_on",
                                               "status", "depts", "closed_on")}
                     | {"tracks": [{k: t[k] for k in ("dept", "status", "status_label", "reply_due",
                                                      "rectification_due")}
                                   for t in snap.get("tracks", []) if not dept or t["dept"] == dept],
                        "open_findings": doc.get("findings_count", 0)})
    return {"items": items, "total": db[CASES].count_documents(query), "limit": limit, "offset": offset}


def list_snapshots(db: Database, collection: str, *, query: dict, sort: list[tuple[str, int]], limit: int,
                   offset: int) -> dict:
    """A page of aggregate snapshots (with their open findings count) and the true total."""
    cursor = db[collection].find(query, {"snapshot": 1, "findings_count": 1}).sort(sort).skip(offset).limit(limit)
    items = [{**doc["snapshot"], "open_findings": doc.get("findings_count", 0)} for doc in cursor]
    return {"items": items, "total": db[collection].count_documents(query), "limit": limit, "offset": offset}


def complaints_since(db: Database, since: str) -> list[dict]:
    """Compact rows of complaints received after `since` (ISO date) for the repeated-complaint signal."""
    fields = {f"snapshot.{k}": 1 for k in ("complaint_id", "received_on", "party_id", "officer_id", "dept")}
    return [doc["snapshot"] for doc in db[COMPLAINTS].find({"snapshot.received_on": {"$gt": since}}, fields)]


def snapshots(db: Database, collection: str, query: dict | None = None, fields: tuple[str, ...] = ()) -> list[dict]:
    """Every snapshot of a collection (reports and evaluation read a county's year: small)."""
    projection = {f"snapshot.{f}": 1 for f in fields} if fields else {"snapshot": 1}
    return [doc["snapshot"] for doc in db[collection].find(query or {}, projection) if doc.get("snapshot")]
