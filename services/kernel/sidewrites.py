"""Side writes deferred to the end of one unit of work and sent then as one bulk per collection.

FerretDB v1 spends 0.38–0.46 ms CPU on a small upsert sent as one command and 0.16–0.26 ms per
operation inside a bulk of 50 (delete_one 0.32 vs 0.10; insert_one 0.26 vs 0.02 per document). A
batch of facts makes many small writes to side collections (due-date index, outbox markers, findings
rows and counters, a service's own indexes); written one command each they cost more than the
aggregate saves. `SideWrites` collects them while a unit of work runs (a batch, one fact, a command,
a sweep, a replay run: `EventSourcedService.memoized()`, services/kernel/base.py) and sends them when
the unit ends, *before* its messages are acked: ordered bulks per collection (≤ MAX_OPS
operations per command, FerretDB once hung on a bulk of 100), collections in the order first used;
then the `after` callbacks in the order added, then the `last` ones. A collection's operations go out
grouped by kind (`by_kind`: inserts, updates, deletes), each document's own in the order added: pymongo
sends an ordered bulk as one command per run of one kind, and a unit's due-date entries set and cleared
in turn went out as up to a dozen commands. If a write fails, the flush
raises and every message of the unit fails (retry / dead letter as any failure): the writes are
idempotent and the redelivery makes them again.

What may be deferred: only a write that is idempotent and whose effect nothing in the same unit reads
back (or where a stale read is harmless). A write that must land *before* something else (the outbox
marker before the save, a due date moved earlier before the save) is made at once. Writes to one
document keep their order inside the buffer; a write made at once to a document the buffer still
holds a write for must also go into the buffer (`holds`), or the older buffered one would win.
"""
from __future__ import annotations

import logging
import weakref
from typing import Any, Callable, Hashable, Iterator

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

log = logging.getLogger("zhifa.sidewrites")

MAX_OPS = 50  # operations per bulk_write command (COMMON rule: keep FerretDB bulks ≤ 50)

_units: "weakref.WeakSet[SideWrites]" = weakref.WeakSet()  # every unit of work of this process


def _name(collection: Collection) -> str:
    return getattr(collection, "full_name", None) or collection.name


# the command each operation travels in (pymongo sends an ordered bulk as one command per run of one kind)
_COMMAND = {InsertOne: 0, UpdateOne: 1, ReplaceOne: 1, UpdateMany: 1, DeleteOne: 2, DeleteMany: 2}
_SINGLE = (UpdateOne, ReplaceOne, DeleteOne)  # (filtered: one document at most)


def _document(op: Any) -> Hashable | None:
    """The one document `op` writes, by `_id` (an insert without one: a document of its own); None when
    it is not known to touch one document alone (a many-document op, an `_id` given by an operator)."""
    if type(op) is InsertOne:
        doc = op._doc
        key = doc.get("_id", object()) if isinstance(doc, dict) else None  # (none: pymongo gives it a new one)
    elif type(op) in _SINGLE:
        filt = op._filter
        key = filt.get("_id") if isinstance(filt, dict) else None
    else:
        return None
    try:
        hash(key)  # (an `_id` given by an operator, a dict, is not one document's)
    except TypeError:
        return None
    return key


def by_kind(ops: list) -> list:
    """`ops` in an order that sends them in the fewest commands with the same outcome: grouped by kind
    (inserts, updates, deletes), each document's own in the order given. Operations on different documents
    commute; one document's that change kind (set, cleared, set again) go out in successive *waves*, each
    wave grouped. An operation not known to touch one document alone (`_document`) stays where it is,
    with everything before it sent before it and everything after it after."""
    out: list = []
    segment: list[tuple[int, int, int, Any]] = []
    last: dict[Hashable, tuple[int, int]] = {}  # document -> (kind, wave) of its last op in the segment

    def close() -> None:
        segment.sort(key=lambda t: t[:3])  # (wave, kind, position)
        out.extend(t[3] for t in segment)
        segment.clear()
        last.clear()

    for i, op in enumerate(ops):
        key = _document(op)
        if key is None:
            close()
            out.append(op)
            continue
        kind = _COMMAND[type(op)]
        seen = last.get(key)
        wave = 0 if seen is None else seen[1] + (seen[0] != kind)
        last[key] = (kind, wave)
        segment.append((wave, kind, i, op))
    close()
    return out


def commands(ops: list, max_ops: int = MAX_OPS) -> Iterator[list]:
    """`by_kind(ops)` cut into what one command carries: runs of one kind, ≤ max_ops each."""
    run: list = []
    for op in by_kind(ops):
        if run and (len(run) >= max_ops or _COMMAND.get(type(op), -1) != _COMMAND.get(type(run[-1]), -2)):
            yield run
            run = []
        run.append(op)
    if run:
        yield run


class SideWrites:
    """Writes to side collections deferred to the end of one unit of work (a batch, one fact, a
    replay run) and sent then as ordered bulks per collection, one command per kind of operation
    (`by_kind`; ≤ 50 operations per command), collections in first-use order; then the `after`
    callbacks in order."""

    def __init__(self, max_ops: int = MAX_OPS):
        self.max_ops = max(1, int(max_ops))
        self._cols: dict[str, tuple[Collection, list]] = {}
        self._keys: set[tuple[str, Hashable]] = set()
        self._sending: set[tuple[str, Hashable]] = set()  # the keys of the flush running (`in_flight`)
        self._after: list[Callable[[], None]] = []
        self._last: list[Callable[[], None]] = []
        self._kept: dict[Hashable, Any] = {}
        self._parts: dict[Hashable, Any] = {}
        self.commands = 0  # bulk_write commands sent (tests and measurements)
        self.ops = 0       # operations sent
        _units.add(self)

    def __len__(self) -> int:
        return sum(len(ops) for _, ops in self._cols.values()) + len(self._after) + len(self._last)

    def add(self, collection: Collection, op: Any, key: Hashable | None = None) -> None:
        """Defer `op` (a pymongo UpdateOne/ReplaceOne/DeleteOne/InsertOne/UpdateMany/DeleteMany) on
        `collection`; `key` (e.g. the document's `_id`) lets `holds` answer for it. An upsert must be
        filtered by `_id` alone (`refuse_fragile`)."""
        refuse_fragile(op)
        name = _name(collection)
        entry = self._cols.get(name)
        if entry is None:
            entry = self._cols[name] = (collection, [])
        entry[1].append(op)
        if key is not None:
            self._keys.add((name, key))

    def holds(self, collection: Collection, key: Hashable) -> bool:
        """Whether a write added with this `key` on `collection` waits for the flush."""
        return (_name(collection), key) in self._keys

    def part(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The unit's own object for `key` (made by `make()` the first time it is asked for in this unit),
        e.g. the events a batch relays together (services/kernel/outbox.py); gone at the flush."""
        if key not in self._parts:
            self._parts[key] = make()
        return self._parts[key]

    def kept(self, key: Hashable, make: Callable[[], Any] | None = None) -> Any:
        """The unit's own object for `key` for the whole unit, its flush included (unlike `part`): made
        by `make()` the first time it is asked for with one; None when never made."""
        if key not in self._kept and make is not None:
            self._kept[key] = make()
        return self._kept.get(key)

    def pending_after(self) -> bool:
        """Whether callbacks wait for the next round of the flush (added by this round's)."""
        return bool(self._after)

    def after(self, fn: Callable[[], None]) -> None:
        """Run `fn` at the flush, after the bulk writes (e.g. a relay that publishes a batch's events)."""
        self._after.append(fn)

    def last(self, fn: Callable[[], None]) -> None:
        """Run `fn` at the flush after the bulk writes and after every `after` callback of the same round
        (e.g. the drop of a unit's outbox marker once its relays are done: kernel/aggregates.py)."""
        self._last.append(fn)

    def flush(self) -> None:
        """Send what was deferred and run the `after` callbacks, then the `last` ones; writes and callbacks
        these add go in a next round. Idempotent, empty after (also when a write fails: then it raises,
        and the callbacks not run yet are dropped with the writes)."""
        try:
            while self._cols or self._after or self._last:
                cols, after = self._cols, self._after + self._last
                self._sending |= self._keys
                self._cols, self._after, self._last, self._keys, self._parts = {}, [], [], set(), {}
                for collection, ops in cols.values():
                    for chunk in commands(ops, self.max_ops):
                        collection.bulk_write(chunk, ordered=True)
                        self.commands += 1
                        self.ops += len(chunk)
                for fn in after:
                    fn()  # (a callback may defer more writes: the loop sends them too)
        finally:
            self._sending = set()
        self._parts = {}

    def in_flight(self, collection: Collection, key: Hashable) -> bool:
        """Whether a write added with this `key` on `collection` waits for the flush or is in the flush
        running (until its last callback returned or a write failed)."""
        return self.holds(collection, key) or (_name(collection), key) in self._sending


def refuse_fragile(op: Any) -> None:
    """Refuse a deferred upsert whose filter holds more than `_id`.

    Such an upsert fails with a duplicate key when the filter misses an existing document (e.g. a
    version condition), and FerretDB v1 then answers the whole bulk without its counts (pymongo raises
    KeyError, not BulkWriteError): the batch would fail on every redelivery until it is dead-lettered.
    A write of that kind belongs at once, where its DuplicateKeyError can be handled."""
    filt = getattr(op, "_filter", None)
    if getattr(op, "_upsert", False) and isinstance(filt, dict) and set(filt) - {"_id"}:
        raise ValueError(f"a deferred upsert must be filtered by _id alone, not {sorted(filt)}: "
                         "write it at once (kernel/sidewrites.py)")


def holding(collection: Collection, key: Hashable) -> Iterator[SideWrites]:
    """The units of work of this process (any worker's) holding a write added with `key` on
    `collection`: a write made at once to that document goes into them too, after what they hold."""
    return (unit for unit in _each_unit() if unit.holds(collection, key))


def in_flight(collection: Collection, key: Hashable) -> bool:
    """Whether a unit of work of this process holds a write added with `key` on `collection` or is sending
    it (`SideWrites.in_flight`): a writer that only needs the write done once, its effect idempotent, can
    leave it to that unit (if the unit fails, the facts it applied come again)."""
    return any(unit.in_flight(collection, key) for unit in _each_unit())


def _each_unit() -> list[SideWrites]:
    for _ in range(3):
        try:
            return list(_units)
        except RuntimeError:  # (a replay's OS thread added a unit meanwhile)
            continue
    return []


def chunked(collection: Collection, ops: list) -> int:
    """Send `ops` now in ordered bulks of ≤ MAX_OPS of one kind each (`commands`); the documents matched
    or upserted."""
    done = 0
    for chunk in commands(ops):
        result = collection.bulk_write(chunk, ordered=True)
        done += result.matched_count + result.upserted_count
    return done


def updates_clean(db: Database, collection: str, updates: list[dict]) -> bool:
    """Send raw `update` statements ({q, u, upsert}) in ordered commands of ≤ MAX_OPS; True when
    every command answered without a write error (a guarded `$inc` whose guard held), False when one
    failed or did not (FerretDB v1 stops at the first error; the caller then applies each alone)."""
    try:
        return all(not db.command("update", collection, updates=updates[i:i + MAX_OPS], ordered=True).get("writeErrors")
                   for i in range(0, len(updates), MAX_OPS))
    except Exception:
        return False


_LEAD = object()  # (the turn to send the next bulk handed to a waiting writer)


def _bulk(collection: Collection, ops: list) -> list:
    collection.bulk_write(ops, ordered=True)
    return [None] * len(ops)


class _Together:
    """The writes green threads of this process wait for on one collection, sent together: the
    writer who finds nobody sending sends what is queued (after letting the others that are ready
    queue theirs) through `send(collection, ops)` — one result per op, each writer gets its own; what
    `send` raises, every writer of that group raises — then hands the turn to the first writer still
    waiting. A sending writer interrupted (a killed green thread) fails the others of its group with
    RuntimeError and still hands the turn on."""

    def __init__(self, send: Callable[[Collection, list], list] = _bulk, max_ops: int = MAX_OPS) -> None:
        self.send = send
        self.max_ops = max_ops
        self.queue: list[list] = []
        self.busy = False
        self.commands = 0  # groups sent (tests and measurements)
        self.ops = 0       # ops sent in them

    def write(self, collection: Collection, op: Any) -> Any:
        """(the group goes through the sending writer's collection object: a client a stopped service
        closed is never used again)"""
        from eventlet import sleep
        from eventlet.event import Event

        mine = [op, Event()]
        self.queue.append(mine)
        if self.busy:
            got = mine[1].wait()  # sent by another writer (or raises what its group raised)
            if got is not _LEAD:
                return got[0]
            mine[1].reset()
        self.busy = True
        batch: list[list] = []
        failure = None
        results: list = []
        try:
            sleep(0)  # the other green threads that are ready queue theirs first
            batch, self.queue = self.queue[:self.max_ops], self.queue[self.max_ops:]
            try:
                results = list(self.send(collection, [entry[0] for entry in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a group of {len(batch)}")
            except Exception as exc:  # each writer fails as its own write would have
                failure = exc
            self.commands += 1
            self.ops += len(batch)
            for entry, result in zip(batch, results or [None] * len(batch)):
                if entry is not mine:
                    if failure is None:
                        entry[1].send((result,))
                    else:
                        entry[1].send_exception(failure)
        except BaseException:  # interrupted (a killed worker): the others in its batch learn it
            for entry in batch:
                if entry is not mine and not entry[1].ready():
                    entry[1].send_exception(RuntimeError("group write interrupted"))
            if mine in self.queue:
                self.queue.remove(mine)
            raise
        finally:
            self.busy = False
            if self.queue:
                self.busy = True
                self.queue[0][1].send(_LEAD)
        if failure is not None:
            raise failure
        return next(result for entry, result in zip(batch, results) if entry is mine)


_grouped: dict[tuple[str, Hashable], _Together] = {}


def patched() -> bool:
    """Whether eventlet's monkey patching is on (green threads: writes can be grouped)."""
    import eventlet.patcher

    return eventlet.patcher.is_monkey_patched("thread")


def together(collection: Collection, op: Any) -> None:
    """Write `op` now — it must be stored before the caller goes on (an outbox marker or an earlier
    due date before the save) — together with what other green threads of this process write to
    `collection` at the same moment: one bulk_write (≤ MAX_OPS) for all of them (group commit; the
    batch's aggregates are saved concurrently, BATCH_CONCURRENCY). Returns once `op` is stored;
    raises what the bulk raised. Without eventlet's monkey patching (a replay on OS threads) the
    write is sent alone."""
    grouped(collection, op, _bulk, "together")


def grouped(collection: Collection, op: Any, send: Callable[[Collection, list], list], kind: Hashable) -> Any:
    """`send(collection, [op])[0]`, but with the ops other green threads of this process give for the
    same `kind` on `collection` at the same moment in one call of `send` (≤ MAX_OPS ops; group
    commit as `together`, each writer gets its own result, e.g. the batch's compare-and-set saves:
    kernel/aggregates.py). Without eventlet's monkey patching `op` is sent alone."""
    if not patched():
        return send(collection, [op])[0]
    key = (_name(collection), kind)
    entry = _grouped.get(key)
    if entry is None:
        entry = _grouped[key] = _Together(send)
    return entry.write(collection, op)


def deferred(writes: "SideWrites | None", collection: Collection, op: Any, key: Hashable | None = None) -> None:
    """Add `op` to `writes`, or execute it at once when there is no unit of work (writes is None)."""
    if writes is None:
        collection.bulk_write([op], ordered=True)
    else:
        writes.add(collection, op, key)
