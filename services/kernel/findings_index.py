"""Open findings of a service's aggregates, kept beside them: lists and totals read no aggregate.

The findings list (`list_findings`) and the open-findings gauge (`recount_open_findings`) used to
read every aggregate document (11-15 KB each; FerretDB v1 decodes every document of a filtered
find). Now each aggregate collection `<col>` has, kept in step by an `AggregateStore` listener:

- partitions `<col>_findings.<severity>.<dept>.<rule_id>`: one small row per open finding, `_id`
  = `<aggregate id>|<finding key>`, the finding's payload as stored in the aggregate. A row stays
  where it was first written while the finding is open (its evidence and message are replaced in
  place), so a partition reads in the order its findings were raised. A page is
  `find({}).skip(k).limit(n)` on one or a few partitions (FerretDB v1 pushes the limit down).
- counters `<col>_findings_counts`: one document per partition, `{n, severity, dept, rule_id}`,
  `$inc`ed exactly once per change. List totals and the gauge are sums of these few documents.
- locators `<col>_findings_at`: per aggregate with findings, the keys indexed (key -> partition
  and a digest of the row) and a digest of them (`rd`), the aggregate version indexed, a move in
  progress and a short lease.

The list is ordered: most severe first, then department, then rule, then the order raised. Rule
ids belong to one service, so the API merges the lists of several services on (severity,
department, rule) exactly (services/api/service.py).

Exactly once without transactions, as the case list (services/penalty/store.py): under a
per-aggregate lease the move (rows to write, rows to drop, counter deltas, token
`<aggregate>@<version>`) is written into the locator first, then carried out in idempotent
steps: rows replaced/deleted by `_id`; each counter's `$inc` in one write whose filter requires
that the counter has not seen the token and which pushes it; the locator takes the new keys and
version and drops the move and the lease; the counters drop the token (at the end of the unit of
work: services/kernel/sidewrites.py — a token left behind by a crash only takes room, the
locator says the move is done; `check --fix` drops it). Versions only grow, so a
late or redelivered sync changes nothing. A crash leaves a pending move that the next sync of the
aggregate (the redelivered fact: `AggregateStore` calls its listeners with (doc, doc) when nothing
changed), or `python -m services.kernel.findings_index check --fix SERVICE`, carries out.

In a unit of work (a batch) the syncs wait for its end and go together (`sync_many`): the lease
and the move of every aggregate in one bulk of claims conditioned on the rows the previous document
implies (`rd`), then the same steps as bulks; each claimed locator holds its own move, so a crash
is finished by the redelivery as above.

A save whose open findings are equal to those before it writes nothing here. A collection whose
aggregates were stored before this index existed is built once by the service's timer, with the
same syncs (safe beside live saves); until it is built, the list reads the aggregates as before.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import uuid
from typing import Callable, Iterable

from pymongo import DeleteOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.common.findings import SEVERITY_RANK
from services.kernel import leases
from services.kernel.process_memo import ProcessMemo
from services.kernel.mongo import ConcurrencyError, operator_command
from services.kernel.sidewrites import SideWrites, deferred, updates_clean
from services.kernel.sidewrites import chunked as bulk  # (ordered bulks of ≤ 50 operations; the matched or upserted)

LEASE_SECONDS = 30.0
LEASE_WAIT_SECONDS = 20.0
BUILT = "#built"          # marker in the counters collection: the index holds every aggregate
BATCH_MAX = 50            # aggregates per batch, operations per bulk (FerretDB v1 once hung on 100)
SEP = "|"                 # row id = aggregate id | finding key (aggregate ids never contain it)


# (database, collection, aggregate) -> version this process last saw synced (FindingsIndex._know), the
# most recently written: its share of PROCESS_MEMO_MB (kernel/process_memo.py)
LOCATOR_ENTRY_BYTES = 255  # one aggregate's version held (measured: tests/unit/test_process_memo.py)
_known = ProcessMemo("findings_at", share=0.125, entry_bytes=LOCATOR_ENTRY_BYTES)
# The syncs waiting for the end of their unit of work, of every unit of this process: (database,
# collection, aggregate) -> {doc, old, version}. An aggregate two units saved at once (two batches in
# flight) has one entry — the newest document over the oldest `old` — synced by the unit that ends
# first; the other finds it gone. (If that sync fails, its unit's messages are redelivered and their
# listener's check syncs the aggregate at its newest version.) As the case list does (services/
# penalty/store.py): without it, the later unit's claim misses and every aggregate of both batches
# is read to find out which.
_waiting: dict[tuple[str, str, str], dict] = {}


def _digest(finding: dict) -> str:
    return hashlib.sha1(json.dumps(finding, sort_keys=True, default=str, ensure_ascii=False)
                        .encode("utf-8")).hexdigest()[:16]


def part_of(finding: dict) -> str:
    """The partition of a finding: `<severity>.<dept>.<rule_id>`."""
    return f"{finding.get('severity') or 'info'}.{finding.get('dept') or '_'}.{finding.get('rule_id') or 'unknown'}"


def row_id(agg_id: str, key: str) -> str:
    return f"{agg_id}{SEP}{key}"


def indexed(doc: dict | None) -> dict | None:
    """What a sync reads of an aggregate document (`_id`, `version`, `findings_open`): a unit of work
    keeps only this of each document waiting for its end, not the facts and snapshot (hundreds of
    aggregates of a batch at once: tens of MB per batch worker in penalty)."""
    if doc is None:
        return None
    return {"_id": doc["_id"], "version": doc.get("version"), "findings_open": doc.get("findings_open")}


def wanted(doc: dict | None) -> dict[str, tuple[str, str, dict]]:
    """key -> (partition, digest, finding) of an aggregate document's open findings."""
    return {key: (part_of(f), _digest(f), f) for key, f in ((doc or {}).get("findings_open") or {}).items()}


def locator_rows(want: dict[str, tuple[str, str, dict]]) -> list[dict]:
    """What a locator keeps of the rows indexed: a list of small objects (finding keys may hold dots;
    FerretDB v1 stores no nested arrays)."""
    return [{"k": key, "p": part, "d": dg} for key, (part, dg, _) in sorted(want.items())]


def rows_digest(rows: list[dict]) -> str:
    """The locator's `rd`: a digest of its rows, the condition a batch's claim compares with what the
    aggregate's previous document implies (no read)."""
    return hashlib.blake2b(json.dumps(rows, sort_keys=True).encode(), digest_size=12).hexdigest()


def plan(agg_id: str, version: int, have: dict[str, list], want: dict[str, tuple[str, str, dict]]) -> dict:
    """The move from the rows `have` (key -> [partition, digest]) to `want`: the pending move a sync
    records before carrying it out (token, version, rows, rd, put, drop, counter deltas)."""
    put = [{"p": part, "row": {"_id": row_id(agg_id, key), **f}} for key, (part, dg, f) in want.items()
           if have.get(key) != [part, dg]]
    drop = [{"p": part, "id": row_id(agg_id, key)} for key, (part, _) in have.items()
            if key not in want or want[key][0] != part]
    deltas: dict[str, int] = {}
    for part, _ in have.values():
        deltas[part] = deltas.get(part, 0) - 1
    for part, _, _ in want.values():
        deltas[part] = deltas.get(part, 0) + 1
    rows = locator_rows(want)
    return {"token": f"{agg_id}@{version}", "version": version, "rows": rows, "rd": rows_digest(rows),
            "put": put, "drop": drop, "deltas": [{"p": p, "n": d} for p, d in sorted(deltas.items()) if d]}


class FindingsIndex:
    """The open-findings side collections of one aggregate collection."""

    def __init__(self, col: Collection, writes: Callable[[], SideWrites | None] = lambda: None):
        self.col = col
        self.writes = writes  # the side writes of the unit of work running (None: written at once)
        self.db = col.database
        self.base = f"{col.name}_findings"
        self.at = self.db[f"{self.base}_at"]
        self.counts = self.db[f"{self.base}_counts"]

    def rows(self, part: str) -> Collection:
        return self.db[f"{self.base}.{part}"]

    # ---- keeping it in step ----------------------------------------------------------------------
    def listener(self, old: dict | None, new: dict) -> None:
        """AggregateStore listener: after a save (old, new), or (doc, doc) when nothing was saved. In a
        unit of work the syncs of its saves wait for its end and go together (`sync_many`)."""
        if old is new:  # nothing saved (a redelivery): repair what a crash after the save left undone
            version = int(new.get("version") or 0)
            if _known.get((self.db.name, self.col.name, new["_id"]), -1) >= version:
                return  # this process synced it at this version or later: nothing of it is pending
            loc = self.at.find_one({"_id": new["_id"]}, {"version": 1, "pending": 1, "rd": 1})
            if loc is None and not new.get("findings_open"):
                return
            if loc is not None and not loc.get("pending") and (
                    int(loc.get("version") or 0) >= version
                    or loc.get("rd") == rows_digest(locator_rows(wanted(new)))):  # (in step: later saves kept them)
                self._know(new["_id"], int(loc.get("version") or 0))
                return
            self.sync(new)
            return
        if ((old or {}).get("findings_open") or {}) == (new.get("findings_open") or {}):
            # nothing changed here; a late sync of an earlier version writes these same findings. A new
            # aggregate with no open finding (old None, findings_open {}) writes nothing either: a locator
            # is created by the first save that has a finding to index (`$setOnInsert` in the claim). Until
            # 2026-12-04 None != {} made every new aggregate claim, create and release an empty locator:
            # three operations per new case, officer, handover's case projection …
            return
        unit = self.writes()
        if unit is None:
            self.sync(new, old=old)
            return
        key = (self.db.name, self.col.name, new["_id"])
        unit.part(("findings_index", self.db.name, self.col.name), lambda: self._unit_keys(unit)).add(key)
        entry = _waiting.get(key)
        version = int(new.get("version") or 0)
        if entry is None:
            _waiting[key] = {"doc": indexed(new), "old": indexed(old), "version": version}
            return
        if version >= entry["version"]:
            entry.update(doc=indexed(new), version=version)
        if int((old or {}).get("version") or 0) < int((entry["old"] or {}).get("version") or 0):
            entry["old"] = indexed(old)

    def _unit_keys(self, unit: SideWrites) -> set:
        """The aggregates a unit of work saved; at its end, those still waiting are synced together."""
        keys: set = set()
        unit.after(lambda: self.sync_many([(e["doc"], e["old"]) for e in (_waiting.pop(k, None) for k in keys)
                                           if e is not None]))
        return keys

    def sync(self, doc: dict, old: dict | None | bool = False) -> bool:
        """Bring the rows, counters and locator of one aggregate in step with its saved document
        (idempotent; an older version than the one indexed changes nothing). True when rows changed.
        `old`: the document it was saved over (False: not known), whose findings say which rows the
        locator holds when its `rd` agrees: then the lease and the move are taken in one write."""
        agg_id, version = doc["_id"], int(doc.get("version") or 0)
        if old is not False:
            want = wanted(doc)
            have = {key: [part, dg] for key, (part, dg, _) in wanted(old).items()}
            move = plan(agg_id, version, have, want)
            taken = self._claim_one(agg_id, move, rows_digest(locator_rows(wanted(old))), new=not have)
            if taken is not None:
                self._carry_out(agg_id, move, taken, release=True)
                return bool(move["put"] or move["drop"])
        loc, lease = self._acquire(agg_id)
        released = False
        try:
            if loc.get("pending"):  # a move a crashed sync left half done
                self._carry_out(agg_id, loc["pending"], lease, release=False)
                loc = {**loc, "rows": loc["pending"]["rows"], "version": loc["pending"]["version"], "pending": None}
            if int(loc.get("version") or 0) >= version:
                return False
            have = {r["k"]: [r["p"], r["d"]] for r in loc.get("rows") or ()}
            pending = plan(agg_id, version, have, wanted(doc))
            if not pending["put"] and not pending["drop"]:
                self._release(agg_id, lease, {"version": version, "rows": pending["rows"], "rd": pending["rd"]})
                released = True
                return False
            self.at.update_one({"_id": agg_id, "lease.token": lease}, {"$set": {"pending": pending}})
            self._carry_out(agg_id, pending, lease, release=True)
            released = True
            return True
        finally:
            if not released:
                self._release(agg_id, lease, {})

    def _acquire(self, agg_id: str) -> tuple[dict, str]:
        return leases.acquire(self.at, agg_id, seconds=LEASE_SECONDS, wait_seconds=LEASE_WAIT_SECONDS,
                              what="findings")

    def _release(self, agg_id: str, lease: str, fields: dict) -> None:
        """Write `fields` and drop the lease, if it is still ours (then a version written is known)."""
        done = self.at.update_one({"_id": agg_id, "lease.token": lease}, {"$set": {**fields, "lease": None}})
        if done.matched_count and "version" in fields and fields.get("pending") is None:
            self._know(agg_id, int(fields["version"]))

    def _know(self, agg_id: str, version: int) -> None:
        """This process saw the locator of `agg_id` at `version` with no move pending (a move left
        pending later is one of a newer version: that version's own redelivery carries it out)."""
        slot = (self.db.name, self.col.name, agg_id)
        _known.put(slot, max(_known.get(slot, -1), version))

    def _claim_one(self, agg_id: str, move: dict, rd: str, *, new: bool) -> str | None:
        """The lease and the pending `move` in one write, when the locator holds the rows `rd`, is free,
        has no move pending and indexes an older version (`new`: no rows expected, so a missing locator
        is created); the lease token, or None (the caller takes the slow way)."""
        lease, now = uuid.uuid4().hex, time.time()
        try:
            got = self.at.find_one_and_update(
                {"_id": agg_id, "rd": rd, "pending": None, "version": {"$lt": move["version"]},
                 "$or": [{"lease": None}, {"lease.until": {"$lt": now}}]},
                {"$set": {"lease": {"token": lease, "until": now + LEASE_SECONDS}, "pending": move}},
                upsert=new, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None
        return lease if got is not None else None

    def _count(self, part: str, delta: int, token: str) -> None:
        severity, dept, rule = part.split(".", 2)
        try:
            self.counts.update_one({"_id": part, "tokens": {"$ne": token}},
                                   {"$inc": {"n": delta}, "$push": {"tokens": token},
                                    "$setOnInsert": {"severity": severity, "dept": None if dept == "_" else dept,
                                                     "rule_id": rule}}, upsert=True)
        except DuplicateKeyError:  # the counter holds the token: applied before
            pass

    def _carry_out(self, agg_id: str, pending: dict, lease: str, *, release: bool) -> None:
        """The steps of a pending move, each idempotent (see the module's docstring)."""
        for drop in pending["drop"]:
            self.rows(drop["p"]).delete_one({"_id": drop["id"]})
        for put in pending["put"]:
            self.rows(put["p"]).replace_one({"_id": put["row"]["_id"]}, put["row"], upsert=True)
        for delta in pending["deltas"]:
            self._count(delta["p"], delta["n"], pending["token"])
        done = {"rows": pending["rows"], "rd": rows_digest(pending["rows"]), "version": pending["version"],
                "pending": None}
        if release:
            self._release(agg_id, lease, done)
        else:
            self.at.update_one({"_id": agg_id, "lease.token": lease}, {"$set": done})
        for delta in pending["deltas"]:  # (the move is done: the tokens only take room now)
            deferred(self.writes(), self.counts, UpdateOne({"_id": delta["p"]}, {"$pull": {"tokens": pending["token"]}}))

    # ---- the syncs of one unit of work, together -------------------------------------------------
    def sync_many(self, saves: list[tuple[dict, dict | None]]) -> None:
        """The syncs of the saves (new document, document it was saved over) of one unit of work, at
        its end (before any of its messages is acked), ≤ BATCH_MAX aggregates per batch `T`, each
        step one bulk instead of a few commands per aggregate:
          1. the claims: per aggregate, lease `T` and its pending move (the same self-contained move
             a sync alone records, token `<aggregate>@<version>`) in one conditional write — the
             locator holds the rows the previous document implies (`rd`), is free, has no move
             pending and indexes an older version (a locator expected empty is created first in the
             same bulk, `$setOnInsert`). When the matched count is short, one read per aggregate
             says which were claimed; the others are synced alone (`sync`: waits for the lease,
             carries out what is pending, compares versions);
          2. the rows: one bulk per partition;
          3. the counters: one `$inc` of the net change per partition, guarded by the tokens of the
             moves it counts (`tokens` $nin / $push $each), in one command; counter by counter, each
             move's own guarded `$inc`, if any of them fails (FerretDB v1 stops at the first error);
          4. the locators: rows, version, no move, no lease (one bulk);
          5. the tokens pulled from the counters (deferred: the unit's side writes).
        A crash leaves claimed locators with their moves pending (lease `T` runs out): the next sync
        of such an aggregate (the redelivery: nothing was acked) carries its move out alone, counters
        guarded by its token, exactly as after a crash of a sync alone."""
        if len(saves) == 1:  # one aggregate: the claim alone costs fewer commands
            self.sync(saves[0][0], old=saves[0][1])
            return
        for start in range(0, len(saves), BATCH_MAX):
            for doc in self._claim_and_finish(saves[start:start + BATCH_MAX]):
                self.sync(doc)

    def _claim_and_finish(self, saves: list[tuple[dict, dict | None]]) -> list[dict]:
        """Steps 1-5 for `saves`; the documents to be synced alone (a condition did not hold)."""
        token, start = uuid.uuid4().hex, time.time()
        moves, ops = [], []
        for doc, old in saves:
            agg_id, version = doc["_id"], int(doc.get("version") or 0)
            before = wanted(old)
            have = {key: [part, dg] for key, (part, dg, _) in before.items()}
            move = plan(agg_id, version, have, wanted(doc))
            moves.append((doc, move))
            if not have:
                ops.append(UpdateOne({"_id": agg_id}, {"$setOnInsert": {"version": 0, "pending": None, "lease": None,
                                                                         "rows": [], "rd": rows_digest([])}},
                                     upsert=True))
            ops.append(UpdateOne({"_id": agg_id, "rd": rows_digest(locator_rows(before)), "pending": None,
                                  "version": {"$lt": version}, "$or": [{"lease": None}, {"lease.until": {"$lt": start}}]},
                                 {"$set": {"lease": {"token": token, "until": start + LEASE_SECONDS},
                                           "pending": move}}))
        claimed, alone = moves, []
        if bulk(self.at, ops) < len(ops):  # some condition did not hold: which, one read each
            held = {loc["_id"]: loc for loc in (self.at.find_one({"_id": doc["_id"]}, {"lease": 1})
                                                for doc, _ in moves) if loc is not None}
            claimed = [(doc, m) for doc, m in moves
                       if ((held.get(doc["_id"]) or {}).get("lease") or {}).get("token") == token]
            ours = {doc["_id"] for doc, _ in claimed}
            alone = [doc for doc, _ in moves if doc["_id"] not in ours]
        if not claimed:
            return alone
        if time.time() > start + LEASE_SECONDS / 2:  # (a holder this slow may have lost its leases)
            raise ConcurrencyError(f"findings index batch {token} took over {LEASE_SECONDS / 2:g} s to claim")
        rows: dict[str, list] = {}
        for _, m in claimed:
            for put in m["put"]:
                rows.setdefault(put["p"], []).append(ReplaceOne({"_id": put["row"]["_id"]}, put["row"], upsert=True))
        for _, m in claimed:
            for drop in m["drop"]:
                rows.setdefault(drop["p"], []).append(DeleteOne({"_id": drop["id"]}))
        for part, part_ops in rows.items():
            bulk(self.rows(part), part_ops)
        self._count_net([m for _, m in claimed])
        released = bulk(self.at, [UpdateOne({"_id": doc["_id"], "lease.token": token},
                                  {"$set": {"rows": m["rows"], "rd": m["rd"], "version": m["version"],
                                            "pending": None, "lease": None}}) for doc, m in claimed])
        if released == len(claimed):  # (a lease lost meanwhile: another sync may hold the move)
            for doc, m in claimed:
                self._know(doc["_id"], m["version"])
        pulls: dict[str, list] = {}
        for _, m in claimed:
            for delta in m["deltas"]:
                pulls.setdefault(delta["p"], []).append(m["token"])
        for part, tokens in pulls.items():  # (the moves are done: the tokens only take room now)
            deferred(self.writes(), self.counts, UpdateOne({"_id": part}, {"$pullAll": {"tokens": tokens}}))
        return alone

    def _count_net(self, moves: list[dict]) -> None:
        """Step 3: per partition the net change of `moves`, unless the counter has seen any of their
        tokens, one command; each move's own guarded `$inc` when a write of it failed."""
        net: dict[str, list] = {}
        for m in moves:
            for delta in m["deltas"]:
                entry = net.setdefault(delta["p"], [0, []])
                entry[0] += delta["n"]
                entry[1].append(m["token"])
        updates = []
        for part, (n, tokens) in net.items():
            severity, dept, rule = part.split(".", 2)
            updates.append({"q": {"_id": part, "tokens": {"$nin": tokens}},
                            "u": {"$inc": {"n": n}, "$push": {"tokens": {"$each": tokens}},
                                  "$setOnInsert": {"severity": severity, "dept": None if dept == "_" else dept,
                                                   "rule_id": rule}}, "upsert": True})
        if not updates_clean(self.db, self.counts.name, updates):
            for m in moves:
                for delta in m["deltas"]:
                    self._count(delta["p"], delta["n"], m["token"])

    # ---- reading ---------------------------------------------------------------------------------
    def built(self) -> bool:
        return self.counts.find_one({"_id": BUILT}, {"_id": 1}) is not None

    def counters(self) -> list[dict]:
        """Every non-empty counter: {part, severity, dept, rule_id, n}."""
        return [{"part": c["_id"], "severity": c.get("severity"), "dept": c.get("dept"), "rule_id": c.get("rule_id"),
                 "n": int(c.get("n") or 0)}
                for c in self.counts.find({}, {"tokens": 0}) if c["_id"] != BUILT and int(c.get("n") or 0) > 0]

    def build(self) -> int:
        """Index every aggregate stored before this index existed (a scan; safe beside live saves:
        each aggregate goes through `sync`); then mark the index built. The aggregates synced."""
        synced = 0
        for doc in self.col.find({"findings_count": {"$ne": 0}}, {"findings_open": 1, "version": 1}):
            if doc.get("findings_open"):
                self.sync(doc)
                synced += 1
        self.counts.replace_one({"_id": BUILT}, {"n": 0, "at": time.time()}, upsert=True)
        return synced

    def recount(self) -> dict[str, int]:
        """The true number of rows in each partition (reads every row: an operator's check)."""
        out = {}
        prefix = self.base + "."
        for name in self.db.list_collection_names():
            if name.startswith(prefix):
                n = self.db[name].count_documents({})
                if n:
                    out[name[len(prefix):]] = n
        return out

    def repair(self, *, fix: bool = False) -> dict:
        """Carry out moves crashed syncs left pending, then compare the counters with a recount;
        with `fix`, set the counters that differ and drop stale tokens (for a quiet service)."""
        carried = 0
        for loc in self.at.find({"pending": {"$ne": None}}, {"_id": 1}):
            doc = self.col.find_one({"_id": loc["_id"]}, {"findings_open": 1, "version": 1})
            if doc is not None:
                self.sync({**doc, "version": -1})  # carries out the pending move; nothing new
                carried += 1
        true = self.recount()
        stored = {c["_id"]: (int(c.get("n") or 0), len(c.get("tokens") or ()))
                  for c in self.counts.find({}) if c["_id"] != BUILT}
        wrong = {k: {"counter": stored.get(k, (0, 0))[0], "recount": true.get(k, 0)}
                 for k in set(true) | set(stored) if stored.get(k, (0, 0))[0] != true.get(k, 0)}
        tokens = sum(t for _, t in stored.values())
        if fix:
            for part in set(wrong) | {k for k, (_, t) in stored.items() if t}:
                severity, dept, rule = part.split(".", 2)
                self.counts.replace_one({"_id": part}, {"n": true.get(part, 0), "tokens": [], "severity": severity,
                                                        "dept": None if dept == "_" else dept, "rule_id": rule},
                                        upsert=True)
        return {"collection": self.col.name, "pending_carried_out": carried, "wrong": wrong, "stale_tokens": tokens,
                "fixed": bool(fix)}

    def rebuild(self) -> int:
        """Drop the index and build it again from the aggregates (for a stopped service)."""
        for name in self.db.list_collection_names():
            if name.startswith(self.base + "."):
                self.db.drop_collection(name)
        self.at.drop()
        self.counts.drop()
        return self.build()


def _rank(severity: str | None) -> int:
    return SEVERITY_RANK.get(severity or "", 9)


def order_key(finding: dict) -> tuple:
    """The list's order: most severe first, then department, then rule (then the order raised)."""
    return _rank(finding.get("severity")), finding.get("dept") or "", finding.get("rule_id") or ""


def page(indexes: Iterable[FindingsIndex], *, dept: str | None, rule_id: str | None, severity: str | None,
         limit: int, offset: int) -> tuple[list[dict], int]:
    """One page of the open findings of several aggregate collections and the true total: the
    counters say which partitions hold matching findings and how many; the page reads only those."""
    parts = []
    for i, index in enumerate(indexes):
        for c in index.counters():
            if (dept and c["dept"] != dept) or (rule_id and c["rule_id"] != rule_id) \
                    or (severity and c["severity"] != severity):
                continue
            parts.append((order_key(c), i, c["part"], c["n"], index))
    parts.sort(key=lambda p: p[:3])
    total = sum(p[3] for p in parts)
    items: list[dict] = []
    skip = offset
    for _, _, part, n, index in parts:
        if len(items) >= limit:
            break
        if skip >= n:
            skip -= n
            continue
        cursor = index.rows(part).find({}, {"_id": 0})
        if skip:
            cursor = cursor.skip(skip)
        items.extend(cursor.limit(limit - len(items)))
        skip = 0
    return items, total


def counts_by_rule(indexes: Iterable[FindingsIndex]) -> dict[tuple[str, str], int]:
    """(rule_id, severity) -> open findings, from the counters."""
    out: dict[tuple[str, str], int] = {}
    for index in indexes:
        for c in index.counters():
            key = (c["rule_id"] or "unknown", c["severity"] or "info")
            out[key] = out.get(key, 0) + c["n"]
    return out


@operator_command
def main(argv: list[str] | None = None) -> int:
    """Operators: `python -m services.kernel.findings_index check [--fix] SERVICE` or `rebuild SERVICE`."""
    parser = argparse.ArgumentParser(prog="python -m services.kernel.findings_index",
                                     description="Check or rebuild a service's open-findings index (side collections).")
    parser.add_argument("action", choices=("check", "rebuild"))
    parser.add_argument("service", help="service name, e.g. penalty")
    parser.add_argument("--fix", action="store_true", help="check: set the counters that differ from the recount")
    args = parser.parse_args(argv)
    from services.kernel.manifest import manifest
    from services.kernel.mongo import operator_database

    try:
        declared = manifest(args.service)
    except Exception:
        parser.error(f"unknown service {args.service}")
    db = operator_database(args.service)
    indexes = [FindingsIndex(db[a.collection]) for a in declared.aggregates]
    if args.action == "rebuild":
        print(json.dumps({i.col.name: i.rebuild() for i in indexes}, ensure_ascii=False))
        return 0
    reports = [i.repair(fix=args.fix) for i in indexes]
    print(json.dumps(reports, ensure_ascii=False, indent=2))
    return 1 if any(r["wrong"] for r in reports) and not args.fix else 0


if __name__ == "__main__":
    sys.exit(main())
