"""Working days (工作日) by China's official holiday calendar, make-up workdays included.

《行政处罚法》Art. 85: its 2/3/5/7-day limits are working days. `chinese_calendar` is pure data
(no I/O); for years it does not cover yet we fall back to Monday–Friday and say so through
`covered()`, so a deployment can add overrides (extra holidays / make-up days) as configuration.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Iterable

import chinese_calendar


# The years the package has official data for (it refuses others); outside them: Monday–Friday.
COVERED_YEARS = frozenset(d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays))


@lru_cache(maxsize=8192)
def _official_workday(day: date) -> bool:
    """chinese_calendar's answer, remembered: it validates its argument on every call, which made it
    ~10% of the penalty service's CPU (py-spy, 2026-11-30); the data never changes in a process."""
    return chinese_calendar.is_workday(day)


ADDED_KEPT = 20_000  # remembered add_workdays answers per calendar before it starts afresh


class WorkdayCalendar:
    def __init__(self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()):
        self._holidays = frozenset(extra_holidays)
        self._workdays = frozenset(extra_workdays)
        self._added: dict[tuple[date, int], date] = {}  # add_workdays answers (the calendar never changes)

    @staticmethod
    def covered(day: date) -> bool:
        return day.year in COVERED_YEARS

    def is_workday(self, day: date) -> bool:
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        if day.year in COVERED_YEARS:
            return _official_workday(day)
        return day.weekday() < 5

    def add_workdays(self, start: date, n: int) -> date:
        """The n-th working day after `start` (start itself not counted)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        key = (start, n)
        found = self._added.get(key)
        if found is None:
            day = start
            while n > 0:
                day += timedelta(days=1)
                if self.is_workday(day):
                    n -= 1
            if len(self._added) >= ADDED_KEPT:
                self._added.clear()
            found = self._added[key] = day
        return found

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 if end <= start)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count


DEFAULT_CALENDAR = WorkdayCalendar()
