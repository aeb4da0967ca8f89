"""Relay of outbox events: dispatch as nameko events, then drop the aggregate's outbox marker.

Events are dispatched after the aggregate is saved; if the process dies in between, the sweep (a
timer on every service) finds the small markers `<collection>_outbox` written before the save
(services/kernel/aggregates.py) and sends the outbox of those aggregates. Consumers are idempotent,
so a rare second dispatch is harmless.

Inside a unit of work (a batch of facts, a command, a sweep: services/kernel/sidewrites.py) with the
service's `EventRelay` as dispatcher, the events of every aggregate the unit saved are published
together when it ends, with one wait for the broker's confirms (services/kernel/confirms.py), and
then the markers are deleted (one bulk): before the unit's messages are acked. If the publish
fails, every message of the unit fails and is redelivered; the markers stay for the sweep.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from kombu.utils.json import dumps
from nameko import config
from nameko.extensions import DependencyProvider
from nameko.messaging import encode_to_headers

from services.kernel import config as kernel_config
from services.kernel.aggregates import AggregateStore, unit_ids
from services.kernel.confirms import ConfirmedPublisher, Outgoing
from services.kernel.messaging import event_exchange
from services.kernel.metrics import EVENTS_OUT, FINDINGS, OUTBOX_AGE, OUTBOX_BACKLOG
from services.kernel.sidewrites import SideWrites

log = logging.getLogger("zhifa.outbox")

# a marker younger than this belongs to a save whose own relay is still on its way (the marker is
# written before the save; listeners and the relay follow it): the sweep leaves it alone, or it would
# send the same events a second time (harmless for consumers, yet twice the work and the messages)
IN_FLIGHT = timedelta(seconds=10)


class Dispatch:
    """What `EventRelay` injects: `dispatch(type, payload)` publishes one event and waits for its
    confirm (as nameko's EventDispatcher); `publish_all([(type, payload), ...])` publishes several with
    one wait."""

    def __init__(self, provider: "EventRelay", worker_ctx):
        self.provider = provider
        self.headers = encode_to_headers(worker_ctx.context_data)

    def __call__(self, event_type: str, payload: dict) -> None:
        self.publish_all([(event_type, payload)])

    def publish_all(self, events: list[tuple[str, dict]]) -> None:
        exchange = self.provider.exchange
        self.provider.publisher.publish_all([Outgoing(exchange, t, dumps(p).encode("utf-8"), self.headers)
                                             for t, p in events])


class ConfirmedEvents(DependencyProvider):
    """A dependency owning one `ConfirmedPublisher` to the service's event exchange (`self.exchange`)
    and any `extra_exchanges`, closed when the container stops or is killed (EventRelay here, the
    gateway's Relay)."""

    extra_exchanges: tuple = ()

    def setup(self):
        self.exchange = event_exchange(self.container.service_name)
        self.publisher = ConfirmedPublisher(config.get("AMQP_URI"), exchanges=(self.exchange, *self.extra_exchanges),
                                            timeout=kernel_config.checked("PUBLISH_CONFIRM_TIMEOUT_SECONDS"))

    def stop(self):
        self.publisher.close()

    def kill(self):
        self.publisher.close()


class EventRelay(ConfirmedEvents):
    """The service's event dispatcher: events on `<service>.events` (routing key = event type, the
    worker's context in the headers, persistent, confirmed), one by one or a batch with one wait."""

    def setup(self):
        super().setup()
        self.sent = _Sent()  # what this service's relays had confirmed (its workers share it)

    def get_dependency(self, worker_ctx):
        return Dispatch(self, worker_ctx)


def _counted(service: str, ev: dict) -> None:
    EVENTS_OUT.labels(service, ev["type"]).inc()
    if ev["type"] in ("finding.raised", "finding.resolved"):
        FINDINGS.labels(service, ev["payload"]["rule_id"], ev["type"].split(".")[1]).inc()


class _Sent:
    """Event ids a service's relays had confirmed lately (bounded), and those being published now.

    A batch relays when it ends; meanwhile another unit of work (the other batch worker, the deadline
    sweep) may save the same aggregate from the process's document cache, whose outbox still holds
    the events not yet relayed, and carry them again. Whichever relay comes second sends only what
    the first has not had confirmed (and waits while the first is still publishing them)."""

    MAX = 100_000

    def __init__(self) -> None:
        self.confirmed: OrderedDict[str, None] = OrderedDict()
        self.sending: dict[str, Any] = {}

    def fresh(self, events: list[dict]) -> list[dict]:
        return [ev for ev in events if ev["event_id"] not in self.confirmed]

    def publish(self, events: list[dict], publish: Callable[[list[dict]], None], timeout: float = 30.0) -> list[dict]:
        """Publish the `events` not confirmed yet; the ones published."""
        from eventlet.event import Event
        from eventlet.timeout import Timeout

        busy = {id(w): w for w in (self.sending.get(ev["event_id"]) for ev in events) if w is not None}
        for waiter in busy.values():
            with Timeout(timeout, False):  # (no answer: publish them again rather than lose them)
                waiter.wait()
        todo = self.fresh(events)
        if not todo:
            return []
        waiter = Event()
        for ev in todo:
            self.sending[ev["event_id"]] = waiter
        try:
            publish(todo)
            for ev in todo:
                self.confirmed[ev["event_id"]] = None
            while len(self.confirmed) > self.MAX:
                self.confirmed.popitem(last=False)
        finally:
            for ev in todo:
                if self.sending.get(ev["event_id"]) is waiter:
                    del self.sending[ev["event_id"]]
            waiter.send(None)
        return todo


class _Relaying:
    """The events a unit of work relays together, and the markers to drop once they are confirmed."""

    def __init__(self, dispatch: Dispatch, service: str):
        self.dispatch, self.service = dispatch, service
        self.events: list[dict] = []
        self.ids: set = set()
        self.relayed: list[tuple[AggregateStore, str, int]] = []

    def add(self, store: AggregateStore, agg_id: str, events: Iterable[dict], version: int | None) -> int:
        queued = 0
        for ev in events:
            if ev["event_id"] not in self.ids:  # (an aggregate saved twice in the unit carries them again)
                self.ids.add(ev["event_id"])
                self.events.append(ev)
                queued += 1
        if version is not None:
            self.relayed.append((store, agg_id, version))
        return queued

    def send(self) -> None:
        sent = self.dispatch.provider.sent.publish(
            self.events, lambda todo: self.dispatch.publish_all([(ev["type"], ev) for ev in todo]))
        for ev in sent:
            _counted(self.service, ev)
        for store, agg_id, version in self.relayed:
            store.relayed(agg_id, version)  # (deferred to the same unit: one bulk of deletes after this)


def relay(store: AggregateStore, agg_id: str, events: Iterable[dict],
          dispatch: Callable[[str, dict], None], service: str, version: int | None = None,
          writes: SideWrites | None = None) -> int:
    """Dispatch `events`; `version` is given when they are the whole outbox saved at that version
    (its marker is dropped then). Within a unit of work (`writes`) and with an `EventRelay`'s
    dispatcher, they go out with the unit's other events when it ends (module doc). The events sent
    or queued."""
    if writes is not None and isinstance(dispatch, Dispatch):
        def start() -> _Relaying:
            relaying = _Relaying(dispatch, service)
            writes.after(relaying.send)
            return relaying
        return writes.part(("relay", service), start).add(store, agg_id, events, version)
    if isinstance(dispatch, Dispatch):  # (the sweep's: not what a relay of this process had confirmed)
        done = dispatch.provider.sent.publish(list(events),
                                             lambda todo: dispatch.publish_all([(ev["type"], ev) for ev in todo]))
    else:
        done = list(events)
        for ev in done:
            dispatch(ev["type"], ev)
    for ev in done:
        _counted(service, ev)
    if version is not None:
        store.relayed(agg_id, version)
    return len(done)


def sweep(stores: Iterable[AggregateStore], dispatch: Callable[[str, dict], None], service: str,
          now: datetime | None = None, in_flight: timedelta = IN_FLIGHT) -> int:
    """Relay what a crash (or a failed relay) left in outboxes, from their markers older than
    `in_flight` (an aggregate's own, or a unit of work's naming several: the stored outboxes of all
    of them, AggregateStore.swept_unit); on the way, set zhifa_outbox_backlog (aggregates waiting) and
    zhifa_outbox_oldest_age_seconds (since the oldest marker was written; wall-clock time, `now` is
    the domain's and not used for it)."""
    total, backlog, oldest = 0, 0, None
    wall = datetime.now(timezone.utc)
    for store in stores:
        for marker in store.waiting():
            unit = unit_ids(marker)  # a unit of work's marker (kernel/aggregates.py), or None
            at = marker.get("at")
            young = at is not None and wall - at < in_flight
            # (a running unit's marker names what it will apply, not what waits: counted once it is left behind)
            backlog += (0 if young else len(unit)) if unit is not None else 1
            if at is not None and (oldest is None or at < oldest):
                oldest = at
            if young:
                continue
            if unit is not None:
                versions, todo = store.swept_unit(marker)
                for agg_id, events in todo.items():
                    total += relay(store, agg_id, events, dispatch, service)
                store.settle_unit(marker, versions)
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
