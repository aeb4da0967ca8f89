"""Relay of outbox events: dispatch as nameko events, then clear them from the aggregate.

Events are dispatched right after the aggregate is saved; if the process dies in between,
the sweep (a timer on every service) finds documents with `outbox_pending` and sends them.
Consumers are idempotent, so a rare second dispatch is harmless.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Iterable

from services.kernel.aggregates import AggregateStore
from services.kernel.metrics import EVENTS_OUT, FINDINGS, OUTBOX_AGE, OUTBOX_BACKLOG

log = logging.getLogger("zhifa.outbox")


def relay(store: AggregateStore, agg_id: str, events: Iterable[dict],
          dispatch: Callable[[str, dict], None], service: str, version: int | None = None) -> int:
    """Dispatch `events`; `version` is given when they are the whole outbox written at that version."""
    sent = []
    for ev in events:
        dispatch(ev["type"], ev)
        EVENTS_OUT.labels(service, ev["type"]).inc()
        if ev["type"] in ("finding.raised", "finding.resolved"):
            FINDINGS.labels(service, ev["payload"]["rule_id"], ev["type"].split(".")[1]).inc()
        sent.append(ev["event_id"])
    if sent:
        store.mark_dispatched(agg_id, sent, version)
    return len(sent)


def sweep(stores: Iterable[AggregateStore], dispatch: Callable[[str, dict], None], service: str,
          now: datetime | None = None) -> int:
    """Relay what a crash left in outboxes; on the way, set zhifa_outbox_backlog (aggregates waiting)
    and zhifa_outbox_oldest_age_seconds (since the oldest was evaluated) from the same one read."""
    total, backlog, oldest = 0, 0, None
    for store in stores:
        for doc in store.pending():
            backlog += 1
            at = doc.get("evaluated_at")
            if at is not None and (oldest is None or at < oldest):
                oldest = at
            total += relay(store, doc["_id"], doc.get("outbox", []), dispatch, service)
    OUTBOX_BACKLOG.labels(service).set(backlog)
    age = (now - oldest).total_seconds() if now is not None and oldest is not None else 0.0
    OUTBOX_AGE.labels(service).set(max(0.0, age))
    if total:
        log.info("outbox sweep relayed %s events", total, extra={"service": service})
    return total
