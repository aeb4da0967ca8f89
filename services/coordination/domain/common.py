"""Small pieces every coordination aggregate shares (pure): who acts, dates, command facts."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable

from services.common.chinatime import aware, local_date
from services.common.errors import DomainError, InvalidFactError, NotOwnerError
from services.common.facts import Fact
from services.common.ownership import is_justice_bureau


def bureau_only(dept: str, what: str) -> None:
    """Only the justice bureau (行政执法监督机构) may do `what`."""
    if not is_justice_bureau(dept):
        raise NotOwnerError(f"只有司法局（行政执法监督机构）可以{what}，{dept} 无权操作")


def parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidFactError(f"{name} 不是有效日期：{value!r}", field=f"payload.{name}") from None


def on_or_today(value: str | date | None, at: datetime, name: str) -> date:
    """A command's date: the given day (not in the future) or today (China time) of `at`."""
    today = local_date(aware(at, "at"))
    day = today if value in (None, "") else (value if isinstance(value, date) else parse_date(value, name))
    if day > today:
        raise DomainError(f"{name} 不能晚于今天（{today.isoformat()}）", code="invalid_value", field=name)
    return day


def required_text(value: Any, name: str, message: str, minimum: int = 1) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) < minimum:
        raise DomainError(message, code="invalid_value", field=name)
    return text


def command_fact(type_: str, id_field: str, agg_id: str, at: datetime, acting_dept: str, event_id: str,
                 actor: str | None, **payload) -> Fact:
    """The fact a command produces; `acting_dept` is who acted (the envelope's dept)."""
    body = {id_field: agg_id, **{k: v for k, v in payload.items() if v is not None}}
    if actor:
        body["actor"] = actor
    return Fact(event_id, type_, at, acting_dept, body, source="zhifa")


def in_time_order(facts: Iterable[Fact]) -> list[Fact]:
    """Deduplicated by event id, ordered by when they happened (then arrival)."""
    return sorted({f.event_id: f for f in facts}.values(), key=lambda f: (f.occurred_at, f.seq, f.event_id))
