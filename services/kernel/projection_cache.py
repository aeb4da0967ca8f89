"""A process cache of projections (e.g. penalty's officer and item payloads) across units of work,
kept true by a small change log in the service's database.

A service's rules read projections of other services' data for every aggregate they judge (penalty:
each officer and item a case refers to, one `_id` find each). The unit of work's memo
(services/kernel/memo.py) remembers them for one batch only; across batches they almost never
change, but they may change at any moment, in any process (competing consumers of
`officer.changed`). This cache keeps them across units and learns of every change through the
database, not through messages:

- `record_change(db, kind, key)`: the process that stored a newer projection bumps a counter `n` in
  one document (`projection_changes`, `_id` "epoch") and adds `<kind> <key>` under a new unique
  field of its `ring` in the same write (one `update`, no read: FerretDB v1 ignores `$push`'s
  `$slice`, so a ring of numbered slots needed a read of `n` first and a second write). A reader that
  finds the ring holding over 2 × PROJECTION_CHANGE_SLOTS entries removes all but the newest
  PROJECTION_CHANGE_SLOTS (field names start with the time of the change). A reader knows which
  entries are new since its last look: those whose fields it did not see then; they are all the
  changes in between exactly when their number equals the growth of `n` (otherwise entries it never
  saw were removed, or an older writer overwrote a numbered slot: it drops every entry of that
  database, as when the log was created anew). It is called *after* the projection is stored and
  *before* the aggregates referring to it are made due (the order the proof below needs).
- `ProjectionReader`: one unit of work's reads of one database's projections. Its first read reads
  the epoch document and drops from the cache every key changed since the cache last looked (the
  ring's entries between; when the ring no longer holds them all, or the log was created anew, every
  entry of that database). Keys it then reads from the database go into the cache only when no
  change of that key was seen meanwhile (`generation`, and the keys each later generation saw
  changed; a whole database dropped meanwhile, or more generations than are remembered, count as a
  change of every key): a read that started before a change cannot be cached after the change was
  seen. (Any drop used to stop every read in flight from being cached: with a logged change in most
  batches, the reads of concurrent batches were then read again by the next.)
  A unit whose process read the log at most PROJECTION_LOG_REUSE_MS ago (a first read or an end check,
  of any unit, that found the cache current) starts from the log as read then, without reading it:
  the cache's entries are as new as that read, and what changed since is for its end check, as a
  change during the unit is (one `find` fewer per unit; a unit of one event read the log twice).
- At the unit's end (`finish`, after the unit's side writes, e.g. the reverse index of what each
  aggregate refers to), it reads the epoch once more, then reads again the keys changed in between
  that aggregates saved in the unit had read (every key they read, when the ring lost entries): an
  aggregate whose view of such a key (what its judgement uses of it, `payloads`' `view`) differs
  from the view it was served is returned, and the caller makes it due (the deadline sweep
  re-evaluates it in a unit of its own, which reads afresh). One whose views all equal what is
  stored now was judged on current data: a change it did not use (penalty: its own decision in its
  party's list, logged by the same unit) or a log too short to name the keys no longer makes it due.

Why no stale result survives. Let a projection change: stored (1), logged as the m-th change (2), the
aggregates referring to it made due through the reverse index (3). A unit whose start (its first read
of the log, or the recent read it starts from) comes after (2) drops the key first: every entry it
uses is fresh. A unit whose start comes before (2) may use the old value; then either its end check
comes after (2) — it sees m (or, with the ring short, cannot rule the key out), reads the key again
after (1), and makes due itself the aggregates whose view of it is not the one stored now (those whose
view is were judged on the stored value) — or the end check comes before (2), so the unit's saves and
its reverse-index writes came before (3), which finds them and makes them due. A re-evaluation of a
due aggregate runs in a later unit and reads afresh. Remaining window: from a change until the next
unit of each process starts (one batch; PROJECTION_LOG_REUSE_MS more for a unit that starts from a
recent read), plus one deadline sweep for what was judged in between — the window the due marks of
(3) always had.

A process that logged a change and then read the changed value (penalty: a party's list, read by the
due marks after the log) may `seed` its cache with it: the value is at least as new as its own log
entry, so that entry no longer drops it here; any other entry of that key still does, and reads of
it in flight from before the seed are refused as after a drop.

Bounded (PROJECTION_CACHE_ENTRIES, least recently used first; 0: no cache, every read goes to the
database), counted in `zhifa_projection_cache_total{service, kind, result}` (hit, miss, dropped; and
`unknown`: aggregates an end check had to check against every key they read, because the ring had lost
changes made during the unit — a sign that PROJECTION_CHANGE_SLOTS is small for the rate of changes).
Greenlets share one cache: nothing between a check and an update yields.
"""
from __future__ import annotations

import functools
import logging
import time
import uuid
from collections import OrderedDict, deque
from typing import Any, Callable, Hashable, Iterable, NamedTuple

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel import config

CHANGES = "projection_changes"
EPOCH = "epoch"
_ABSENT = object()
MISSING = object()  # ProjectionCache.get: not cached
_DIFFERED = object()  # ProjectionReader.served: one aggregate was served two different views of a key
REFLECTED_KEPT = 1024  # own log entries whose values were cached after them (ProjectionCache.seed)
RECENT_GENERATIONS = 256  # advances remembered with the keys they saw changed (ProjectionCache.put)
log = logging.getLogger(__name__)


def _whole(value: Any) -> Any:
    """`ProjectionReader.payloads`' default view: the judgement may use all of the value."""
    return value


def _slots() -> int:
    return config.checked("PROJECTION_CHANGE_SLOTS")


def _reuse_seconds() -> float:
    return config.checked("PROJECTION_LOG_REUSE_MS") / 1000.0


def record_change(db: Database, kind: str, key: str) -> None:
    """Log that the projection `kind`/`key` of `db` changed (after storing it, before making what
    refers to it due): one write."""
    record_changes(db, [(kind, key)])


def record_changes(db: Database, changes: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Log several changes (kind, key) of `db` in one write; the ring's fields written -> (kind, key)."""
    changes = list(dict.fromkeys(changes))
    if not changes:
        return {}
    stamp = f"{time.time_ns():016x}"
    fields = {f"{stamp}{uuid.uuid4().hex[:8]}": change for change in changes}
    ring = {f"ring.{field}": f"{kind}\t{key}" for field, (kind, key) in fields.items()}
    for attempt in (1, 2):
        try:
            db[CHANGES].update_one({"_id": EPOCH}, {"$inc": {"n": len(changes)}, "$set": ring,
                                                    "$setOnInsert": {"log": uuid.uuid4().hex}}, upsert=True)
            return fields
        except DuplicateKeyError:  # (created by another writer at the same moment: it exists now)
            if attempt == 2:
                raise
    return fields


class Log(NamedTuple):
    """The change log as one read saw it: its identity, the number of changes, the ring's entries."""
    log: str | None
    n: int
    ring: dict


def _changed_between(before: Log, after: Log, skip: Callable[[str], bool] = lambda field: False
                     ) -> set[tuple[str, str]] | None:
    """The (kind, key) logged between two reads of the log, but for the entries `skip` names; None
    when the later read cannot say (another log, entries removed before they were seen, or not in
    this format)."""
    if not _continues(before, after.log):
        return None
    new = [(field, value) for field, value in after.ring.items() if field not in before.ring]
    if len(new) != after.n - before.n:
        return None
    found = set()
    for field, value in new:
        parts = value.split("\t", 1) if isinstance(value, str) else ()
        if len(parts) != 2:
            return None
        if not skip(field):
            found.add((parts[0], parts[1]))
    return found


def _continues(before: Log, log: str | None) -> bool:
    """Whether a log read now continues the one read `before` (no log then: changes count from 1)."""
    return before.log == log or (before.log is None and before.n == 0)


def _epoch(db: Database) -> Log:
    """The change log as it is now; a ring grown over twice PROJECTION_CHANGE_SLOTS loses its oldest
    entries (this reader removes them: a reader that had not seen them drops its whole cache)."""
    doc = db[CHANGES].find_one({"_id": EPOCH}) or {}
    ring = doc.get("ring") or {}
    slots = _slots()
    if len(ring) > 2 * slots:
        old = sorted(ring)[:len(ring) - slots]
        db[CHANGES].update_one({"_id": EPOCH}, {"$unset": {f"ring.{field}": "" for field in old}})
    return Log(doc.get("log"), int(doc.get("n", 0)), ring)


class ProjectionCache:
    """Projection payloads by (database, kind, key), found or known absent; least recently used
    dropped beyond `max_entries`."""

    def __init__(self, max_entries: int):
        self.max_entries = max(0, int(max_entries))
        self._entries: OrderedDict[tuple[str, str, Hashable], Any] = OrderedDict()
        self._known: dict[str, Log] = {}  # database -> the log as last applied
        self._known_at: dict[str, float] = {}  # database -> when a read that found `_known` current began
        self.generation = 0  # bumped by every advance: a read started before it is cached only if
        # the key is not among those that advance saw changed (`_recent`: generation, database, keys or None: all)
        self._recent: deque[tuple[int, str, frozenset | None]] = deque(maxlen=RECENT_GENERATIONS)
        self._reflected: dict[tuple[str, str], tuple[str, str]] = {}  # (database, ring field) -> change
        # this process logged and cached the value of afterwards (`seed`)
        self.hits = self.misses = self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def advance(self, database: str, seen: Log, read_at: float) -> int:
        """Drop what changed in `database` since the last call (`seen`: the log as read by a read that
        began at `read_at`, time.monotonic()); how many entries were dropped."""
        known = self._known.get(database)
        if known is not None and known.log == seen.log and seen.n <= known.n:
            if seen.n == known.n:  # (the cache was current when this read began)
                self._known_at[database] = max(self._known_at.get(database, read_at), read_at)
            return 0  # nothing new (or a read older than one already applied)
        reflected: set = set()  # changes this process logged and cached the value of afterwards (`seed`)
        changed = _changed_between(known, seen, self._consume_reflected(database, reflected)) \
            if known is not None else None
        if changed is None:
            doomed = [k for k in self._entries if k[0] == database]
        else:
            doomed = [(database, kind, key) for kind, key in changed if (database, kind, key) in self._entries]
        for k in doomed:
            del self._entries[k]
        self._known[database] = seen
        self._known_at[database] = read_at
        self.generation += 1  # (a reflected change still refuses the reads in flight: they may be older)
        self._recent.append((self.generation, database, None if changed is None else frozenset(changed | reflected)))
        self.dropped += len(doomed)
        return len(doomed)

    def current(self, database: str, within: float) -> Log | None:
        """The log as last applied to `database`'s entries when a read that found it current began at
        most `within` seconds ago (the entries are as new as it), else None."""
        at = self._known_at.get(database)
        if at is None or within <= 0 or time.monotonic() - at > within:
            return None
        return self._known.get(database)

    def seed(self, database: str, kind: str, key: Hashable, value: Any, generation: int,
             logged: dict[str, tuple[str, str]]) -> bool:
        """`put` a value this process read (in a look-up that started at `generation`) *after* it
        logged the change of it (`logged`: the ring fields record_changes wrote for it): when cached,
        those log entries no longer drop it here (the next advance skips them); entries of other
        writers still do. True when cached."""
        if not self.max_entries or (generation != self.generation
                                    and self._changed_since(generation, database, kind, key)):
            return False
        self.generation += 1  # (a read of it in flight may have begun before the change: refused)
        self._recent.append((self.generation, database, frozenset({(kind, key)})))
        self.put(database, kind, key, value, self.generation)
        for field, change in logged.items():
            if change == (kind, key):
                self._reflected[(database, field)] = change
        while len(self._reflected) > REFLECTED_KEPT:  # (forgotten: the entry drops the key, as any)
            self._reflected.pop(next(iter(self._reflected)))
        return True

    def _consume_reflected(self, database: str, into: set) -> Callable[[str], bool]:
        """`_changed_between`'s `skip`: a ring field of a change `seed` reflects (collected `into`)."""
        def skip(field: str) -> bool:
            change = self._reflected.pop((database, field), None)
            if change is not None:
                into.add(change)
            return change is not None
        return skip

    def _changed_since(self, generation: int, database: str, kind: str, key: Hashable) -> bool:
        """Whether an advance after `generation` saw `kind`/`key` of `database` changed (or could not
        say: a whole database dropped, or generations no longer remembered)."""
        if not self._recent or self._recent[0][0] > generation + 1:
            return True
        return any(g > generation and db == database and (keys is None or (kind, key) in keys)
                   for g, db, keys in self._recent)

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
        if not self.max_entries or (generation != self.generation and self._changed_since(generation, database, kind, key)):
            return
        self._entries[(database, kind, key)] = _ABSENT if value is None else value
        self._entries.move_to_end((database, kind, key))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


_caches: dict[int, ProjectionCache] = {}


def shared_cache(entries: Any = None) -> ProjectionCache | None:
    """The process's projection cache of that size (PROJECTION_CACHE_ENTRIES by default); None when 0."""
    size = config.checked("PROJECTION_CACHE_ENTRIES") if entries is None else int(entries or 0)
    if size <= 0:
        return None
    return _caches.setdefault(size, ProjectionCache(size))


class ProjectionReader:
    """One unit of work's reads of one database's projections through the process cache, and the end
    check (module doc). `count(kind, result, n)` reports hits, misses and drops (metrics)."""

    def __init__(self, db: Database, cache: ProjectionCache,
                 count: Callable[[str, str, int], None] = lambda kind, result, n: None):
        self.db, self.cache, self.count = db, cache, count
        self.start: Log | None = None  # the log as the first read saw it
        self.used: dict[str, set[tuple[str, Hashable]]] = {}  # aggregate id -> what its judgement read
        self.saved: set[str] = set()
        # (aggregate, kind, key) -> (its view of the value, the view it was served; _DIFFERED when
        # served two different ones), and a loader per kind: the end check reads again what it used
        self.served: dict[tuple[str, str, Hashable], tuple[Callable[[Any], Any], Any]] = {}
        self.loaders: dict[str, Callable[[list], dict]] = {}

    def _begin(self) -> None:
        if self.start is None:
            self.start = self.cache.current(self.db.name, _reuse_seconds()) or self._read_log()

    def _read_log(self) -> Log:
        """The log as it is now, applied to the cache (what changed since drops)."""
        read_at = time.monotonic()
        seen = _epoch(self.db)
        dropped = self.cache.advance(self.db.name, seen, read_at)
        if dropped:
            self.count("any", "dropped", dropped)
        return seen

    def payloads(self, kind: str, keys: Iterable[Hashable], load: Callable[[list], dict],
                 for_aggregate: str | None = None, view: Callable[[Any], Any] = _whole) -> dict:
        """{key: payload} for the `keys` found; `load(missing keys)` reads the ones not cached.
        `for_aggregate`: the aggregate judged on them, checked at the unit's end (`finish`), which
        compares `view(payload)` — what the judgement uses of it (default: all of it; None when absent)
        — with what a fresh read gives then."""
        self._begin()
        keys = list(dict.fromkeys(keys))
        if for_aggregate is not None:
            self.used.setdefault(for_aggregate, set()).update((kind, k) for k in keys)
            self.loaders.setdefault(kind, load)
            found = self._payloads(kind, keys, load)
            for key in keys:
                seen = view(found.get(key))
                before = self.served.get((for_aggregate, kind, key))
                self.served[(for_aggregate, kind, key)] = \
                    (view, seen if before is None or before[1] == seen else _DIFFERED)
            return found
        return self._payloads(kind, keys, load)

    def _payloads(self, kind: str, keys: list, load: Callable[[list], dict]) -> dict:
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
        """The aggregates saved in this unit whose judgement used a projection that changed since the
        unit's first read: make them due. The log names the keys changed meanwhile (all keys read, when
        it lost entries); each saved aggregate that read one of them is checked against a fresh read of
        those keys (`view` of the value, as `payloads` served it), so one whose judgement used what is
        stored now is not made due — a change it did not use (its own decision in its party's list),
        or a log too short to say."""
        if self.start is None or not self.saved:
            return []
        seen = self._read_log()
        if (seen.log, seen.n) == (self.start.log, self.start.n):
            return []
        changed = _changed_between(self.start, seen)
        suspects = {agg: keys if changed is None else keys & changed
                    for agg in self.saved if (keys := self.used.get(agg))}
        suspects = {agg: keys for agg, keys in suspects.items() if keys}
        if changed is None and suspects:  # the ring lost changes made during the unit (PROJECTION_CHANGE_SLOTS
            # small for the rate of changes): every saved aggregate that read any projection is checked
            self.count("any", "unknown", len(suspects))
        return sorted(self._still_used(suspects)) if suspects else []

    def _still_used(self, suspects: dict[str, set[tuple[str, Hashable]]]) -> list[str]:
        """The aggregates of `suspects` (aggregate -> keys) whose view of one of those keys, read again
        now (one `load` per kind), differs from the view they were served. All of them when the read
        fails (as when the log could not say)."""
        wanted: dict[str, set] = {}
        for keys in suspects.values():
            for kind, key in keys:
                wanted.setdefault(kind, set()).add(key)
        try:
            now = {kind: self.loaders[kind](list(keys)) for kind, keys in wanted.items()}
        except Exception:  # (a read that failed, or a kind read without a loader: cannot tell)
            log.warning("projection end check: could not read again what was used; the aggregates fall due",
                        exc_info=True)
            return list(suspects)
        due = []
        for agg, keys in suspects.items():
            for kind, key in keys:
                view, seen = self.served.get((agg, kind, key), (None, _DIFFERED))
                if seen is _DIFFERED or view(now[kind].get(key)) != seen:
                    due.append(agg)
                    break
        return due


def projection_reader(db: Database, service: str) -> ProjectionReader | None:
    """A reader for one unit of work of `service` over the process cache, counting into
    `zhifa_projection_cache_total`; None when the cache is off (PROJECTION_CACHE_ENTRIES 0)."""
    cache = shared_cache()
    if cache is None:
        return None
    return ProjectionReader(db, cache, lambda kind, result, n: _counter(service, kind, result).inc(n))


@functools.lru_cache(maxsize=1024)
def _counter(service: str, kind: str, result: str):
    """The `zhifa_projection_cache_total` child of these labels (looked up once: `labels()` takes a
    lock and checks its labels on every call, several times per unit of work)."""
    from services.kernel.metrics import PROJECTION_CACHE

    return PROJECTION_CACHE.labels(service, kind, result)
