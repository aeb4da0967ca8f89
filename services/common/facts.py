"""The one `Fact` value every domain folds: a contract-validated event as an aggregate keeps it.

A fact is what a department (or Zhifa itself) reported: who (`dept`, `source`), what (`type`,
`payload`), when it happened (`occurred_at`, zone-aware) and the store's arrival order (`seq`).
Domains add meaning with functions over it (when a fact takes effect, which aggregate it belongs
to); they do not subclass or copy it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from services.common.chinatime import aware
from services.common.errors import InvalidFactError, NaiveTimeError


@dataclass(frozen=True)
class Fact:
    event_id: str
    type: str
    occurred_at: datetime
    dept: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0
    source: str = ""
    received_at: datetime | None = None  # when the service applied it (None: not recorded)

    @property
    def waiting_since(self) -> datetime:
        """When a fact that waits for a prerequisite started waiting: it happened and had arrived."""
        return self.occurred_at if self.received_at is None else max(self.occurred_at, self.received_at)

    def __post_init__(self):
        aware(self.occurred_at, "occurred_at")

    @classmethod
    def from_envelope(cls, envelope: Mapping[str, Any], seq: int = 0) -> "Fact":
        """From a contract-validated envelope or a stored `to_dict()`."""
        raw = envelope.get("occurred_at")
        if isinstance(raw, datetime):
            occurred = raw
        else:
            try:
                occurred = datetime.fromisoformat(raw)
            except (TypeError, ValueError):
                raise InvalidFactError(f"occurred_at {raw!r} 无效", field="occurred_at") from None
        if occurred.utcoffset() is None:
            raise NaiveTimeError("事件发生时间必须带时区", field="occurred_at")
        received = envelope.get("received_at")
        if isinstance(received, str):
            try:
                received = datetime.fromisoformat(received)
            except ValueError:
                received = None
        if not isinstance(received, datetime) or received.utcoffset() is None:
            received = None
        return cls(str(envelope["event_id"]), str(envelope["type"]), occurred, str(envelope.get("dept") or ""),
                   dict(envelope.get("payload") or {}), envelope.get("seq", seq) or seq,
                   str(envelope.get("source") or ""), received)

    from_dict = from_envelope

    def to_dict(self) -> dict[str, Any]:
        """The envelope fields; `seq` and `source` only when set (a command's fact has neither)."""
        out = {"event_id": self.event_id, "type": self.type, "occurred_at": self.occurred_at.isoformat(),
               "dept": self.dept, "payload": dict(self.payload)}
        if self.seq:
            out["seq"] = self.seq
        if self.source:
            out["source"] = self.source
        if self.received_at is not None:
            out["received_at"] = self.received_at.isoformat()
        return out
