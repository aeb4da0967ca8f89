"""What every event-sourced service shares, generated from its declaration (manifest).

A service class sets `manifest = MANIFEST` and implements `adapter(aggregate, envelope)` (the
DomainAdapter over its pure domain for one declared aggregate). From the manifest it gets:

- its `name`, and one reliable event handler per consumed event pattern that a declared
  aggregate routes (`handle_<first word>`, e.g. `handle_officer` for `officer.*`); a handler the
  class writes itself for the same pattern wins, and patterns no aggregate routes (projections)
  are the service's own;
- `apply(envelope)`: the fact into its aggregate through the kernel's ingest path; a fact the
  domain refuses (DomainError) becomes a PoisonMessage (dead letter + `refused` notice);
- `execute(...)`: one command, decided inside the compare-and-set loop (services/kernel/commands.py);
- `list_findings(dept, rule_id, severity, limit, offset)` over every aggregate, with true totals;
- `get_<aggregate>(id)` (snapshot, open findings, history) unless the class writes its own, and
  `aggregate_doc` / `history` / `open_findings` for the ones it writes;
- metrics, the clock, the event dispatcher, run configuration and per-department settings read
  at start, and one timer that relays stuck outboxes, re-evaluates due aggregates and recounts
  open findings.
"""
from __future__ import annotations

import logging
import math
import sys
import time
import uuid
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

import eventlet
from nameko.events import EventHandler
from nameko.rpc import rpc
from nameko.timer import timer

from services.common.errors import DomainError
from services.common.findings import SEVERITY_RANK
from services.kernel import config, packing, partitions
from services.kernel.aggregates import AggregateStore
from services.kernel.clock import Clock
from services.kernel.commands import CommandRefused, build_envelope, refusal, validate
from services.kernel.findings_index import FindingsIndex, counts_by_rule, order_key
from services.kernel.findings_index import page as findings_page
from services.kernel.eventsourced import HISTORY_KEYS, EventSourcedRepository, stored_fact
from services.kernel.manifest import Aggregate, ServiceManifest, handler_name
from services.kernel.memo import Memo
from services.kernel.messaging import PoisonMessage, batch_event_handler
from services.kernel.metrics import FINDINGS_OPEN, SWEEP_JUDGED, SWEEP_LAG, Metrics
from services.kernel.outbox import EventRelay, relay, sweep
from services.kernel.settings import Conf, Settings
from services.kernel.sidewrites import SideWrites

log = logging.getLogger("zhifa.service")

_last_run: dict[tuple[str, str], float] = {}
MAX_FINDINGS_PAGE = 1000
SWEEP_TICK_SECONDS = 1  # the service timer's interval (`sweep`)


class DueShare:
    """The due aggregates one deadline scan found, judged again a share at each tick of the sweep timer
    instead of all at once: after a burst, or at a moment many deadlines fall on, one scan finds hundreds,
    and judging them in one unit of work held penalty's case batches back for seconds every
    DEADLINE_SWEEP_SECONDS (the latency's tail at 300 events/s: docs/benchmark.md, "Thirty-ninth session").
    A new scan replaces what is left (it finds again whatever is still due). Pure: no I/O, no clock."""

    def __init__(self):
        self.left: deque = deque()
        self.share = 0

    def refill(self, found: list, ticks: int) -> None:
        """What a scan found, to be judged over `ticks` ticks (at least one: `spread_ticks`), an equal share each."""
        self.left = deque(found)
        self.share = math.ceil(len(found) / ticks)

    def take(self) -> list:
        """This tick's share (fewer at the end; [] when nothing is left)."""
        return [self.left.popleft() for _ in range(min(self.share, len(self.left)))]


_due_shares: dict[tuple[str, str], DueShare] = {}


def spread_ticks(spread_seconds: float, interval_seconds: float) -> int:
    """Over how many sweep ticks one scan's due aggregates are judged: DEADLINE_SWEEP_SPREAD_SECONDS, no longer
    than the scans' interval (DEADLINE_SWEEP_SECONDS), at least one tick (0 or 1: all at the scan's tick)."""
    return max(1, int(min(spread_seconds, interval_seconds) // SWEEP_TICK_SECONDS))


def _due(service: str, what: str, every: float) -> bool:
    now = time.monotonic()
    if now - _last_run.get((service, what), 0.0) < every:
        return False
    _last_run[(service, what)] = now
    return True


def _handled(cls) -> set[tuple[str, str]]:
    """(source, event type) of the event handlers the class already has."""
    found = set()
    for attr in dir(cls):
        for ep in getattr(getattr(cls, attr, None), "nameko_entrypoints", ()):
            if isinstance(ep, EventHandler):
                found.add((ep.source_service, ep.event_type))
    return found


def _make_handler(name: str, aggregate: Aggregate, source: str, patterns: tuple[str, ...]) -> Callable:
    def handler(self, envelopes):
        if isinstance(envelopes, list):  # a batch (BATCH_MAX > 1): one outcome per envelope
            return self.apply_batch(envelopes)
        self.apply(envelopes)

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = (f"{', '.join(f'`{p}`' for p in patterns)} facts from {source} into the {aggregate.name} "
                       f"aggregate ({aggregate.description}).")
    return batch_event_handler(source, patterns[0], also=patterns[1:])(handler)


def _make_getter(name: str, aggregate: Aggregate) -> Callable:
    def getter(self, agg_id):
        doc = self.aggregate_doc(aggregate.name, agg_id)
        if doc is None:
            return None
        return {**doc.get("snapshot", {}), "findings": self.open_findings(doc), "history": self.history(doc)}

    getter.__name__ = getter.__qualname__ = name
    getter.__doc__ = (f"One {aggregate.name} ({aggregate.description}): its snapshot, open findings and the facts "
                      "it applied (None when unknown).")
    return rpc(getter)


def bounded(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer RPC argument within bounds; DomainError(invalid_value) naming it otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DomainError(f"参数 {name} 必须是整数", code="invalid_value", field=name) from None
    if not lo <= number <= hi:
        raise DomainError(f"参数 {name} 必须在 {lo} 到 {hi} 之间", code="invalid_value", field=name)
    return number


_counted: dict[str, set] = {}


def recount_open_findings(service: str, repos) -> None:
    """Set zhifa_findings_open{service, rule_id, severity} from the open-findings counters
    (services/kernel/findings_index.py; no aggregate is read). A collection whose index is not built
    yet is built first. A rule with no open finding any more is set to 0 (not left at its last
    value); rule ids are a bounded, declared set."""
    indexes = [FindingsIndex(repo.store.col) for repo in repos]
    for index in indexes:
        if not index.built():
            log.info("building the open-findings index of %s", index.col.name, extra={"service": service})
            index.build()
    counts = counts_by_rule(indexes)
    for key in _counted.get(service, set()) - set(counts):
        FINDINGS_OPEN.labels(service, *key).set(0)
    for key, n in counts.items():
        FINDINGS_OPEN.labels(service, *key).set(n)
    _counted[service] = set(counts) | _counted.get(service, set())


def _concurrently(fn: Callable[[Any], Any], items: list) -> None:
    """`fn` of each item, BATCH_CONCURRENCY at a time (green threads; in order, one by one, when it is 1
    or there is one item): a batch's aggregates, the deadline sweep's due ones. `fn` handles its own
    failures — one that raised would leave the others running past the caller's unit of work."""
    concurrency = config.checked("BATCH_CONCURRENCY")
    if concurrency == 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    pool = eventlet.GreenPool(min(concurrency, len(items)))
    for _ in pool.imap(fn, items):
        pass


class EventSourcedService:
    manifest: ClassVar[ServiceManifest]

    metrics = Metrics()
    clock = Clock()
    dispatch = EventRelay()  # events relayed per unit of work with one wait for the confirms (kernel/outbox.py)
    conf = Conf()
    settings = Settings()
    memo: Memo | None = None  # look-ups remembered for the unit of work running (memoized())
    writes: SideWrites | None = None  # side writes deferred to the end of that unit (kernel/sidewrites.py)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("manifest")
        if declared is None:
            return
        cls.name = declared.name
        handled = _handled(cls)
        for source, patterns in declared.handlers():
            aggregate = declared.aggregate_for(patterns[0])
            name = handler_name(patterns[0])
            if aggregate is None or (source, patterns[0]) in handled or name in cls.__dict__:
                continue
            setattr(cls, name, _make_handler(name, aggregate, source, patterns))
        for aggregate in declared.aggregates:
            name = f"get_{aggregate.name}"
            if not hasattr(cls, name):
                setattr(cls, name, _make_getter(name, aggregate))

    # ---- what a service supplies --------------------------------------------------------------
    def adapter(self, aggregate: Aggregate, envelope: dict | None = None):
        """The DomainAdapter of `aggregate`; `envelope` is the fact being applied (None: sweep/query)."""
        raise TypeError(f"{type(self).__name__} must build the domain adapter of its aggregates")

    def after_save(self, aggregate: Aggregate, doc: dict) -> None:
        """Hook after a fact or command was saved (e.g. side indexes); nothing by default."""

    # ---- aggregates -----------------------------------------------------------------------------
    def aggregate(self, name: str) -> Aggregate:
        return next(a for a in self.manifest.aggregates if a.name == name)

    def store(self, aggregate: Aggregate) -> AggregateStore:
        return AggregateStore(self.db[aggregate.collection], listeners=self.store_listeners(aggregate),
                              layout=aggregate.layout)

    def store_listeners(self, aggregate: Aggregate) -> list:
        """Callables (old document or None, new document) run after each save of `aggregate`
        (AggregateStore): by default the open-findings index (services/kernel/findings_index.py)."""
        return [FindingsIndex(self.db[aggregate.collection], writes=lambda: self.writes).listener]

    def repository(self, aggregate: Aggregate, envelope: dict | None = None) -> EventSourcedRepository:
        store = self.store(aggregate)
        store.writes = lambda: self.writes  # its side writes go to the unit of work running (memoized)
        store.unit_absent = self._unit_absent  # what the unit's prefetch found absent (AggregateStore.prefetch)
        return EventSourcedRepository(store, self.adapter(aggregate, envelope), self.name)

    def _unit_absent(self) -> set | None:
        memo = self.memo
        return None if memo is None else memo.one("kernel.prefetched_absent", None, lambda _: set())

    def repositories(self) -> list[EventSourcedRepository]:
        return [self.repository(a) for a in self.manifest.aggregates]

    def aggregate_doc(self, aggregate: str, agg_id: str) -> dict | None:
        return self.store(self.aggregate(aggregate)).get(agg_id)

    @staticmethod
    def history(doc: dict) -> list[dict]:
        """The facts an aggregate applied, as stored (its full-process record)."""
        return [{k: f.get(k) for k in HISTORY_KEYS} for f in doc.get("facts", [])]

    @staticmethod
    def open_findings(doc: dict) -> list[dict]:
        return sorted(doc.get("findings_open", {}).values(), key=lambda f: f["finding_key"])

    def _relay(self, repo: EventSourcedRepository, doc: dict | None, pending: list[dict]) -> None:
        if doc is not None and pending:
            relay(repo.store, doc["_id"], pending, self.dispatch, self.name, version=doc["version"], writes=self.writes)

    def ingest(self, repo: EventSourcedRepository, envelope: dict) -> dict | None:
        doc, pending = repo.ingest(envelope, self.clock)
        self._relay(repo, doc, pending)
        return doc

    @contextmanager
    def memoized(self) -> Iterator[Memo]:
        """One unit of work (a batch, one fact, a command, a sweep, a replay run): the adapters'
        read-only look-ups (`self.memo`, services/kernel/memo.py) are remembered until it ends, and the
        side writes deferred to it (`self.writes`, services/kernel/sidewrites.py) are sent when it ends
        — before the caller returns, so before any message of the unit is acked. Nested, the outer one
        holds. A failed flush raises from here (the unit's messages fail and are redelivered); when the
        unit itself raised, its writes are still sent (best effort) and its own error is raised."""
        if self.memo is not None:
            yield self.memo
            return
        self.memo, self.writes = Memo(), SideWrites()
        try:
            try:
                yield self.memo
            except BaseException:
                try:
                    self.writes.flush()
                except Exception:
                    log.warning("side writes of a failed unit of work not sent", exc_info=True,
                                extra={"service": getattr(self, "name", "?")})
                raise
            self.writes.flush()
        finally:
            self.memo, self.writes = None, None

    def apply(self, envelope: dict) -> dict | None:
        """One validated fact into the aggregate that routes its type."""
        with self.memoized():
            return self._apply(envelope)

    def _apply(self, envelope: dict) -> dict | None:
        aggregate = self.manifest.aggregate_for(envelope["type"])
        if aggregate is None:
            raise PoisonMessage(f"unsupported_fact: {self.name} 不处理 {envelope['type']} 事实")
        repo = self.repository(aggregate, envelope)
        try:
            doc = self.ingest(repo, envelope)
        except DomainError as exc:  # a fact the domain can never accept: no retry will help
            raise PoisonMessage(f"{exc.code}: {exc}") from exc
        if doc is not None:
            self.after_save(aggregate, doc)
        return doc

    def apply_batch(self, envelopes: list[dict]) -> list:
        """Validated facts of one batch: for each, None (applied) or the exc_info of its failure.

        The facts of one aggregate are applied together: one read, one compare-and-set write, one
        relay and one `after_save` (EventSourcedRepository.ingest_many). When that fails for any
        reason (a refused fact, a conflict, the database), each of its facts is applied on its own
        with `apply`, so a failing fact gets exactly the retry / dead-letter / refusal a single
        message gets, and the others are applied. An adapter built for one incoming fact
        (`one_fact_at_a_time`, e.g. registry's, which checks only the fact it was made for) always
        gets its facts one by one. Aggregates are applied concurrently (BATCH_CONCURRENCY). The
        batch is one unit of work for the adapters' look-ups and the side writes (`memoized`): when
        its side writes fail at the end, every fact of the batch fails (redelivered; they are
        idempotent).
        """
        try:
            with self.memoized():
                return self._apply_batch(envelopes)
        except Exception:
            log.warning("batch of %s facts failed at its end", len(envelopes), exc_info=True,
                        extra={"service": self.name})
            failed = sys.exc_info()
            return [failed] * len(envelopes)

    def _apply_batch(self, envelopes: list[dict]) -> list:
        outcomes: list = [None] * len(envelopes)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, envelope in enumerate(envelopes):
            try:
                aggregate = self.manifest.aggregate_for(envelope["type"])
                adapter = self.adapter(aggregate, envelope) if aggregate is not None else None
                if adapter is None or getattr(adapter, "one_fact_at_a_time", False):
                    key = ("", str(i))  # its own group: `apply` refuses or applies it alone
                else:
                    key = (aggregate.name, adapter.aggregate_id(envelope))
            except Exception:  # whatever broke, the single path says what becomes of it
                key = ("", str(i))
            groups.setdefault(key, []).append(i)

        members: dict[str, list[tuple[str, list[dict]]]] = {}
        for (name, agg_id), indexes in groups.items():
            if name:
                members.setdefault(name, []).append((agg_id, [envelopes[i] for i in indexes]))
        try:
            self.prefetch(members)
        except Exception:  # (only reads: each aggregate then reads what it needs itself)
            log.info("prefetch of a batch failed", exc_info=True, extra={"service": self.name})
        for name, group in members.items():  # one outbox marker for the batch's aggregates of each kind
            self.repository(self.aggregate(name), group[0][1][-1]).store.cover(agg_id for agg_id, _ in group)

        def run(item):
            (name, agg_id), indexes = item
            if name and len(indexes) > 1 and self._apply_group(name, [envelopes[i] for i in indexes]):
                return
            for i in indexes:
                outcomes[i] = self._apply_one(envelopes[i])

        _concurrently(run, list(groups.items()))
        return outcomes

    def _sweep_deadlines(self, repos: list, scan: bool) -> None:
        """The deadline sweep's part of one tick: with `scan` (every DEADLINE_SWEEP_SECONDS), read which
        aggregates fell due; at every tick, judge again this tick's share of them (`DueShare`: spread over
        DEADLINE_SWEEP_SPREAD_SECONDS), as of the tick's moment."""
        if scan:
            now = self.clock()
            lag = 0.0
            ticks = spread_ticks(self.conf.deadline_spread_seconds, self.conf.deadline_sweep_seconds)
            for aggregate, repo in zip(self.manifest.aggregates, repos):
                due_now = repo.store.due(now)
                mine = self._owned(aggregate)
                if mine is not None:
                    due_now = [doc for doc in due_now if mine(doc["_id"])]
                lag = max([lag, *((now - doc["due_at"]).total_seconds() for doc in due_now
                                  if doc.get("due_at") is not None)])
                _due_shares.setdefault((self.name, aggregate.name), DueShare()).refill(due_now, ticks)
            SWEEP_LAG.labels(self.name).set(lag)
        for aggregate, repo in zip(self.manifest.aggregates, repos):
            queued = _due_shares.get((self.name, aggregate.name))
            share = queued.take() if queued is not None else []
            if share:
                self._reevaluate_due(repo, share, self.clock())

    def _owned(self, aggregate) -> Callable[[str], bool] | None:
        """For an aggregate whose id is the service's partition key (`Aggregate.partitioned`) in a process
        of one or some of the service's partitions: whether an aggregate id is one of this process's. Its
        facts come to this process alone (kernel/partitions.py), so its cache holds the document; a sweep
        of every process judged every due case, twice the work, and each other process's save made the
        owner read the case again. None: every due aggregate is this process's to judge."""
        if not aggregate.partitioned:
            return None
        n = partitions.count_for(self.manifest)
        owned = set(partitions.owned_of(self.name, n))
        if n <= 1 or len(owned) == n:
            return None
        return lambda agg_id: partitions.of(agg_id, n) in owned

    def _reevaluate_due(self, repo, due_now: list[dict], now: datetime) -> None:
        """The deadline sweep's aggregates that fell due, judged again at `now` as a batch's are applied:
        their documents read in one find (`prefetch_due`), one outbox marker, BATCH_CONCURRENCY of them at
        a time. One at a time, each read its document and the outbox markers naming it, and waited for
        each of its commands alone: after a burst of facts most of penalty's cases fall due (a projection
        changed, a party's decision, their deadlines) and the sweep took longer than its interval."""
        ids = [doc["_id"] for doc in due_now]
        if not ids:
            return
        repo.store.cover(ids)  # (one outbox marker for those re-evaluated)
        try:
            self.prefetch_due(repo, ids)
        except Exception:  # (only reads: each aggregate then reads its own document)
            log.info("prefetch of the due aggregates failed", exc_info=True, extra={"service": self.name})

        def one(doc: dict) -> None:
            try:
                new, pending = repo.reevaluate(doc["_id"], now)
                self._relay(repo, new, pending)
                due = (new or {}).get("due_at")
                if due != doc.get("due_at") and (new is None or not pending):
                    # an entry no save corrected (nothing to change; a crash or a failed end of a
                    # unit of work left it early, or the aggregate is gone): else read every sweep
                    repo.store._set_due(doc["_id"], due)
            except Exception:  # (its due entry stays: the next sweep judges it again; the others go on,
                # and none is still running when the sweep's unit of work sends its side writes)
                log.warning("deadline sweep: %s not judged again", doc["_id"], exc_info=True,
                            extra={"service": self.name})

        SWEEP_JUDGED.labels(self.name).inc(len(due_now))
        _concurrently(one, due_now)

    def prefetch_due(self, repo, agg_ids: list[str]) -> dict[str, dict]:
        """Before the deadline sweep judges `agg_ids` of `repo` again: their documents, read in one find
        (AggregateStore.prefetch), by id; a service reads ahead more for them (its override)."""
        return repo.store.prefetch(agg_ids)

    def prefetch(self, groups: dict[str, list[tuple[str, list[dict]]]]) -> dict[str, dict[str, dict]]:
        """Before a batch's aggregates are applied (concurrently, each reading its own document): read
        the documents they will read in one find per aggregate kind (AggregateStore.prefetch). `groups`:
        aggregate name -> [(aggregate id, its facts in the batch)]; facts that create their aggregate
        (the adapter's `creating`) are not read for (the store inserts them unread). Returns the
        documents read, name -> id -> document, for a service that reads more for them (its override)."""
        read = {}
        for name, members in groups.items():
            repo = self.repository(self.aggregate(name), members[0][1][-1])
            read[name] = repo.store.prefetch(agg_id for agg_id, envelopes in members if not repo.creates(envelopes))
        return read

    def _apply_group(self, name: str, envelopes: list[dict]) -> bool:
        """Several facts of one aggregate in one write; False when it failed (nothing was written,
        or the relay failed after the write: the one-by-one pass then finds them applied)."""
        aggregate = self.aggregate(name)
        try:
            repo = self.repository(aggregate, envelopes[-1])
            doc, pending = repo.ingest_many(envelopes, self.clock)
            self._relay(repo, doc, pending)
            if doc is not None:
                self.after_save(aggregate, doc)
        except Exception:
            log.info("batch of %s facts for one %s failed; applying them one by one", len(envelopes), name,
                     exc_info=True, extra={"service": self.name})
            return False
        return True

    def _apply_one(self, envelope: dict):
        try:
            self.apply(envelope)
        except Exception:
            return sys.exc_info()
        return None

    # ---- commands -------------------------------------------------------------------------------
    def execute(self, aggregate: str, agg_id: str, decide: Callable[[Any, str], Any], *, dept: str,
                summary: Callable[[dict], Any] | None = None) -> dict:
        """Run one command on one aggregate; {"ok": True, event_id, type[, result]} or {"ok": False, error}.
        The command is one unit of work (`memoized`): its side writes are sent before it answers.

        `decide(folded aggregate or None, event_id)` returns a fact (type, occurred_at, payload[, dept])
        or raises DomainError / CommandRefused. It runs inside the store's compare-and-set loop on
        the current document: if another writer saved first, it runs again on the new state, so
        two racing commands are never both accepted on stale state. The envelope is built by the
        kernel (source "zhifa") and validated against the contract before anything is saved.
        """
        with self.memoized():
            return self._execute(aggregate, agg_id, decide, dept=dept, summary=summary)

    def _execute(self, aggregate: str, agg_id: str, decide: Callable[[Any, str], Any], *, dept: str,
                 summary: Callable[[dict], Any] | None) -> dict:
        spec = self.aggregate(aggregate)
        event_id = str(uuid.uuid4())
        accepted: list[dict] = []

        def build(doc: dict | None) -> dict:
            adapter = self.adapter(spec, None)
            folded = adapter.fold(doc["facts"]) if doc and doc.get("facts") else None
            fact = decide(folded, event_id)
            envelope = build_envelope(fact.type, dict(fact.payload), dept=getattr(fact, "dept", None) or dept,
                                      occurred_at=fact.occurred_at, event_id=event_id)
            validate(envelope)
            accepted[:] = [envelope]
            return envelope

        probe = {"type": None, "event_id": event_id}
        repo = self.repository(spec, probe)
        try:
            doc, pending = repo.command(agg_id, build, self.clock)
        except CommandRefused as exc:
            return refusal(exc.code, exc.field, exc.message, **exc.extra)
        except DomainError as exc:
            return {"ok": False, "error": exc.to_dict()}
        self._relay(repo, doc, pending)
        if doc is not None:
            self.after_save(spec, doc)
        envelope = accepted[0]
        out = {"ok": True, "event_id": envelope["event_id"], "type": envelope["type"]}
        if summary is not None and doc is not None:
            out.update(summary(doc))
        return out

    # ---- queries --------------------------------------------------------------------------------
    @rpc
    def list_findings(self, dept=None, rule_id=None, severity=None, limit=100, offset=0):
        """Open findings of every aggregate of this service with the true total: most severe first, then
        department, then rule, then the order raised (findings_index.order_key).

        Served from the open-findings index (services/kernel/findings_index.py: partitions and
        counters, no aggregate is read); until the index of a collection stored before it existed is
        built (the timer builds it), from the aggregate documents in the same order.

        Filters: dept (the finding's department), rule_id, severity; paging: limit (1–1000), offset.
        """
        try:
            limit = bounded(limit, "limit", 1, MAX_FINDINGS_PAGE)
            offset = bounded(offset, "offset", 0, 1_000_000)
            if severity and severity not in SEVERITY_RANK:
                raise DomainError(f"未知的严重程度 {severity}，可选：{'、'.join(SEVERITY_RANK)}",
                                  code="invalid_value", field="severity")
        except DomainError as exc:
            return {"error": exc.to_dict()}
        indexes = [FindingsIndex(self.db[a.collection]) for a in self.manifest.aggregates]
        if all(index.built() for index in indexes):
            items, total = findings_page(indexes, dept=dept, rule_id=rule_id, severity=severity, limit=limit,
                                         offset=offset)
            return {"items": items, "total": total, "limit": limit, "offset": offset}
        found = []
        for aggregate in self.manifest.aggregates:
            query: dict = {"findings_count": {"$ne": 0}}
            if dept:
                query[aggregate.dept_field] = dept
            for doc in self.db[aggregate.collection].find(query, {"findings_open": 1}):
                found.extend(f for f in (doc.get("findings_open") or {}).values()
                             if (not dept or f.get("dept") == dept) and (not rule_id or f["rule_id"] == rule_id)
                             and (not severity or f["severity"] == severity))
        found.sort(key=order_key)  # stable: within a rule, the order the aggregates are read
        return {"items": found[offset:offset + limit], "total": len(found), "limit": limit, "offset": offset}

    @rpc
    def findings_figures(self, dept=None):
        """Open findings counted per severity x department x rule (`rows`: {severity, dept, rule_id,
        count}) and their total, from the open-findings counters (no finding or aggregate is read;
        before the index of stored aggregates is built, counted from the aggregates)."""
        indexes = [FindingsIndex(self.db[a.collection]) for a in self.manifest.aggregates]
        counts: dict[tuple, int] = {}
        if all(index.built() for index in indexes):
            for index in indexes:
                for c in index.counters():
                    key = (c["severity"], c["dept"], c["rule_id"])
                    counts[key] = counts.get(key, 0) + c["n"]
        else:
            for aggregate in self.manifest.aggregates:
                for doc in self.db[aggregate.collection].find({"findings_count": {"$ne": 0}}, {"findings_open": 1}):
                    for f in (doc.get("findings_open") or {}).values():
                        key = (f.get("severity"), f.get("dept"), f.get("rule_id"))
                        counts[key] = counts.get(key, 0) + 1
        rows = [{"severity": s, "dept": d, "rule_id": r, "count": n} for (s, d, r), n in counts.items()
                if n > 0 and (not dept or d == dept)]
        rows.sort(key=order_key)
        return {"total": sum(r["count"] for r in rows), "rows": rows}

    @rpc
    def fact_status(self, event_id):
        """Whether this service applied (stored in an aggregate) the fact `event_id`, for the gateway's
        `GET /api/v1/events/<event_id>`: {"applied": bool[, "aggregate", "id"]}. A scan of `fact_ids`
        (FerretDB v1 pushes down only `_id` lookups; status questions are rare): in the database, or,
        for an aggregate that packs them (kernel/packing.py), here, over the packed fields (FerretDB
        then decodes a few fields per document instead of all of them)."""
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
            return {"applied": False}
        for aggregate in self.manifest.aggregates:
            col = self.db[aggregate.collection]
            if "fact_ids" in aggregate.packed:
                doc = next((d for d in col.find({}, packing.reading("fact_ids")).batch_size(500)
                            if packing.holds_fact(d, event_id)), None)
            else:
                doc = col.find_one({"fact_ids": event_id}, {"_id": 1})
            if doc is not None:
                return {"applied": True, "aggregate": aggregate.name, "id": doc["_id"]}
        return {"applied": False}

    # ---- timer ----------------------------------------------------------------------------------
    @timer(interval=SWEEP_TICK_SECONDS)
    def sweep(self):
        """Relay outboxes left by a crash; re-evaluate aggregates whose deadlines fell due (one unit
        of work: `memoized`)."""
        with self.memoized():
            self._sweep()

    def _sweep(self):
        repos = self.repositories()
        if _due(self.name, "outbox", self.conf.outbox_sweep_seconds):
            sweep([r.store for r in repos], self.dispatch, self.name, now=self.clock())
        self._sweep_deadlines(repos, _due(self.name, "deadlines", self.conf.deadline_sweep_seconds))
        if _due(self.name, "recount", self.conf.recount_seconds):
            recount_open_findings(self.name, repos)
