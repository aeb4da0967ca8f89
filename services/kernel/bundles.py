"""Bundles: the gateway's admitted events for one consuming handler sent together in one message.

The gateway admits ingress events a batch at a time (≤ 50) and used to dispatch each as a message of
its own on `gateway.events` (routing key = event type), which the consuming services' handlers then
collect into batches again. Per event that is a publish, a route, a queue entry, a delivery and an
ack on the broker, and a frame parse and a body decode in the consumer. Instead, the events of one
admitted batch that a declared handler consumes (`ServiceManifest.consumes`: source `gateway`, a
topic pattern) go to that handler as *bundles* of at most GATEWAY_BUNDLE_MAX (10) events: one message
each, routing key `bundle_key(...)`, which the handler's queue is bound to besides its pattern
(`messaging.ReliableEventHandler.setup`). A batching handler divides its prefetch (messages) by
GATEWAY_BUNDLE_MAX (`events_per_message`), so it holds about as many events unacked as before. An event
two handlers consume goes into both handlers' bundles, as the topic exchange would have copied it.
Events no declared handler consumes are dispatched one by one, as before.

Body (JSON): {"bundle": 1, "events": [[traceparent or null, envelope], …]}. The handler takes each
envelope as if it had been a message of its own, with its own trace; the bundle is acknowledged when
every one of its envelopes was applied or went its own way (a failed envelope is republished alone
to the retry / dead-letter path, and the publisher's `refused` notice names it): nothing is lost and
nothing is acked before it was applied. A handler that does not batch (BATCH_MAX 1, or a plain
`reliable_event_handler`) republishes the bundle's envelopes to its own queue one by one, then acks
the bundle.

Bundles are published `mandatory`: one that no queue takes (the consumer was never started in this
vhost, or runs an older version without the binding) comes back, and the gateway dispatches its
events one by one instead (services/kernel/confirms.py), so a partial suite or a rolling upgrade
loses nothing.
"""
from __future__ import annotations

import hashlib
from typing import Any

BUNDLE_WORD = "zhifa_bundle"
FORMAT = 1


def bundle_max() -> int:
    """GATEWAY_BUNDLE_MAX: at most this many events in one bundle (1: every event alone)."""
    from services.kernel import config

    return config.checked("GATEWAY_BUNDLE_MAX")


def events_per_message(source: str) -> int:
    """How many events one message from `source` may carry: GATEWAY_BUNDLE_MAX for a service that
    relays ingress (the gateway, `ServiceManifest.relays_ingress`), else 1. A batching handler's
    prefetch (messages) is divided by it, so what it holds unacknowledged stays about
    (BATCH_WORKERS + 1) × BATCH_MAX events (services/kernel/messaging.py)."""
    from services.kernel.manifest import manifest

    declared = manifest(source)
    return bundle_max() if declared is not None and declared.relays_ingress else 1


def bundle_key(source: str, consumer: str, pattern: str) -> str:
    """The routing key of the bundles on `<source>.events` for `consumer`'s handler of `pattern`
    (a topic routing key of plain words: the pattern's `*` and `#` would be wildcards in a binding)."""
    digest = hashlib.sha1(f"{source}\0{consumer}\0{pattern}".encode("utf-8")).hexdigest()[:12]
    return f"{BUNDLE_WORD}.{consumer}.{digest}"


def is_bundle_key(routing_key: Any) -> bool:
    return isinstance(routing_key, str) and routing_key.startswith(BUNDLE_WORD + ".")


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on '.', `*` is exactly one word, `#` zero or more."""
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and (p[0] == "*" or p[0] == k[0]) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))


_targets_cache: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {}
_targets_of: list = [None]  # the declarations the cache was made from


def _consumers(source: str, event_type: str) -> tuple[tuple[str, Any], ...]:
    """(bundle key, consumer's declaration) of each declared handler that consumes `event_type` from
    `source` (manifests' `consumes`), in declaration order."""
    from services.kernel.manifest import manifests

    declared = manifests()
    if _targets_of[0] is not declared or len(_targets_cache) > 4096:  # (a declaration registered meanwhile)
        _targets_cache.clear()
        _targets_of[0] = declared
    found = _targets_cache.get((source, event_type))
    if found is None:
        found = _targets_cache[(source, event_type)] = tuple(
            (bundle_key(source, m.name, patterns[0]), m) for m in declared for src, patterns in m.handlers()
            if src == source and any(topic_matches(p, event_type) for p in patterns))
    return found


def targets(source: str, event_type: str) -> tuple[str, ...]:
    """The bundle keys of the declared handlers that consume `event_type` from `source`; () when none does."""
    return tuple(key for key, _ in _consumers(source, event_type))


def routed(source: str, envelope: dict) -> list[str]:
    """The routing keys of the bundles `envelope` goes into (`targets`): a partitioned consumer's key
    names the partition of the envelope's aggregate (services/kernel/partitions.py)."""
    from services.kernel import partitions

    keys = []
    for key, consumer in _consumers(source, envelope["type"]):
        n = partitions.count_for(consumer)
        if n > 1:
            key = partitions.routing_key(key, partitions.of(partitions.value_at(envelope, consumer.partition_key), n))
        keys.append(key)
    return keys


def body(parts: list[tuple[str | None, dict]]) -> dict:
    """A bundle's body: each part (traceparent, envelope) in order."""
    return {"bundle": FORMAT, "events": [[trace, envelope] for trace, envelope in parts]}


class MalformedBundle(ValueError):
    """A message on a bundle key that is not a well-formed bundle."""


def parts(decoded: Any, max_parts: int = 10_000) -> list[tuple[str | None, dict]]:
    """The (traceparent, envelope) parts of a decoded bundle body; MalformedBundle when it is not one
    (what each envelope holds is its handler's to judge, as for a message of its own)."""
    if not isinstance(decoded, dict) or decoded.get("bundle") != FORMAT or not isinstance(decoded.get("events"), list):
        raise MalformedBundle("不是有效的事件包（bundle）")
    events = decoded["events"]
    if not 0 < len(events) <= max_parts:
        raise MalformedBundle(f"事件包的事件数须在 1 到 {max_parts} 之间")
    found = []
    for part in events:
        if not (isinstance(part, list) and len(part) == 2 and isinstance(part[1], dict)
                and (part[0] is None or isinstance(part[0], str))):
            raise MalformedBundle("事件包中的事件须为 [traceparent, 事件] 对")
        found.append((part[0], part[1]))
    return found


def unbundled(routing_key: str, decoded: Any) -> list[tuple[str, dict]]:
    """What a message on `<source>.events` dispatches, as (event type, envelope) pairs: a bundle's
    envelopes, or the message itself (tests and tools that listen on `gateway.events` with `#`)."""
    if is_bundle_key(routing_key):
        return [(env.get("type"), env) for _, env in parts(decoded)]
    return [(routing_key, decoded)]
