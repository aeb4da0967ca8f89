"""China-time helpers shared by every domain (中国标准时间, UTC+8, no daylight saving).

Dates in credentials, item lists and case limits are China calendar days. A datetime handed to a
domain must carry a zone; a naive one is refused (NaiveTimeError), never guessed.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from services.common.errors import NaiveTimeError

CST = timezone(timedelta(hours=8), "CST")


def aware(at: datetime, name: str = "at") -> datetime:
    """`at` itself when it carries a zone; NaiveTimeError naming `name` otherwise."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveTimeError(f"{name} 必须是带时区的时间", field=name)
    return at


def local_date(at: date | datetime, name: str = "at") -> date:
    """The China calendar day `at` falls on (a date is taken as is)."""
    if isinstance(at, datetime):
        return aware(at, name).astimezone(CST).date()
    return at


def day_start(day: date) -> datetime:
    """00:00 China time of `day` (when a dated action takes effect)."""
    return datetime.combine(day, time.min, CST)


def iso_local(at: datetime | None) -> str | None:
    """ISO 8601 in China time, or None."""
    return at.astimezone(CST).isoformat() if at is not None else None


def parse_time(value: Any) -> datetime | None:
    """A zone-aware datetime from a datetime or ISO 8601 string; None if absent, invalid or naive."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.utcoffset() is not None else None


def parse_month_day(value: Any, name: str) -> tuple[int, int]:
    """(m, d), [m, d] or "MM-DD" -> (m, d); Feb 29 allowed (read as Feb 28 in common years)."""
    if isinstance(value, str):
        parts = value.split("-")
        value = tuple(int(p) for p in parts) if len(parts) == 2 and all(p.isdigit() for p in parts) else ()
    try:
        m, d = (int(v) for v in value)
        date(2024, m, d)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected month/day ('MM-DD'), got {value!r}") from None
    return m, d


def month_day_in(year: int, month_day: tuple[int, int]) -> date:
    """That month/day in `year`; Feb 29 becomes Feb 28 in a common year."""
    m, d = month_day
    if (m, d) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        d = 28
    return date(year, m, d)
