"""A process cache of projections (e.g. penalty's officer and item payloads) across units of work,
kept true by a small change log in the service's database.

A service's rules read projections of other services' data for every aggregate they judge (penalty:
each officer and item a case refers to, one `_id` find each). The unit of work's memo
(services/kernel/memo.py) remembers them for one batch only; across batches they almost never
change, but they may change at any moment, in any process (competing consumers of
`officer.changed`). This cache keeps them across units and learns of every change through the
database, not through messages:

- `record_change(db, kind, key)`: the process that stored a newer projection bumps a counter `n` in
  one document (`projection_changes`, `_id` "epoch") and writes `<n> <kind> <key>` into slot
  `n % slots` of a ring in the same document. It is called *after* the projection is stored and
  *before* the aggregates referring to it are made due (the order the proof below needs).
- `ProjectionReader`: one unit of work's reads of one database's projections. Its first read reads
  the epoch document and drops from the cache every key changed since the cache last looked (the
  ring's entries between; when the ring no longer holds them all, or the log was created anew, every
  entry of that database). Keys it then reads from the database go into the cache only when no entry
  was dropped meanwhile (`generation`): a read that started before a change cannot be cached after
  the change was seen.
- At the unit's end (`finish`, after the unit's side writes, e.g. the reverse index of what each
  aggregate refers to), it reads the epoch once more: an aggregate saved in the unit that read a key
  changed in between is returned, and the caller makes it due (the deadline sweep re-evaluates it
  in a unit of its own, which reads afresh).

Why no stale result survives. Let a projection change: stored (1), logged with number m (2), the
aggregates referring to it made due through the reverse index (3). A unit whose first read comes
after (2) drops the key first: every entry it uses is fresh. A unit whose first read comes before
(2) may use the old value; then either its end check comes after (2) — it sees m and makes the
aggregates that read the key due itself — or the end check comes before (2), so the unit's saves and
its reverse-index writes came before (3), which finds them and makes them due. A re-evaluation of a
due aggregate runs in a later unit and reads afresh. Remaining window: from a change until the next
unit of each process starts (one batch), plus one deadline sweep for what was judged in between —
the window the due marks of (3) always had.

Bounded (PROJECTION_CACHE_ENTRIES, least recently used first; 0: no cache, every read goes to the
database), counted in `zhifa_projection_cache_total{service, kind, result}` (hit, miss, dropped).
Greenlets share one cache: nothing between a check and an update yields.
"""
from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterable

from pymongo import ReturnDocument
from pymongo.database import Database

from services.kernel import config

CHANGES = "projection_changes"
EPOCH = "epoch"
_ABSENT = object()
MISSING = object()  # ProjectionCache.get: not cached


def _slots() -> int:
    return max(1, int(config.get("PROJECTION_CHANGE_SLOTS") or 1))


def record_change(db: Database, kind: str, key: str) -> int:
    """Log that the projection `kind`/`key` of `db` changed (after storing it, before making what
    refers to it due); its number in the log."""
    epoch = db[CHANGES].find_one_and_update({"_id": EPOCH}, {"$inc": {"n": 1}, "$setOnInsert": {"log": uuid.uuid4().hex}},
                                            upsert=True, return_document=ReturnDocument.AFTER)
    n = int(epoch["n"])
    db[CHANGES].update_one({"_id": EPOCH}, {"$set": {f"ring.{n % _slots()}": f"{n}\t{kind}\t{key}"}})
    return n


def _changed_between(epoch: dict, since: int, upto: int) -> set[tuple[str, str]] | None:
    """The (kind, key) changed with numbers in (since, upto], from the ring; None when it does not
    hold them all (overwritten, or not written yet)."""
    ring = epoch.get("ring") or {}
    slots = _slots()
    if upto - since > slots:
        return None
    found = set()
    for m in range(since + 1, upto + 1):
        entry = ring.get(str(m % slots))
        parts = entry.split("\t", 2) if isinstance(entry, str) else ()
        if len(parts) != 3 or parts[0] != str(m):
            return None
        found.add((parts[1], parts[2]))
    return found


def _continues(before: tuple[str | None, int], log: str | None) -> bool:
    """Whether a log read now continues the one read `before` (no log then: changes count from 1)."""
    return before[0] == log or (before[0] is None and before[1] == 0)


def _epoch(db: Database) -> tuple[str | None, int, dict]:
    doc = db[CHANGES].find_one({"_id": EPOCH}) or {}
    return doc.get("log"), int(doc.get("n", 0)), doc


class ProjectionCache:
    """Projection payloads by (database, kind, key), found or known absent; least recently used
    dropped beyond `max_entries`."""

    def __init__(self, max_entries: int):
        self.max_entries = max(0, int(max_entries))
        self._entries: OrderedDict[tuple[str, str, Hashable], Any] = OrderedDict()
        self._known: dict[str, tuple[str | None, int]] = {}  # database -> (log, n) last applied
        self.generation = 0  # bumped by every drop: a read started before it is not cached
        self.hits = self.misses = self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def advance(self, database: str, log: str | None, n: int, epoch: dict) -> int:
        """Drop what changed in `database` since the last call (the epoch document as read); how
        many entries were dropped."""
        known = self._known.get(database)
        if known is not None and known[0] == log and n <= known[1]:
            return 0  # nothing new (or a read older than one already applied)
        changed = _changed_between(epoch, known[1], n) if known is not None and _continues(known, log) else None
        if changed is None:
            doomed = [k for k in self._entries if k[0] == database]
        else:
            doomed = [(database, kind, key) for kind, key in changed if (database, kind, key) in self._entries]
        for k in doomed:
            del self._entries[k]
        self._known[database] = (log, n)
        self.generation += 1
        self.dropped += len(doomed)
        return len(doomed)

    def get(self, database: str, kind: str, key: Hashable) -> Any:
        """The cached value, None when absent from the database, `MISSING` when not cached."""
        entry = self._entries.get((database, kind, key), MISSING)
        if entry is MISSING:
            self.misses += 1
            return MISSING
        self._entries.move_to_end((database, kind, key))
        self.hits += 1
        return None if entry is _ABSENT else entry

    def put(self, database: str, kind: str, key: Hashable, value: Any, generation: int) -> None:
        """Cache `value` (None: absent) read by a look-up that started at `generation`."""
        if not self.max_entries or generation != self.generation:
            return
        self._entries[(database, kind, key)] = _ABSENT if value is None else value
        self._entries.move_to_end((database, kind, key))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


_caches: dict[int, ProjectionCache] = {}


def shared_cache(entries: Any = None) -> ProjectionCache | None:
    """The process's projection cache of that size (PROJECTION_CACHE_ENTRIES by default); None when 0."""
    size = int(config.get("PROJECTION_CACHE_ENTRIES") if entries is None else entries or 0)
    if size <= 0:
        return None
    return _caches.setdefault(size, ProjectionCache(size))


class ProjectionReader:
    """One unit of work's reads of one database's projections through the process cache, and the end
    check (module doc). `count(kind, result, n)` reports hits, misses and drops (metrics)."""

    def __init__(self, db: Database, cache: ProjectionCache,
                 count: Callable[[str, str, int], None] = lambda kind, result, n: None):
        self.db, self.cache, self.count = db, cache, count
        self.start: tuple[str | None, int] | None = None  # the epoch seen by the first read
        self.used: dict[str, set[tuple[str, Hashable]]] = {}  # aggregate id -> what its judgement read
        self.saved: set[str] = set()

    def _begin(self) -> None:
        if self.start is None:
            log, n, epoch = _epoch(self.db)
            dropped = self.cache.advance(self.db.name, log, n, epoch)
            if dropped:
                self.count("any", "dropped", dropped)
            self.start = (log, n)

    def payloads(self, kind: str, keys: Iterable[Hashable], load: Callable[[list], dict],
                 for_aggregate: str | None = None) -> dict:
        """{key: payload} for the `keys` found; `load(missing keys)` reads the ones not cached."""
        self._begin()
        keys = list(dict.fromkeys(keys))
        if for_aggregate is not None:
            self.used.setdefault(for_aggregate, set()).update((kind, k) for k in keys)
        found: dict = {}
        missing = []
        for key in keys:
            value = self.cache.get(self.db.name, kind, key)
            if value is MISSING:
                missing.append(key)
            elif value is not None:
                found[key] = value
        if len(keys) > len(missing):
            self.count(kind, "hit", len(keys) - len(missing))
        if missing:
            self.count(kind, "miss", len(missing))
            generation = self.cache.generation
            loaded = load(missing)
            for key in missing:
                self.cache.put(self.db.name, kind, key, loaded.get(key), generation)
            found.update((k, v) for k, v in loaded.items() if k in missing)
        return found

    def finish(self) -> list[str]:
        """The aggregates saved in this unit whose judgement read a projection that changed since the
        unit's first read (all of them that read any, when the log cannot say which): make them due."""
        if self.start is None or not self.saved:
            return []
        log, n, epoch = _epoch(self.db)
        dropped = self.cache.advance(self.db.name, log, n, epoch)
        if dropped:
            self.count("any", "dropped", dropped)
        if (log, n) == self.start:
            return []
        changed = _changed_between(epoch, self.start[1], n) if _continues(self.start, log) else None
        return sorted(agg for agg in self.saved if self.used.get(agg)
                      and (changed is None or self.used[agg] & changed))


def projection_reader(db: Database, service: str) -> ProjectionReader | None:
    """A reader for one unit of work of `service` over the process cache, counting into
    `zhifa_projection_cache_total`; None when the cache is off (PROJECTION_CACHE_ENTRIES 0)."""
    cache = shared_cache()
    if cache is None:
        return None
    from services.kernel.metrics import PROJECTION_CACHE

    return ProjectionReader(db, cache, lambda kind, result, n: PROJECTION_CACHE.labels(service, kind, result).inc(n))
