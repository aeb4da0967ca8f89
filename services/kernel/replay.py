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

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable

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


def replay(repo: EventSourcedRepository, as_of: datetime, ids: Iterable[str] | None = None) -> ReplayStats:
    """Re-evaluate every aggregate of `repo` (or those in `ids`) at `as_of`; timed from the first read."""
    stats = ReplayStats()
    started = time.perf_counter()
    query: dict[str, Any] = {} if ids is None else {"_id": {"$in": list(ids)}}
    for doc in list(repo.store.col.find(query, {"fact_ids": 1, "findings_open": 1, "version": 1})):
        before = set(doc.get("findings_open") or {})
        new, _ = repo.reevaluate(doc["_id"], as_of)
        after = set((new or {}).get("findings_open") or {})
        stats.aggregates += 1
        stats.facts += len(doc.get("fact_ids") or ())
        stats.written += int(new is not None and new.get("version") != doc.get("version"))
        stats.raised += len(after - before)
        stats.resolved += len(before - after)
    stats.seconds = time.perf_counter() - started
    return stats


def offline(service_cls: type, db, *, host, preset: str) -> Any:
    """An instance of an event-sourced service class with what its adapters read (db, the plugin host,
    per-department settings of `preset`) and no container: for a replay from the command line or the bench."""
    from services.kernel.settings import DeptSettings

    declared = service_cls.manifest
    service = service_cls()
    service.db = db
    service.plugins = host
    service.settings = DeptSettings.of(declared, host, preset) if declared.settings is not None else None
    return service


def replay_service(service, as_of: datetime, ids: Iterable[str] | None = None) -> dict[str, ReplayStats]:
    """Replay every declared aggregate of a service instance (a container's or `offline`'s)."""
    wanted = None if ids is None else list(ids)
    return {aggregate.name: replay(service.repository(aggregate), as_of, wanted)
            for aggregate in service.manifest.aggregates}
