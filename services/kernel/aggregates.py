"""Event-sourced aggregate documents with an embedded outbox.

One MongoDB document per aggregate holds: the facts applied (so a redelivered event changes
nothing and out-of-order facts are folded in time order), a snapshot for queries, the open
findings, the next due date, and the outbox of events to be dispatched. All of it is written in
one single-document write with a version check, so "state saved" and "events to send" can never
disagree.

The outbox is not rewritten after the relay (a second whole-document write per fact). Instead a
small marker `<collection>_outbox` {_id: aggregate id, version, at} is written (upsert, `$max`
of the version) *before* every save that carries events and deleted once they are relayed; the
outbox sweep reads the markers, not the aggregates. The events an aggregate's outbox still holds
after their relay are dropped by the next save: from the process's own knowledge (the document
cache below remembers what it relayed), else because no marker is left for the document (the
relay of its version is done). When in doubt they are kept: consumers are idempotent and derived
event ids deterministic, so a second dispatch is harmless, a lost one is not.

A unit of work that saves several aggregates of one kind (a batch of facts: services/kernel/base.py)
writes one *unit marker* for all of them instead (`cover`): {_id: "unit:<token>", ids, at}, in the
same `<collection>_outbox`, before any of its saves. A save it covers (made within UNIT_COVER_SECONDS
of the marker; a later one writes its own) writes no marker of its own and its relay drops none; when
the unit ends and every outbox it saved under the marker has been relayed, the unit marker is dropped
(one delete, in the bulk of the unit's other deletes). A unit marker left by a crash (or a failed
relay) is found by the sweep like any marker once older than IN_FLIGHT: it relays the stored
outboxes of the aggregates it names, sets their due-date entries from the stored documents and notes
their versions; at its next pass it does so for those saved since and drops the marker. So a save it
covers also writes a due date moved earlier at the unit's end (before the marker goes) instead of
at once: after a crash the sweep sets it, later than the save by IN_FLIGHT and a sweep interval. A
stored document read while another unit's marker names it keeps its outbox, as with its own marker.

A bounded process-local cache of the documents this process wrote (`DocCache`) spares the read
of the compare-and-set loop: a decision taken on a cached document is trusted only when its
versioned write succeeds; a stale entry (another writer saved meanwhile) fails that write and is
dropped, and a decision that writes nothing or refuses is checked again on the stored document.
Every writer of an aggregate document outside `update` bumps its `version` (`mark_due`).

The compare-and-set saves that green threads of one process make to one collection at the same
moment (a batch's aggregates are applied concurrently, BATCH_CONCURRENCY) go out together
(`sidewrites.grouped`, `_send_saves`): one bulk of versioned replaces and one of inserts, ≤ MAX_OPS
each (group commit, like the outbox markers' `together`). Each save writes a random token first into
the document's `_w` (the last WRITE_TOKENS saves' tokens, newest first; a token names the version
it saved). When a bulk's count is not the whole bulk's (one of it lost, a new aggregate collided, or
FerretDB v1 answered an error without counts) each writer of that bulk reads its own document's
`version` and `_w`: its token there means it won; absent while fewer than WRITE_TOKENS writes
followed, or while a token of a save at or before its version is still kept, it lost (the usual
retry); otherwise the outcome is unknown and the writer fails (never taken as won). A single save, or
any save without eventlet's monkey patching, goes alone as one insert_one / replace_one.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS
from pymongo import ASCENDING, DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from services.common.findings import Finding, diff_findings
from services.kernel import config
from services.kernel.mongo import ConcurrencyError, by_id
from services.kernel.sidewrites import MAX_OPS, SideWrites, chunked, deferred, grouped, holding, together
from services.kernel.packing import DEFAULT_LAYOUT, Encoded, Layout, decode_parts, unpack_from

log = logging.getLogger("zhifa.aggregates")

NAMESPACE = uuid.UUID("6f1c1e0e-4f6e-4a55-9a53-7a68e9b7c001")
MAX_ATTEMPTS = 20
# a marker whose version was never saved (the writer died between the marker and the save, or its
# write failed) is deleted by the sweep once this old; a writer is never that long between the two
MARKER_GRACE = timedelta(minutes=10)
# the write tokens of an aggregate's last saves kept in its document (`_w`, newest first): a writer
# whose save went out in a group bulk that did not answer for each save finds its own among them
WRITE_TOKENS = 4


def write_token(version: int) -> str:
    """A save's token, `<version>-<48 random bits>`: the version it saves, so a writer whose token is gone
    can tell a save of its version or an older one still kept (it lost) from WRITE_TOKENS saves after it
    (unknown). Documents saved before 2026-12-04 hold bare random integers (no version to read)."""
    return f"{version}-{random.getrandbits(48):012x}"


def _token_version(token: Any) -> int | None:
    """The version a write token saved (None: a token without one)."""
    if isinstance(token, str):
        head, sep, _ = token.partition("-")
        if sep and head.isdigit():
            return int(head)
    return None


def derived_event_id(*parts: str) -> str:
    """Deterministic id for an event caused by another, so re-processing yields the same id."""
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def outbound(type_: str, payload: dict, *, dept: str, source: str, occurred_at: datetime,
             event_id: str) -> dict:
    return {
        "event_id": event_id,
        "type": type_,
        "schema_version": 1,
        "occurred_at": occurred_at.isoformat(),
        "dept": dept,
        "source": source,
        "payload": payload,
    }


def finding_events(cause: str, before: dict[str, dict], after: list[Finding], *, source: str,
                   as_of: datetime, resolutions: dict[str, dict] | None = None) -> tuple[list[dict], dict[str, dict]]:
    """Outbox events for the difference between open findings and a fresh evaluation.

    A finding still open keeps the time it was first raised (`as_of`) but takes the evidence and
    message of the fresh evaluation, so it always describes the subject as it stands now (an
    overdue decision that has since been made no longer says "no decision"). A resolved finding
    carries what the domain says about how it was settled (`resolutions[key]`: evidence merged,
    message replaced), e.g. the late fee of a fine paid late.
    """
    raised, resolved = diff_findings(before, after)
    events = []
    for f in raised:
        events.append(outbound("finding.raised", f.to_payload(), dept=f.dept, source=source,
                               occurred_at=as_of, event_id=derived_event_id(cause, "raised", f.key)))
    for key in resolved:
        old = before[key]
        payload = {**old, "as_of": as_of.isoformat()}
        settled = (resolutions or {}).get(key)
        if settled:
            payload["evidence"] = {**(old.get("evidence") or {}), **settled.get("evidence", {})}
            payload["message"] = settled.get("message") or old.get("message", "")
        events.append(outbound("finding.resolved", payload, dept=old["dept"], source=source,
                               occurred_at=as_of, event_id=derived_event_id(cause, "resolved", key)))
    open_now = {f.key: f.to_payload() for f in after}
    for key, old in before.items():  # first raised then; evidence and message as of now
        if key in open_now:
            open_now[key]["as_of"] = old["as_of"]
    return events, open_now


@dataclass
class Change:
    """What the domain decided for one aggregate: new state document fields and events to send."""

    fields: dict[str, Any]
    events: list[dict] = field(default_factory=list)


Listener = Callable[[dict | None, dict], None]


class DocCache:
    """Process-local LRU of aggregate documents as this process last wrote or read them, kept as
    BSON (a decoded copy per use, so nobody can change a cached document in place; exactly what a
    read would return) and bounded in bytes. A saved document is kept as the very bytes written
    (`put_encoded`: the stored document's BSON and the uncompressed BSON of its packed fields,
    packing.Encoded), so a save encodes it once for the write and the cache. `relayed` remembers
    that the outbox of the cached version was dispatched, so the next save does not carry those
    events again.

    An aggregate another writer saved meanwhile (`contended`: several processes consume its facts)
    is not cached any more (up to CONTENDED_KEYS of them): a stale entry costs a refused write, more
    than the read it saves. A save lost to a green thread of this process (two batches with facts of
    one new officer, a sweep beside a batch) does not count: the cache holds the version that won."""

    CONTENDED_KEYS = 4096

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = self.stale = 0
        # key -> (BSON of the document or of its stored form, BSON of its packed fields or None,
        #         version, relayed)
        self._docs: OrderedDict[tuple[str, str], tuple[bytes, bytes | None, int, bool]] = OrderedDict()
        self._contended: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, key: tuple[str, str], codec_options=DEFAULT_CODEC_OPTIONS) -> dict | None:
        with self._lock:
            entry = self._docs.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._docs.move_to_end(key)
            self.hits += 1
        doc = decode_parts(entry[0], entry[1], codec_options)
        if entry[3]:
            doc["outbox"] = []
        return doc

    def put(self, key: tuple[str, str], doc: dict) -> int:
        """Keep `doc` (unpacked, as read) at its version; the bytes kept (0: not kept)."""
        if not self.max_bytes or key in self._contended:  # (a cache of size 0 keeps nothing)
            return 0
        return self._keep(key, bson.encode(doc), None, doc["version"])

    def put_encoded(self, key: tuple[str, str], encoded: Encoded, version: int) -> None:
        """Keep the document saved as `encoded` (packing.Encoded: the bytes written) at `version`."""
        if not self.max_bytes or key in self._contended:
            return
        self._keep(key, encoded.stored.raw, encoded.inner, version)

    def _keep(self, key: tuple[str, str], data: bytes, inner: bytes | None, version: int) -> int:
        size = len(data) + len(inner or b"")
        with self._lock:
            self._pop(key)
            if size > self.max_bytes // 4:  # one huge aggregate does not flush everything else
                return 0
            self._docs[key] = (data, inner, version, False)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self._pop(next(iter(self._docs)))
        return size

    def version(self, key: tuple[str, str]) -> int | None:
        """The version of the cached document (one this process saved: stored then), None if none."""
        with self._lock:
            entry = self._docs.get(key)
            return None if entry is None else entry[2]

    def relayed(self, key: tuple[str, str], version: int) -> None:
        with self._lock:
            entry = self._docs.get(key)
            if entry is not None and entry[2] == version:
                self._docs[key] = (entry[0], entry[1], version, True)

    def bumped(self, key: tuple[str, str], version: int, due_at: datetime) -> None:
        """The stored document was at `version` and was then given `{$set: {due_at}, $inc: {version: 1}}`
        (AggregateStore.mark_due): the cached one follows it when it is that version (the stored one
        then — or, had another writer saved meanwhile, an older one whose next compare-and-set fails:
        never a wrong document taken as stored), else it is dropped. Only those two fields change; the
        packed fields' BSON is kept as it is."""
        with self._lock:
            entry = self._docs.get(key)
            if entry is None:
                return
            if entry[2] != version:
                self._pop(key)
                return
        doc = bson.decode(entry[0])  # (the plain codec re-encodes every value as it was)
        doc["due_at"] = due_at
        doc["version"] = version + 1
        data = bson.encode(doc)
        with self._lock:
            current = self._docs.get(key)
            if current is not entry:  # (changed meanwhile: relayed, or saved by another green thread before
                # the bump reached the database — a save after it could not have won — so not as stored)
                if current is not None and current[2] <= version + 1:
                    self._pop(key)
                return
            self._docs[key] = (data, entry[1], version + 1, entry[3])
            self.bytes += len(data) - len(entry[0])

    def drop(self, key: tuple[str, str], version: int | None = None) -> None:
        """Forget `key` (only if the cached version is `version`, when given)."""
        with self._lock:
            entry = self._docs.get(key)
            if entry is not None and (version is None or entry[2] == version):
                self._pop(key)

    def contended(self, key: tuple[str, str]) -> None:
        """Another writer saved `key` meanwhile: forget it and do not cache it again."""
        if not self.max_bytes:
            return
        with self._lock:
            if self._pop(key):
                self.stale += 1
            self._contended[key] = None
            self._contended.move_to_end(key)
            while len(self._contended) > self.CONTENDED_KEYS:
                self._contended.popitem(last=False)

    def _pop(self, key) -> bool:
        entry = self._docs.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[0]) + len(entry[1] or b"")
        return entry is not None


_caches: dict[int, DocCache] = {}


def shared_cache(megabytes: Any) -> DocCache | None:
    """The process's document cache of that size (None when the size is 0: no cache)."""
    megabytes = float(megabytes or 0)
    if megabytes <= 0:
        return None
    max_bytes = int(megabytes * 1024 * 1024)
    cache = _caches.get(max_bytes)
    if cache is None:
        cache = _caches.setdefault(max_bytes, DocCache(max_bytes))
    return cache


def _now() -> datetime:
    return datetime.now(timezone.utc)  # infrastructure time (marker age), not the domain's clock


@dataclass(frozen=True)
class _Save:
    """One compare-and-set save: replace the document stored at `expected` (None: insert a new one)."""

    agg_id: str
    expected: int | None
    version: int  # the version saved
    doc: Mapping[str, Any]  # as stored (packed; encoded once, packing.Encoded), holding `token` first in `_w`
    token: Any  # `write_token(version)` (an int in tests written before it)


def _save_alone(collection: Collection, save: _Save) -> bool:
    if save.expected is None:
        try:
            collection.insert_one(save.doc)
        except DuplicateKeyError:  # another writer created it first
            return False
        return True
    res = collection.replace_one({"_id": save.agg_id, "version": save.expected}, save.doc)
    return res.matched_count == 1  # (0: another writer saved first)


def _send_saves(collection: Collection, saves: list[_Save]) -> list:
    """The outcome of each save, sent as one bulk of versioned replaces and one of inserts: True won,
    False lost, None not known from the answer (the writer reads its document), an exception when
    the command carrying it failed (that writer raises it). A single save goes alone (exact answers).

    Of several saves of one aggregate in the group (two batch workers, or threads), only the one with
    the highest expected version is sent (None, an insert, counts lowest); the others are counted lost
    and retry on the stored document: they expect an older version (they can only lose) or the same one
    (they can only lose to it), and sent they would make the bulk's count short for every writer of the
    group. (Sending the first of them instead could make a round with no winner: a stale first loses and
    the current one behind it was never sent.)
    A bulk of replaces answers for each of its saves only when its matched count is the whole bulk's
    (each replace matches at most one document): after a short count, or FerretDB v1's answer without
    counts after an error (pymongo raises KeyError; its unordered update also stops at the first
    error), the bulk's documents are read back in one find and each save's own write token says
    whether it won (`_read_back`); what that cannot tell stays unknown — never taken as won — and its
    writer reads alone. (Two handlers of one service apply facts of one aggregate at once — personnel's
    officer, credential and training queues —, so a lost save is common there, and each writer read its
    document alone: 5% of personnel's CPU in the bench.) A bulk of inserts answers
    for each also when one collided (BulkWriteError: a new aggregate another writer created first),
    if its answer accounts for every insert (`_inserts_answered`)."""
    if len(saves) == 1:
        return [_save_alone(collection, saves[0])]
    sent: dict[str, int] = {}  # agg_id -> the index of its save with the highest expected version
    for i, s in enumerate(saves):
        j = sent.get(s.agg_id)
        if j is None or _expected_order(s) > _expected_order(saves[j]):
            sent[s.agg_id] = i
    out: list = [None if sent[s.agg_id] == i else False for i, s in enumerate(saves)]
    replaces = [i for i, s in enumerate(saves) if s.expected is not None and out[i] is None]
    inserts = [i for i, s in enumerate(saves) if s.expected is None and out[i] is None]
    if len(replaces) + len(inserts) == 1:
        i = (replaces or inserts)[0]
        out[i] = _save_alone(collection, saves[i])
        return out
    for part in (replaces, inserts):
        if not part:
            continue
        try:
            if part is replaces:
                res = collection.bulk_write([ReplaceOne({"_id": saves[i].agg_id, "version": saves[i].expected},
                                                        saves[i].doc) for i in part], ordered=False)
                count = res.matched_count
            else:
                res = collection.bulk_write([InsertOne(saves[i].doc) for i in part], ordered=False)
                count = res.inserted_count
        except BulkWriteError as exc:
            if part is inserts:
                _inserts_answered(exc.details, part, out)
            continue  # (what it does not answer for: each writer reads)
        except KeyError:
            _read_back(collection, saves, part, out)  # unknown from the answer
            continue
        except Exception as exc:  # (a connection error) every save of that command fails
            for i in part:
                out[i] = exc
            continue
        if count == len(part):
            for i in part:
                out[i] = True
        elif part is replaces:
            _read_back(collection, saves, part, out)
    return out


def _read_back(collection: Collection, saves: list[_Save], part: list[int], out: list) -> None:
    """The outcome of each replace of a bulk whose answer did not say which won, from one read of the
    bulk's documents (their `version` and `_w`) instead of one read by each writer (`AggregateStore._save`
    does the same for one): its token among the document's last write tokens won; absent while fewer
    than WRITE_TOKENS saves followed, lost; otherwise left unknown (its writer reads and raises). A
    failed read leaves all unknown."""
    try:
        stored = by_id(collection, [saves[i].agg_id for i in part], {"version": 1, "_w": 1})
    except Exception:
        return
    for i in part:
        out[i] = _told(saves[i], stored.get(saves[i].agg_id))


def _told(save: _Save, stored: dict | None) -> bool | None:
    """Whether `save` won, from its document as read after the save (`version` and `_w`): gone, lost;
    its token among the last write tokens, won; absent while fewer than WRITE_TOKENS writes followed, or
    while a token of a save at or before its version is kept (tokens leave oldest first: had it won, its
    own would still be there), lost; else None (not known).

    The second rule tells the saves that lost to *version bumps* (`mark_due`: `$inc version`, no token):
    penalty makes a case due once per officer or item change it refers to, so a case can move on by
    more than WRITE_TOKENS versions between a save and its read back with no save among them."""
    if stored is None:
        return False
    kept = stored.get("_w") or []
    if save.token in kept:
        return True
    if stored.get("version", 0) - save.version < WRITE_TOKENS:
        return False
    if any(v is not None and v <= save.version for v in map(_token_version, kept)):
        return False
    return None


def _expected_order(save: _Save) -> int:
    return -1 if save.expected is None else save.expected


def _inserts_answered(details: dict, part: list[int], out: list) -> None:
    """The outcome of each insert of a bulk that raised BulkWriteError, when its answer accounts for
    every one (MongoDB's and FerretDB's unordered inserts go on after an error): a duplicate key lost
    (another writer created the aggregate first), another error is raised by its writer, the rest won."""
    errors = {e.get("index"): e for e in details.get("writeErrors") or []}
    if details.get("nInserted", -1) + len(errors) != len(part) or not set(errors) <= set(range(len(part))):
        return
    for k, i in enumerate(part):
        error = errors.get(k)
        if error is None:
            out[i] = True
        elif error.get("code") == 11000:
            out[i] = False
        else:
            out[i] = WriteError(error.get("errmsg", "insert failed"), error.get("code"), error)


UNIT_PREFIX = "unit:"  # the `_id` of a unit marker (module doc)
# a unit's save is covered by its unit marker only this long after the marker was written; later
# ones write their own. The sweep relays a unit marker's aggregates once it is older than the outbox's
# IN_FLIGHT (10 s, kernel/outbox.py; it must stay above this), and again at its next pass, when it drops it
UNIT_COVER_SECONDS = 5.0


def unit_ids(marker: dict) -> list | None:
    """The aggregates a unit marker names; None for an aggregate's own marker."""
    ids = marker.get("ids")
    return ids if isinstance(ids, list) else None


def _swept(marker: dict) -> dict:
    """What earlier sweeps relayed of a unit marker: aggregate id -> version."""
    return {pair.get("id"): pair.get("v") for pair in marker.get("swept") or [] if isinstance(pair, dict)}


class _Cover:
    """The unit marker(s) of one unit of work on one outbox collection: the aggregates they name (and
    until when, on this process's monotonic clock, a save of each is covered), the versions saved with
    events under them, the ones relayed, and the aggregates known to have a marker of their own as
    well (read from storage with one, or saved after the window: its relay still drops that one)."""

    def __init__(self) -> None:
        self.markers: list[str] = []
        self.ids: dict[str, float] = {}
        self.saved: dict[str, int] = {}
        self.relayed: dict[str, int] = {}
        self.own_markers: set[str] = set()

    def covers(self, agg_id: str) -> bool:
        return time.monotonic() < self.ids.get(agg_id, 0.0)

    def done(self) -> bool:
        """Whether every outbox saved under the marker(s) has been relayed."""
        return all(self.relayed.get(agg_id, -1) >= version for agg_id, version in self.saved.items())


class AggregateStore:
    """Load-modify-save of aggregate documents with optimistic concurrency and an outbox.

    `listeners` are called with (old document or None, new document) after each successful save
    (`update`: facts, batches, commands, deadline sweeps, replays), e.g. to keep a side collection in
    step. When `decide` changes nothing (a redelivered fact, a sweep with nothing due) they are
    called with (document, document): a crash between a save and a listener is repaired by the
    redelivery that follows it, so a listener must be idempotent.

    `cache` spares the read before a write (module doc): by default the process's cache of
    AGGREGATE_CACHE_MB (`shared_cache`); None for none.

    `writes` gives the side writes of the unit of work running (services/kernel/sidewrites.py; the
    service sets it, `EventSourcedService.repository`): the due-date index after a save (the date
    moved later or cleared) and the marker deletes after a relay go there, sent as bulks when the unit
    ends; with no unit (None) they are written at once. What must land before the save (the outbox
    marker, a due date moved earlier) is always written at once.
    """

    writes: Callable[[], SideWrites | None] = staticmethod(lambda: None)
    # the unit of work's set of aggregate keys `prefetch` found absent (the service sets it with
    # `writes`; None outside a unit): their `update` decides as new without reading, as `probably_new` does
    unit_absent: Callable[[], set | None] = staticmethod(lambda: None)

    def __init__(self, collection: Collection, listeners: Iterable[Listener] = (), cache: Any = "process",
                 layout: Layout = DEFAULT_LAYOUT):
        self.col = collection
        self.layout = layout  # which fields are stored packed (the aggregate's declaration; kernel/packing.py)
        self.listeners: list[Listener] = list(listeners)
        chosen = shared_cache(config.checked("AGGREGATE_CACHE_MB")) if cache == "process" else cache
        self.cache: DocCache = chosen if chosen is not None else DocCache(0)  # size 0: keeps nothing
        self._key_prefix = getattr(collection, "full_name", collection.name)
        self._codec = getattr(collection, "codec_options", DEFAULT_CODEC_OPTIONS)

    # (the side collections are made on first use: a store is made per unit of work, and a pymongo
    # Collection costs ~3.5 us to make; many units never touch one of them)
    @cached_property
    def deadlines(self) -> Collection:
        """Small side index {_id, due_at}: the deadline sweep scans it instead of every aggregate
        (FerretDB v1 pushes down only _id lookups, so a filtered find reads whole documents)."""
        return self.col.database[f"{self.col.name}_due"]

    @cached_property
    def outboxes(self) -> Collection:
        """Small markers {_id, version, at} of outboxes saved and not yet relayed (module doc)."""
        return self.col.database[f"{self.col.name}_outbox"]

    @staticmethod
    def ensure_indexes(col: Collection, *extra: str) -> None:
        # (no index on `due_at`: the deadline sweep reads the `_due` side collection, and only this
        # first start's scan below filters on it — an index every write pays for and that FerretDB v1
        # never uses; building it over 244,100 cases took 102.6 s)
        for name in extra:
            col.create_index(name)
        deadlines = col.database[f"{col.name}_due"]
        if deadlines.estimated_document_count() == 0:  # first start on existing data
            for doc in col.find({"due_at": {"$ne": None}}, {"due_at": 1}):
                deadlines.replace_one({"_id": doc["_id"]}, {"due_at": doc["due_at"]}, upsert=True)
        # outboxes saved before the markers existed (a flag on the document): marked once
        if col.database.kernel_migrations.find_one(AggregateStore._markers_done(col)) is None:
            outboxes = col.database[f"{col.name}_outbox"]
            for doc in col.find({"outbox_pending": True}, {"version": 1}):
                outboxes.update_one({"_id": doc["_id"]}, {"$max": {"version": doc["version"]}, "$set": {"at": _now()}},
                                    upsert=True)
            AggregateStore.markers_current(col)

    @staticmethod
    def _markers_done(col: Collection) -> dict:
        return {"_id": f"{col.name}:outbox-markers"}

    @staticmethod
    def markers_current(col: Collection) -> None:
        """Record that `col` holds no outbox saved before the markers, so the first start does not
        scan it for them (a tool filling a database with current documents calls this)."""
        done = AggregateStore._markers_done(col)
        col.database.kernel_migrations.replace_one(done, done, upsert=True)

    def _key(self, agg_id: str) -> tuple[str, str]:
        return (self._key_prefix, agg_id)

    def _set_due(self, agg_id: str, when: datetime | None, *, now: bool = False, earliest: bool = False) -> None:
        """The due-date index entry of `agg_id`: deferred to the end of the unit of work, or, `now`, at
        once — and then also into every unit of this process still holding an entry for it (another
        batch worker's included), after that entry, so an older deferred one cannot win. `earliest`:
        only if earlier than the entry there (a date decided on a guessed new document: `update`)."""
        writes = self.writes()
        if when is None:
            op = DeleteOne({"_id": agg_id})
        elif earliest:
            op = UpdateOne({"_id": agg_id}, {"$min": {"due_at": when}}, upsert=True)
        else:
            op = ReplaceOne({"_id": agg_id}, {"due_at": when}, upsert=True)
        if writes is not None and not now:
            writes.add(self.deadlines, op, key=agg_id)
            return
        together(self.deadlines, op)  # (with the other green threads' at the same moment: one bulk)
        for unit in holding(self.deadlines, agg_id):
            unit.add(self.deadlines, op, key=agg_id)

    def mark_due(self, agg_id: str, when: datetime) -> int:
        """Make an aggregate due at `when` (a projection it depends on changed). The version bump makes
        a save decided before it fail its compare-and-set; the cached document follows the bump
        (`DocCache.bumped`), so the save that follows (the deadline sweep's, the next fact's) needs no read."""
        self._set_due(agg_id, when, now=True)
        return self._bump([agg_id], when)

    def mark_many_due(self, agg_ids: Iterable[str], when: datetime) -> int:
        """`mark_due` of several aggregates, each once, in one bulk per MAX_OPS for the due-date index and
        one for the aggregates: the same writes in the same order per aggregate (its due-date entry at
        once — also into every unit of this process still holding one for it, after that one —, then
        `due_at` and the version bump, which its cached document follows when every bump was applied),
        the entries all before the first bump. The aggregates modified."""
        ids = list(dict.fromkeys(agg_ids))
        if len(ids) <= 1:
            return sum(self.mark_due(agg_id, when) for agg_id in ids)
        entries = [ReplaceOne({"_id": agg_id}, {"due_at": when}, upsert=True) for agg_id in ids]
        chunked(self.deadlines, entries)
        for agg_id, op in zip(ids, entries):
            for unit in holding(self.deadlines, agg_id):
                unit.add(self.deadlines, op, key=agg_id)
        return self._bump(ids, when)

    def _bump(self, ids: list[str], when: datetime) -> int:
        """`due_at` and the version bump on `ids` (ordered bulks of ≤ MAX_OPS; the aggregates modified).
        The cached documents follow the bumps when every one was applied (`DocCache.bumped`; a count
        short of all does not say which missed), else they are dropped, as on an exception (the bumps
        may or may not have been stored)."""
        keys = [self._key(agg_id) for agg_id in ids]
        known = [self.cache.version(key) for key in keys]
        bump = {"$set": {"due_at": when}, "$inc": {"version": 1}}
        try:
            if len(ids) == 1:
                modified = self.col.update_one({"_id": ids[0]}, bump).modified_count
            else:
                bumps = [UpdateOne({"_id": agg_id}, bump) for agg_id in ids]
                modified = sum(self.col.bulk_write(bumps[i:i + MAX_OPS], ordered=True).modified_count
                               for i in range(0, len(bumps), MAX_OPS))
        except BaseException:
            for key in keys:
                self.cache.drop(key)
            raise
        for key, version in zip(keys, known):
            if version is not None and modified == len(ids):
                self.cache.bumped(key, version, when)
            else:
                self.cache.drop(key)
        return modified

    def get(self, agg_id: str) -> dict | None:
        """The stored document (a read, never the cache: queries see what other processes wrote)."""
        return unpack_from(self.col, self.col.find_one({"_id": agg_id}))  # facts packed (kernel/packing.py)

    def _load(self, agg_id: str) -> tuple[dict | None, bool]:
        """(document, whether it came from the cache); a stored outbox already relayed is emptied."""
        doc = self.cache.get(self._key(agg_id), self._codec)
        if doc is not None:
            return doc, True
        doc = self.get(agg_id)
        if doc is not None:
            self._drop_relayed_outboxes({agg_id: doc})
        return doc, False

    def _drop_relayed_outboxes(self, docs: dict[str, dict]) -> None:
        """Empty the stored outboxes of `docs` (as read) whose relay is done: no marker left for them
        (one find of the markers of those that hold events)."""
        with_outbox = [agg_id for agg_id, doc in docs.items() if doc.get("outbox")]
        if with_outbox:
            marked = self._marked(with_outbox)
            for agg_id in with_outbox:
                if agg_id not in marked:
                    docs[agg_id]["outbox"] = []

    def _marked(self, agg_ids: list[str]) -> set[str]:
        """Which of `agg_ids` a marker names: its own, or another unit's marker (one find; the unit's
        own marker does not count: its saves have not been relayed because they have not happened yet).
        Those with a marker of their own are noted in the unit's cover (their relay drops it)."""
        cover = self._cover()
        own = set(cover.markers) if cover is not None else set()
        wanted = set(agg_ids)
        marked: set[str] = set()
        for found in self._naming(agg_ids):
            named = unit_ids(found)
            if named is not None:
                if found["_id"] not in own:
                    marked.update(wanted.intersection(named))
            elif found["_id"] in wanted:
                marked.add(found["_id"])
                if cover is not None:
                    cover.own_markers.add(found["_id"])
        return marked

    def _naming(self, agg_ids: list[str]) -> list[dict]:
        """The markers ({_id, ids}) that may name any of `agg_ids`: their own, and units' (one find;
        FerretDB v1 scans the markers for it, few while relays keep up)."""
        return list(self.outboxes.find({"$or": [{"_id": {"$in": agg_ids}}, {"ids": {"$in": agg_ids}}]},
                                       {"_id": 1, "ids": 1}))

    def _cover(self) -> _Cover | None:
        writes = self.writes()
        return None if writes is None else writes.kept(("outbox-unit", self._key_prefix))

    def cover(self, agg_ids: Iterable[str]) -> int:
        """Before a unit of work saves these aggregates (a batch's: services/kernel/base.py): one unit
        marker naming all of them, written now (module doc). Their saves in this unit then write no
        marker of their own. Nothing when there is no unit of work, fewer than OUTBOX_UNIT_MARKER_MIN
        aggregates not covered yet (0: never) or the marker could not be written. The aggregates covered."""
        writes = self.writes()
        least = config.checked("OUTBOX_UNIT_MARKER_MIN")
        if writes is None or not least:
            return 0
        key = ("outbox-unit", self._key_prefix)
        known = writes.kept(key)
        ids = [a for a in dict.fromkeys(agg_ids) if known is None or a not in known.ids]
        if len(ids) < least:
            return 0
        marker = f"{UNIT_PREFIX}{uuid.uuid4().hex}"
        until = time.monotonic() + UNIT_COVER_SECONDS
        try:
            self.outboxes.insert_one({"_id": marker, "ids": ids, "at": _now()})
        except Exception:  # (not written: each save writes its own marker, as outside a unit)
            log.info("outbox unit marker on %s not written", self._key_prefix, exc_info=True)
            return 0
        cover = writes.kept(key, _Cover)
        if not cover.markers:
            outboxes = self.outboxes
            writes.last(lambda: self._uncover(writes, outboxes, cover))
        cover.markers.append(marker)
        cover.ids.update((agg_id, until) for agg_id in ids)
        return len(ids)

    @staticmethod
    def _uncover(writes: SideWrites, outboxes: Collection, cover: _Cover) -> None:
        """At the unit's end, after its relays: drop its marker(s) when every outbox saved under them
        was relayed (deferred: in the bulk of the unit's other deletes); else they stay for the sweep.
        (A save made by this round's callbacks is relayed in the next round: checked again after it.)"""
        if cover.done():
            for marker in cover.markers:
                writes.add(outboxes, DeleteOne({"_id": marker}))
        elif writes.pending_after():
            writes.last(lambda: AggregateStore._uncover(writes, outboxes, cover))

    def prefetch(self, agg_ids: Iterable[str]) -> dict[str, dict]:
        """Read into the cache, in one `_id $in` find per ID_IN_CHUNK (and one of their outbox markers),
        the documents of `agg_ids` it does not hold, so the `update`s of a unit of work that follow
        read nothing: a batch's aggregates are applied concurrently, and each read of its own was a
        command of its own. The documents read, by id (as `_load` returns them; absent: none stored).

        At most half the cache is filled so (the rest read as before). A document is cached as read
        only when the cache still holds no version of it afterwards (a
        green thread of this process may have saved a newer one meanwhile: that one stays). A stale
        one is what any read may return: its compare-and-set fails and the next attempt reads. An id
        found absent joins the unit of work's `unit_absent`: its `update` decides as new without a read
        (as `probably_new`); created meanwhile, the insert loses on its key and the next attempt reads."""
        if not self.cache.max_bytes:
            return {}
        wanted = [a for a in dict.fromkeys(agg_ids) if self.cache.version(self._key(a)) is None]
        if not wanted:
            return {}
        read = {agg_id: unpack_from(self.col, stored) for agg_id, stored in by_id(self.col, wanted).items()}
        absent = self.unit_absent()
        if absent is not None:
            absent.update(self._key(agg_id) for agg_id in wanted if agg_id not in read)
        self._drop_relayed_outboxes(read)
        room = self.cache.max_bytes // 2  # (a batch of large documents does not evict what it read first)
        for agg_id, doc in read.items():
            if room > 0 and self.cache.version(self._key(agg_id)) is None:
                room -= self.cache.put(self._key(agg_id), doc)
        return read

    def update(self, agg_id: str, decide: Callable[[dict | None], Change | None],
               probably_new: bool = False) -> tuple[dict | None, list[dict]]:
        """Run `decide` on the current document and save its result atomically; retry on conflict.

        `decide` returns None when nothing changes (e.g. a duplicate fact). Returns the saved
        document and the events to relay (the new ones and any not known to be relayed yet).

        `probably_new` (the fact creates its aggregate, by the adapter's declaration `creating`): with
        no cached document the first attempt decides on None without reading and inserts; an aggregate
        that exists after all makes that insert lose (duplicate key), and the next attempt reads it and
        decides again, as after a lost compare-and-set (nothing of the lost attempt is relayed, notified
        or cached; the key is not marked contended). Its outbox marker, written before the insert, is
        harmless: the sweep relays the stored document's outbox once more (consumers are idempotent).
        An aggregate the unit's `prefetch` found absent is guessed new the same way.
        """
        absent = self.unit_absent()
        guess = probably_new or (absent is not None and self._key(agg_id) in absent)
        for _ in range(MAX_ATTEMPTS):
            guessed = guess and self.cache.version(self._key(agg_id)) is None
            guess = False
            if guessed:
                doc, cached = None, False  # (not read: decided as new, checked by the insert)
            else:
                doc, cached = self._load(agg_id)
            try:
                change = decide(doc)
            except Exception:
                if not (cached or guessed):
                    raise
                self.cache.drop(self._key(agg_id))  # refused on a cached or guessed document: ask again on the stored one
                continue
            if change is None:
                if cached or guessed:
                    self.cache.drop(self._key(agg_id))  # "nothing to do" holds only for the stored document
                    continue
                if doc is not None:
                    self.cache.put(self._key(agg_id), doc)  # (the stored one: the next fact needs no read)
                    self._notify(doc, doc)
                return doc, []  # a leftover outbox (failed relay) is the sweep's job
            new = {**(doc or {}), **change.fields, "_id": agg_id}
            new.pop("outbox_pending", None)  # (a flag of versions before the markers)
            pending = list((doc or {}).get("outbox", [])) + change.events
            new["outbox"] = pending
            new["version"] = 1 if doc is None else doc["version"] + 1
            cover = self._cover()
            covered = cover is not None and cover.covers(agg_id)
            if pending and not covered:  # before the save: a crash after it leaves the marker for the
                # sweep (stored when `together` returns; with the markers of the batch's other saves at
                # that moment). A save the unit's marker covers needs none (module doc).
                together(self.outboxes, UpdateOne({"_id": agg_id}, {"$max": {"version": new["version"]},
                                                                    "$set": {"at": _now()}}, upsert=True))
                if cover is not None:
                    cover.own_markers.add(agg_id)  # (its relay drops it)
            old_due, new_due = (doc or {}).get("due_at"), new.get("due_at")
            indexed = old_due
            if new_due is not None and new_due != old_due and (old_due is None or new_due < old_due):
                # before the write when it moves earlier: a crash can make the sweep early, never late —
                # or, under a unit marker, at the unit's end before the marker is dropped: a crash leaves
                # the marker, and the outbox sweep sets the entry from the stored document (module doc)
                indexed = new_due
                # (guessed new: an aggregate that exists after all keeps its own date when that is earlier)
                self._set_due(agg_id, indexed, now=not covered, earliest=guessed)
            token = write_token(new["version"])
            new["_w"] = [token, *list((doc or {}).get("_w") or [])[:WRITE_TOKENS - 1]]
            encoded = self.layout.encode(new)  # (the bytes written are the bytes cached)
            if not self._save(_Save(agg_id, None if doc is None else doc["version"], new["version"],
                                    encoded.stored, token)):
                if not guessed and not self._cached_newer_than(agg_id, doc):  # (a guessed insert that lost:
                    # the aggregate existed, not a competitor; lost to a green thread of this process: the
                    # cache holds what it saved, the next attempt decides on that)
                    self.cache.contended(self._key(agg_id))  # another writer saved (or created it) first
                continue
            self.cache.put_encoded(self._key(agg_id), encoded, new["version"])
            if covered and pending:
                cover.saved[agg_id] = new["version"]
            if new_due != indexed:  # (an earlier one is indexed already; a later one or none waits for
                # the end of the unit of work: a crash before it makes the sweep early, never late)
                self._set_due(agg_id, new_due)
            self._notify(doc, new)
            return new, pending
        raise ConcurrencyError(f"too many concurrent updates of {agg_id}")

    def _cached_newer_than(self, agg_id: str, doc: dict | None) -> bool:
        """Whether this process's cache holds a newer version than `doc`: another green thread of this
        process saved it (or cached it as read after "nothing to do") meanwhile. The next attempt
        decides on that version; a stale one fails its compare-and-set and is marked contended then."""
        known = self.cache.version(self._key(agg_id))
        return known is not None and (doc is None or known > doc["version"])

    def _save(self, save: "_Save") -> bool:
        """Whether `save` won its compare-and-set; raises when it is not known to have been stored.

        Sent with the saves other green threads of this process make to the same collection at that
        moment (`sidewrites.grouped`, `_send_saves`: one bulk per kind); a writer whose group did not
        answer for each save reads its own document's version and write tokens."""
        known = self.cache.version(self._key(save.agg_id))
        if known is not None and (save.expected is None or known > save.expected):
            return False  # another green thread of this process saved it since (not sent: it would miss)
        outcome = grouped(self.col, save, _send_saves, "save")
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is not None:
            return outcome
        stored = self.col.find_one({"_id": save.agg_id}, {"version": 1, "_w": 1})
        won = _told(save, stored)
        if won is not None:
            return won
        raise ConcurrencyError(f"the save of {save.agg_id} at version {save.version} is not known to have "
                               f"been stored (the document is at {stored.get('version')})")

    def _notify(self, old: dict | None, new: dict) -> None:
        for listener in self.listeners:
            listener(old, new)

    def relayed(self, agg_id: str, version: int) -> None:
        """The outbox saved at `version` was dispatched: drop its marker (unless a later save wrote a
        newer one; at the end of the unit of work) and remember it, so the next save does not carry
        those events again."""
        cover = self._cover()
        if cover is not None and agg_id in cover.saved:
            cover.relayed[agg_id] = max(version, cover.relayed.get(agg_id, -1))
            if agg_id not in cover.own_markers:  # (saved under the unit's marker: no marker of its own)
                self.cache.relayed(self._key(agg_id), version)
                return
        deferred(self.writes(), self.outboxes, DeleteOne({"_id": agg_id, "version": {"$lte": version}}))
        self.cache.relayed(self._key(agg_id), version)

    def waiting(self, limit: int = 200) -> list[dict]:
        """Markers of outboxes saved and not yet relayed: {_id, version, at} of one aggregate, or
        {_id: "unit:…", ids, at} of a unit of work's aggregates (module doc)."""
        return list(self.outboxes.find({}).limit(limit))

    def is_relayed(self, agg_id: str) -> bool:
        """No outbox of this aggregate waits for its relay (tests and tools wait on it)."""
        return not any(found["_id"] == agg_id or agg_id in (unit_ids(found) or ()) for found in self._naming([agg_id]))

    def swept_unit(self, marker: dict) -> tuple[dict[str, int], dict[str, list[dict]]]:
        """For the sweep, of a unit marker's aggregates: the version each is stored at, and the events
        to relay — every stored outbox at the first pass, at the second only those saved since the first
        (a version other than the one the marker's `swept` notes). The due-date entries of those are
        set from the stored documents (deferred to the sweep's unit of work): a save under the marker
        defers an earlier date to its unit's end, which a dead unit never reached."""
        first = "swept" not in marker
        swept = _swept(marker)
        docs = by_id(self.col, [a for a in unit_ids(marker) or [] if isinstance(a, str)],
                     {"outbox": 1, "version": 1, "due_at": 1})
        versions = {agg_id: int(doc.get("version") or 0) for agg_id, doc in docs.items()}
        todo = {}
        for agg_id, doc in docs.items():
            if first or swept.get(agg_id) != versions[agg_id]:
                self._set_due(agg_id, doc.get("due_at"))
                if doc.get("outbox"):
                    todo[agg_id] = list(doc["outbox"])
        return versions, todo

    def settle_unit(self, marker: dict, versions: dict[str, int]) -> None:
        """After the sweep relayed what a unit marker names: at the first pass note the versions read
        (`swept`: [{id, v}], as an aggregate id may hold a dot and FerretDB v1 stores no nested
        arrays), at the second drop the marker (module doc)."""
        if "swept" in marker:
            deferred(self.writes(), self.outboxes, DeleteOne({"_id": marker["_id"]}))
        else:
            deferred(self.writes(), self.outboxes, UpdateOne(
                {"_id": marker["_id"]}, {"$set": {"swept": [{"id": agg_id, "v": v} for agg_id, v in versions.items()]}}))

    def settle(self, marker: dict, doc: dict | None, now: datetime | None = None) -> None:
        """After the sweep relayed the outbox of `doc` (the stored document, None if there is none):
        drop `marker` when that covered it; a marker ahead of the stored version (its save failed or
        its writer died before it) notes which version was relayed, so the next sweeps do not send
        it again, and goes once older than MARKER_GRACE."""
        at = marker.get("at")
        if doc is not None and doc.get("version", 0) >= marker["version"]:
            self.relayed(marker["_id"], doc["version"])
        elif at is not None and (now or _now()) - at > MARKER_GRACE:
            deferred(self.writes(), self.outboxes, DeleteOne({"_id": marker["_id"], "version": marker["version"]}))
        elif doc is not None and marker.get("relayed") != doc["version"]:
            deferred(self.writes(), self.outboxes, UpdateOne({"_id": marker["_id"], "version": marker["version"]},
                                                             {"$set": {"relayed": doc["version"]}}))

    def swept(self, marker: dict) -> tuple[dict | None, list[dict]]:
        """The stored document of `marker` (outbox and version only) and the events the sweep has to
        relay for it (none when an earlier sweep relayed that version already)."""
        doc = self.col.find_one({"_id": marker["_id"]}, {"outbox": 1, "version": 1})
        if doc is None or marker.get("relayed") == doc.get("version"):
            return doc, []
        return doc, list(doc.get("outbox") or [])

    def due(self, as_of: datetime, limit: int = 500) -> list[dict]:
        """The aggregates due at `as_of`, the longest overdue first, at most `limit` (the rest at the next scan).
        Until 2026-12-06 in the database's order: after an outage with more than `limit` due, a case overdue
        for hours could wait several scans behind ones due a moment ago."""
        return list(self.deadlines.find({"due_at": {"$lte": as_of}}, {"_id": 1, "due_at": 1})
                    .sort([("due_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))
