"""The injectable clock: the only place a service reads the wall clock."""
from __future__ import annotations

from datetime import datetime, timezone

from nameko.extensions import DependencyProvider


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Clock(DependencyProvider):
    """Gives workers `now()`; tests replace it (worker_factory) to replay history."""

    def get_dependency(self, worker_ctx):
        return utcnow
