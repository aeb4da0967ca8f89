"""Relay of outbox events: dispatch as nameko events, then clear them from the aggregate.

Events are dispatched right after the aggregate is saved; if the process dies in between,
the sweep (a timer on every service) finds documents with `outbox_pending` and sends them.
Consumers are idempotent, so a rare second dispatch is harmless.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from services.kernel.aggregates import AggregateStore
from services.kernel.metrics import EVENTS_OUT, FINDINGS

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


def sweep(stores: Iterable[AggregateStore], dispatch: Callable[[str, dict], None], service: str) -> int:
    total = 0
    for store in stores:
        for doc in store.pending():
            total += relay(store, doc["_id"], doc.get("outbox", []), dispatch, service)
    if total:
        log.info("outbox sweep relayed %s events", total, extra={"service": service})
    return total
