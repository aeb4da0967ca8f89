"""Shared entrypoint plumbing for event-sourced services (declared once, inherited).

Subclasses set `name` and implement `repositories()`; they get metrics, the clock, the event
dispatcher, the outbox relay and one timer that sweeps stuck outboxes and due deadlines.
"""
from __future__ import annotations

import logging
import time

from nameko.events import EventDispatcher
from nameko.timer import timer

from services.kernel import config
from services.kernel.clock import Clock
from services.kernel.eventsourced import EventSourcedRepository
from services.kernel.metrics import FINDINGS_OPEN, Metrics
from services.kernel.outbox import relay, sweep

log = logging.getLogger("zhifa.service")

_last_run: dict[tuple[str, str], float] = {}


def _due(service: str, what: str, every: float) -> bool:
    now = time.monotonic()
    if now - _last_run.get((service, what), 0.0) < every:
        return False
    _last_run[(service, what)] = now
    return True


_counted: dict[str, set] = {}


def recount_open_findings(service: str, repos) -> None:
    """Set zhifa_findings_open{service, rule_id, severity} from storage. A rule with no open finding
    any more is set to 0 (not left at its last value); rule ids are a bounded, declared set."""
    counts: dict[tuple[str, str], int] = {}
    for repo in repos:
        for doc in repo.store.col.find({}, {"findings_open": 1}):
            for finding in (doc.get("findings_open") or {}).values():
                key = (finding.get("rule_id") or "unknown", finding.get("severity") or "info")
                counts[key] = counts.get(key, 0) + 1
    for key in _counted.get(service, set()) - set(counts):
        FINDINGS_OPEN.labels(service, *key).set(0)
    for key, n in counts.items():
        FINDINGS_OPEN.labels(service, *key).set(n)
    _counted[service] = set(counts) | _counted.get(service, set())


class EventSourcedService:
    metrics = Metrics()
    clock = Clock()
    dispatch = EventDispatcher()

    def repositories(self) -> list[EventSourcedRepository]:
        raise TypeError(f"{type(self).__name__} must list its aggregate repositories")

    def ingest(self, repo: EventSourcedRepository, envelope: dict) -> dict | None:
        doc, pending = repo.ingest(envelope, self.clock)
        if doc is not None and pending:
            relay(repo.store, doc["_id"], pending, self.dispatch, self.name, version=doc["version"])
        return doc

    @timer(interval=1)
    def sweep(self):
        """Relay outboxes left by a crash; re-evaluate aggregates whose deadlines fell due."""
        repos = self.repositories()
        if _due(self.name, "outbox", float(config.get("OUTBOX_SWEEP_SECONDS"))):
            sweep([r.store for r in repos], self.dispatch, self.name)
        if _due(self.name, "deadlines", float(config.get("DEADLINE_SWEEP_SECONDS"))):
            now = self.clock()
            for repo in repos:
                for doc in repo.store.due(now):
                    new, pending = repo.reevaluate(doc["_id"], now)
                    if new is not None and pending:
                        relay(repo.store, new["_id"], pending, self.dispatch, self.name, version=new["version"])
        if _due(self.name, "recount", float(config.get("FINDINGS_RECOUNT_SECONDS"))):
            recount_open_findings(self.name, repos)
