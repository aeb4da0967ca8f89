"""Replay (重放): re-run the rules over the facts every aggregate holds, as of a time.

After a rule or a number changes (a department plugin, the jurisdiction preset, a department's
settings), the findings stored in the aggregates were computed by the old rules. `replay` re-folds
each aggregate from the facts it stores and re-evaluates the rules at `as_of` through the kernel's
own path (`EventSourcedRepository.reevaluate`, the deadline sweep's): a finding that now holds is
raised, one that no longer holds is resolved, both as events in the aggregate's outbox, which the
running service's outbox sweep relays. An aggregate whose findings and due date do not change is
not written. Nothing here knows a domain: the service's adapter does the folding and the rules.

`offline(service_cls, db, ...)` builds a service instance outside a nameko container (database,
plugin host, per-department settings: what the adapters read), so a replay can run from a command
line or the bench (services/simulator/bench_replay.py) against a service's database.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any, Callable, Iterable, Mapping

from services.kernel.eventsourced import EventSourcedRepository


@dataclass
class ReplayStats:
    """What one replay did: aggregates re-evaluated, the facts folded for them, and the change."""

    aggregates: int = 0
    facts: int = 0
    written: int = 0      # aggregates whose findings or due date changed (one write each)
    raised: int = 0       # findings open after the replay that were not before
    resolved: int = 0     # findings open before that no longer hold
    seconds: float = 0.0

    @property
    def facts_per_s(self) -> float | None:
        return round(self.facts / self.seconds, 1) if self.seconds > 0 else None

    def add(self, other: "ReplayStats") -> None:
        for name in ("aggregates", "facts", "written", "raised", "resolved", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3), "facts_per_s": self.facts_per_s}


def replay(repo: EventSourcedRepository | Callable[[], EventSourcedRepository], as_of: datetime,
           ids: Iterable[str] | None = None, workers: int = 1) -> ReplayStats:
    """Re-evaluate every aggregate of `repo` (or those in `ids`) at `as_of`; timed from the first read.

    One read per aggregate: the document the re-evaluation reads (an `_id` look-up, the only filter
    FerretDB v1 hands to its backend) is the one counted and compared, and it is written back (one
    compare-and-set) only when its findings or due date change. Without `ids`, the ids come from one
    `_id`-only scan of the collection first. With `workers` > 1 (pass a repository factory: an
    adapter may keep per-evaluation state, so each worker gets its own repository), that many
    aggregates are re-evaluated at once: the database works on one while the rules run on another.
    """
    make = repo if callable(repo) else (lambda: repo)
    first = make()
    stats = ReplayStats()
    started = time.perf_counter()
    wanted = list(dict.fromkeys(ids)) if ids is not None else [d["_id"] for d in first.store.col.find({}, {"_id": 1})]
    workers = max(1, min(int(workers), len(wanted) or 1)) if callable(repo) else 1
    local = threading.local()

    def one(agg_id: str) -> tuple[dict | None, dict | None]:
        replayer = getattr(local, "replayer", None)
        if replayer is None:
            base = first if workers == 1 else make()
            replayer = local.replayer = EventSourcedRepository(_Reading(base.store), base.adapter, base.service)
        new, _ = replayer.reevaluate(agg_id, as_of)
        return replayer.store.first.pop(agg_id, None), new

    if workers == 1:
        results = map(one, wanted)
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replay")
        results = pool.map(one, wanted)
    try:
        for doc, new in results:
            if doc is None:  # not stored (an id of a fact that was refused or not loaded)
                continue
            before = set(doc.get("findings_open") or {})
            after = set((new or {}).get("findings_open") or {})
            stats.aggregates += 1
            stats.facts += len(doc.get("fact_ids") or ())
            stats.written += int(new is not None and new.get("version") != doc.get("version"))
            stats.raised += len(after - before)
            stats.resolved += len(before - after)
    finally:
        if workers > 1:
            pool.shutdown()
    stats.seconds = time.perf_counter() - started
    return stats


class _Reading:
    """The repository's store, remembering the document each aggregate's re-evaluation was decided on
    last (what the replay counts and compares: after a compare-and-set retry — another writer, or a
    stale document from the process's aggregate cache — the current one); everything else is the
    store's own."""

    def __init__(self, store):
        self._store = store
        self.first: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def update(self, agg_id, decide, probably_new=False):
        def remembered(doc):
            if doc is not None:
                self.first[agg_id] = doc
            return decide(doc)
        return self._store.update(agg_id, remembered, probably_new)


def offline(service_cls: type, db, *, host, preset: str, clock: Callable[[], datetime] | None = None,
            dispatch: Callable[[str, dict], None] | None = None) -> Any:
    """An instance of an event-sourced service class with what its adapters read (db, the plugin host,
    per-department settings of `preset`), a clock and, when given, an event dispatcher `(type, payload)`,
    and no container: for a replay from the command line or the bench, or the bench's loading of a
    county year straight through the service's own ingest path (`apply_batch`). Without a dispatcher,
    events a write puts in the outbox stay there for the running service's outbox sweep."""
    from services.kernel.clock import utcnow
    from services.kernel.settings import DeptSettings

    declared = service_cls.manifest
    service = service_cls()
    service.db = db
    service.plugins = host
    service.settings = DeptSettings.of(declared, host, preset) if declared.settings is not None else None
    service.clock = clock or utcnow
    service.dispatch = dispatch or _no_dispatcher
    return service


def _no_dispatcher(event_type: str, payload: dict) -> None:
    raise RuntimeError("offline service without a dispatcher: the running service's outbox sweep relays its events")


def replay_service(service, as_of: datetime, ids: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
                   workers: int = 1) -> dict[str, ReplayStats]:
    """Replay every declared aggregate of a service instance (a container's or `offline`'s): all its
    documents, or only `ids` (one list for every aggregate, or a list per aggregate name; an aggregate
    not named is skipped). The run is one unit of work for the adapters' look-ups (`memoized`):
    nothing a replay does changes a projection, so each officer or item is read once per run, not
    once per aggregate. `workers`: aggregates re-evaluated at once (see `replay`)."""
    if ids is None or isinstance(ids, Mapping):
        by_name = ids
    else:
        wanted = list(ids)
        by_name = {aggregate.name: wanted for aggregate in service.manifest.aggregates}
    with service.memoized():
        return {aggregate.name: replay(partial(service.repository, aggregate), as_of,
                                       None if by_name is None else list(by_name[aggregate.name]), workers)
                for aggregate in service.manifest.aggregates if by_name is None or aggregate.name in by_name}
