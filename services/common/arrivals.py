"""Facts that arrive together are judged together (docs/consistency.md, rule 2).

The kernel records on every stored fact when the service applied it (`Fact.received_at`). An
aggregate whose latest fact arrived less than `settle_seconds` before `as_of` is still *settling*:
more of the same batch (a replayed history, a batch split over queues) may be on its way, so a
finding about something not (yet) reported must not be raised on it. Pure functions, no clock.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from services.common.facts import Fact


def last_arrival(facts: Iterable[Fact]) -> datetime | None:
    """The latest `received_at` of `facts` (None when no fact records its arrival)."""
    return max((f.received_at for f in facts if f.received_at is not None), default=None)


def settles_at(last_received_at: datetime | None, settle_seconds: float) -> datetime | None:
    """The instant the arrivals are over: the latest arrival plus the settle window."""
    return None if last_received_at is None else last_received_at + timedelta(seconds=settle_seconds)


def settling_until(last_received_at: datetime | None, settle_seconds: float, as_of: datetime) -> datetime | None:
    """While facts are still arriving at `as_of`, the instant they settle; else None."""
    until = settles_at(last_received_at, settle_seconds)
    return until if until is not None and as_of < until else None
