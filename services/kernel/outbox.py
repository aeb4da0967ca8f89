"""Relay of outbox events: dispatch as nameko events, then drop the aggregate's outbox marker.

Events are dispatched right after the aggregate is saved; if the process dies in between, the
sweep (a timer on every service) finds the small markers `<collection>_outbox` written before
the save (services/kernel/aggregates.py) and sends the outbox of those aggregates. Consumers are
idempotent, so a rare second dispatch is harmless.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from services.kernel.aggregates import AggregateStore
from services.kernel.metrics import EVENTS_OUT, FINDINGS, OUTBOX_AGE, OUTBOX_BACKLOG

log = logging.getLogger("zhifa.outbox")

# a marker younger than this belongs to a save whose own relay is still on its way (the marker is
# written before the save; listeners and the relay follow it): the sweep leaves it alone, or it would
# send the same events a second time (harmless for consumers, yet twice the work and the messages)
IN_FLIGHT = timedelta(seconds=10)


def relay(store: AggregateStore, agg_id: str, events: Iterable[dict],
          dispatch: Callable[[str, dict], None], service: str, version: int | None = None) -> int:
    """Dispatch `events`; `version` is given when they are the whole outbox saved at that version
    (its marker is dropped then)."""
    sent = 0
    for ev in events:
        dispatch(ev["type"], ev)
        EVENTS_OUT.labels(service, ev["type"]).inc()
        if ev["type"] in ("finding.raised", "finding.resolved"):
            FINDINGS.labels(service, ev["payload"]["rule_id"], ev["type"].split(".")[1]).inc()
        sent += 1
    if version is not None:
        store.relayed(agg_id, version)
    return sent


def sweep(stores: Iterable[AggregateStore], dispatch: Callable[[str, dict], None], service: str,
          now: datetime | None = None, in_flight: timedelta = IN_FLIGHT) -> int:
    """Relay what a crash (or a failed relay) left in outboxes, from their markers older than
    `in_flight`; on the way, set zhifa_outbox_backlog (aggregates waiting) and
    zhifa_outbox_oldest_age_seconds (since the oldest marker was written; wall-clock time, `now` is
    the domain's and not used for it)."""
    total, backlog, oldest = 0, 0, None
    wall = datetime.now(timezone.utc)
    for store in stores:
        for marker in store.waiting():
            backlog += 1
            at = marker.get("at")
            if at is not None and (oldest is None or at < oldest):
                oldest = at
            if at is not None and wall - at < in_flight:
                continue
            doc, events = store.swept(marker)
            total += relay(store, marker["_id"], events, dispatch, service)
            store.settle(marker, doc)
    OUTBOX_BACKLOG.labels(service).set(backlog)
    age = (wall - oldest).total_seconds() if oldest is not None else 0.0
    OUTBOX_AGE.labels(service).set(max(0.0, age))
    if total:
        log.info("outbox sweep relayed %s events", total, extra={"service": service})
    return total
