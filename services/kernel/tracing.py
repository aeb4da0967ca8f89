"""Correlation: one trace id per department event, from the ingress to the last service acting on it.

W3C Trace Context (`traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) travels in
nameko's context data, which nameko copies into the AMQP headers of every event and RPC a worker
sends (`nameko.traceparent`) and back into the context of the worker that receives it. So:

- the gateway starts the trace of an admitted event: the publisher's own `traceparent` header when it
  is well-formed, else one whose trace id is the event id's 32 hex digits — an operator who knows the
  event id knows the trace id;
- every worker continues the trace it received (same trace id, new span id) and binds the trace id
  and the event id it handles to its green thread, so every log line it writes carries both
  (services/kernel/logs.py) and every event it dispatches carries the trace on;
- retries and dead letters keep the original headers, so a replayed message keeps its trace.

Follow one event: `grep <event id or trace id> .run/run/logs/*.log`.
"""
from __future__ import annotations

import re
import secrets
import threading
import uuid
from typing import Any

TRACEPARENT = "traceparent"
_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_local = threading.local()   # green-thread local under eventlet's monkey patching


def parse(value: Any) -> str | None:
    """The trace id of a well-formed traceparent, else None (never raises on hostile input)."""
    if not isinstance(value, str) or len(value) != 55:
        return None
    match = _FORMAT.match(value)
    if not match or match.group(1) == _ZERO_TRACE or match.group(2) == _ZERO_SPAN:
        return None
    return match.group(1)


def traceparent(trace_id: str) -> str:
    """A new span of `trace_id`."""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def trace_id_for_event(event_id: Any) -> str:
    """The event id's 32 hex digits when it is a UUID; else a fresh random trace id."""
    try:
        return uuid.UUID(str(event_id)).hex
    except (ValueError, TypeError, AttributeError):
        return secrets.token_hex(16)


def bind(trace_id: str | None, event_id: str | None = None) -> None:
    _local.trace_id = trace_id
    _local.event_id = event_id


def current() -> dict[str, str]:
    """{"trace_id", "event_id"} bound to this green thread (absent keys when unbound)."""
    out = {}
    for key in ("trace_id", "event_id"):
        value = getattr(_local, key, None)
        if value:
            out[key] = value
    return out


def clear() -> None:
    bind(None, None)


def envelope_event_id(args: tuple) -> str | None:
    """The event id of an entrypoint whose first argument is an event envelope."""
    first = args[0] if args else None
    if isinstance(first, list) and first:  # a batch worker: its first envelope
        first = first[0]
    if isinstance(first, dict) and isinstance(first.get("event_id"), str):
        return first["event_id"][:64]
    return None


def continue_trace(data: dict, args: tuple) -> None:
    """Worker set-up: continue the received trace (or start one from the envelope), bind it."""
    event_id = envelope_event_id(args)
    trace_id = parse(data.get(TRACEPARENT))
    if trace_id is None and event_id is not None:
        trace_id = trace_id_for_event(event_id)
    if trace_id is None:
        data.pop(TRACEPARENT, None)
        bind(None, event_id)
        return
    data[TRACEPARENT] = traceparent(trace_id)
    bind(trace_id, event_id)


def start_trace(data: dict, event_id: str, incoming: Any = None) -> str:
    """The gateway, for an admitted event: the publisher's trace if well-formed, else the event's."""
    trace_id = parse(incoming) or trace_id_for_event(event_id)
    data[TRACEPARENT] = traceparent(trace_id)
    bind(trace_id, event_id)
    return trace_id
