"""How `rules.evaluate` calls the rules and how `case._plain` flattens values, after their fast paths
(sixth session): the memo of which rules take `calendar` answers what the signature says, also once
emptied; a plugin rule gets the calendar only when it asks; whatever iterable a rule returns is
collected; `_plain` gives what `dataclasses.asdict` and the plain walk give (one-field dataclasses,
datetimes in fields, lists and dicts, nested dataclasses).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from services.common.findings import Finding
from services.common.workdays import WorkdayCalendar
from services.penalty.domain import case as pc
from services.penalty.domain import rules as r
from services.penalty.domain.settings import PenaltySettings
from tests.unit.test_penalty_snapshot_equivalence import plain_before  # the plain walk (asdict)

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
CAL = WorkdayCalendar()


def _with_calendar(case, facts, settings, as_of, calendar):
    return [("with", calendar)]


def _without_calendar(case, facts, settings, as_of):
    return [("without", None)]


def _keyword_calendar(case, facts, settings, as_of, *, calendar=None):
    return (x for x in [("keyword", calendar)])  # a generator is collected like a list


def _nothing(case, facts, settings, as_of):
    return None


def _guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return list(fn(*args, **kwargs) or [])
    return wrapper


class _Callable:
    __hash__ = None  # unhashable: never memoised, asked each time

    def __call__(self, case, facts, settings, as_of, calendar):
        return [("object", calendar)]


def test_wants_calendar_answers_what_the_signature_says_also_after_the_memo_is_emptied(monkeypatch):
    monkeypatch.setattr(r, "WANTS_CALENDAR_KEPT", 2)
    monkeypatch.setattr(r, "_WANTS_CALENDAR", {})
    expected = {_with_calendar: True, _without_calendar: False, _keyword_calendar: True, _nothing: False,
                _guarded(_with_calendar): True, _guarded(_without_calendar): False, len: False}
    for _ in range(3):  # first asked, then from the memo (emptied whenever it reaches 2 entries)
        for fn, wants in expected.items():
            assert r.wants_calendar(fn) is wants, fn
        assert len(r._WANTS_CALENDAR) <= 2
    assert r.wants_calendar(_Callable()) is True


def test_evaluate_gives_the_calendar_only_to_rules_that_ask_and_collects_every_answer():
    case = pc.fold([pc.Fact("e1", "case.filed", AT, "D1", {"case_id": "C1", "item_code": "X"})], "C1")
    rules = [("A", _with_calendar), ("B", _without_calendar), ("C", _guarded(_keyword_calendar)),
             ("D", _nothing), ("E", _Callable())]
    found = r.evaluate(case, r.CaseFacts(), PenaltySettings(), AS_OF, CAL, rules=rules,
                       extra_rules=[("F", _keyword_calendar)])
    assert found == [("with", CAL), ("without", None), ("keyword", CAL), ("object", CAL), ("keyword", CAL)]


def test_before_the_case_exists_only_the_fact_log_rules_run():
    held = pc.fold([pc.Fact("e2", "case.investigated", AT, "D1", {"case_id": "C1", "officers": ["O1"]})], "C1")
    assert not held.exists and held.held
    rules = [("A", _with_calendar), (r.FACT_HELD, _without_calendar), (r.FACT_ANOMALY, _guarded(_with_calendar))]
    assert r.evaluate(held, r.CaseFacts(), PenaltySettings(), AS_OF, CAL, rules=rules) == [
        ("without", None), ("with", CAL)]
    # the built-in rules: the held fact is reported once its grace period passed, nothing else runs
    late = r.evaluate(held, r.CaseFacts(), PenaltySettings(), AS_OF, CAL)
    assert [f.rule_id for f in late] == [r.FACT_HELD] and isinstance(late[0], Finding)


@dataclass(frozen=True)
class _One:
    at: datetime


@dataclass
class _Many:
    name: str
    at: datetime | None
    ones: list[_One] = field(default_factory=list)
    times: tuple[datetime, ...] = ()
    tags: set[str] = field(default_factory=set)
    extra: dict = field(default_factory=dict)
    inner: _One | None = None


@pytest.mark.parametrize("value", [
    _One(AT),
    _Many("a", None),
    _Many("b", AT, [_One(AT), _One(AS_OF)], (AT, AS_OF), {"x"}, {"k": [AT, 1, None], "d": {"t": AS_OF}}, _One(AT)),
    [_Many("c", AT), AT, "s", 1.5, None, (AT,)],
    {"k": _One(AS_OF), "t": AT},
])
def test_plain_is_theplain_before(value):
    fast = pc._plain(value)
    assert fast == plain_before(value)
    assert repr(fast) == repr(plain_before(value))  # same types and key order
    assert pc._plain(value) == fast  # the getters remembered per type give the same again
