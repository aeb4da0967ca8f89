"""The one way a command becomes a fact: envelope, contract check, refusal shape.

A command (网上办案, a credential action, any command of a future service) is decided by the
domain on the aggregate's current state, inside the aggregate store's compare-and-set loop
(EventSourcedService.execute -> EventSourcedRepository.command): if another writer saved the
aggregate in between, the decision is taken again on the new state, so two racing commands can
never both be accepted. The resulting fact is wrapped here in the same envelope a departmental
system would send (source "zhifa") and checked against the same contract as ingress facts.
"""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

ZHIFA_SOURCE = "zhifa"


class CommandRefused(Exception):
    """A command refused before or outside the domain (bad input, wrong department, contract)."""

    def __init__(self, code: str, field: str | None, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.field, self.message, self.extra = code, field, message, extra


def refusal(code: str, field: str | None, message: str, **extra: Any) -> dict:
    """The answer of a refused command: {"ok": False, "error": {code, field, message, ...}}."""
    return {"ok": False, "error": {"code": code, "field": field, "message": message, **extra}}


def build_envelope(type_: str, payload: dict, *, dept: str, occurred_at: datetime | str, event_id: str,
                   schema_version: int = 1, source: str = ZHIFA_SOURCE) -> dict:
    """The envelope of a Zhifa-originated fact, shaped like any ingress event."""
    return {"event_id": event_id, "type": type_, "schema_version": schema_version,
            "occurred_at": occurred_at.isoformat() if isinstance(occurred_at, datetime) else occurred_at,
            "dept": dept, "source": source, "payload": payload}


@functools.lru_cache(maxsize=1)
def _catalog():
    from contracts.catalog import Catalog

    return Catalog()


def validate(envelope: dict) -> None:
    """Check a command's envelope against its contract; CommandRefused(contract_violation) if not."""
    from contracts.catalog import ContractError

    try:
        _catalog().validate(envelope)
    except ContractError as exc:
        text = "；".join(f"{v.field}：{v.message}" for v in exc.violations)
        raise CommandRefused("contract_violation", exc.violations[0].field, f"操作参数不符合事件契约：{text}",
                             violations=exc.to_list()) from exc
