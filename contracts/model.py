"""The shape of one contract entry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventContract:
    """One event type at one schema version: who owns it, its payload schema, an example payload."""

    type: str
    version: int
    owner: str  # the service that applies it (personnel, registry, penalty, ...)
    doc: str
    schema: dict[str, Any]
    example: dict[str, Any]
    # "ingress": departments may publish it; "internal": emitted by a service only.
    direction: str = "ingress"
    tags: tuple[str, ...] = field(default_factory=tuple)
