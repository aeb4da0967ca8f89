"""The shared domain building blocks (services/common): one Fact, one error vocabulary, China time,
the settings base, can_act, crime thresholds."""
import importlib
import json
from datetime import date, datetime, timedelta, timezone

import pytest

from services.common import chinatime, crime
from services.common.errors import ERROR_CODES, DomainError, NaiveTimeError
from services.common.facts import Fact
from services.common.qualification import Credential, Holder, Suspension, can_act, holder_from_payload
from services.penalty.domain.settings import PenaltySettings
from services.personnel.domain import PersonnelSettings
from services.registry.domain import RegistrySettings

CST = chinatime.CST


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_domain_error_uses_the_one_code_vocabulary():
    for module in ("services.personnel.domain", "services.registry.domain", "services.penalty.domain.case",
                   "services.penalty.domain.rules"):
        importlib.import_module(module)
    codes = {sub.code for sub in _subclasses(DomainError)} | {DomainError.code}
    assert codes <= set(ERROR_CODES), codes - set(ERROR_CODES)
    err = DomainError("x", code="not_owner", field="dept")
    assert err.violations() == [{"field": "dept", "rule": "not_owner", "message": "x"}]


def test_one_fact_value_round_trips_with_its_arrival():
    f = Fact("e1", "officer.registered", datetime(2026, 3, 1, 9, tzinfo=CST), "511322-scjg", {"officer_id": "O1"},
             seq=4, source="s", received_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    again = Fact.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and again.waiting_since == f.received_at
    with pytest.raises(NaiveTimeError):
        Fact("e2", "x", datetime(2026, 3, 1), "d", {})


def test_china_time_helpers():
    assert chinatime.local_date(datetime(2026, 3, 1, 17, tzinfo=timezone.utc)) == date(2026, 3, 2)
    assert chinatime.day_start(date(2026, 3, 2)).isoformat() == "2026-03-02T00:00:00+08:00"
    assert chinatime.month_day_in(2025, chinatime.parse_month_day("02-29", "x")) == date(2025, 2, 28)
    with pytest.raises(NaiveTimeError):
        chinatime.local_date(datetime(2026, 3, 1))


@pytest.mark.parametrize("cls, good, bad", [
    (PenaltySettings, {"major_kinds": ["closure"]}, {"no_such": 1}),
    (PersonnelSettings, {"training_kinds": ["officer"]}, {"training_due": "13-40"}),
    (RegistrySettings, {"standards_filing_due": "07-30"}, {"min_tiers": 0}),
])
def test_every_settings_class_is_built_from_a_mapping_the_same_way(cls, good, bad):
    made = cls.from_mapping(**good)
    assert all(isinstance(v, tuple) for k, v in made.to_dict().items() if k in cls.TUPLE_FIELDS)
    with pytest.raises(ValueError):
        cls.from_mapping(**bad)


def test_can_act_is_one_function_for_the_owner_and_for_a_projection():
    cred = Credential("C1", "省政府", "provincial", ("market",), (), date(2024, 1, 1), date(2029, 1, 1),
                      chinatime.day_start(date(2024, 1, 1)), "511322-scjg",
                      suspensions=[Suspension(chinatime.day_start(date(2026, 3, 1)), None, "调查")])
    holder = Holder("O1", "李明", "511322-scjg", "officer", True,
                    [(chinatime.day_start(date(2024, 1, 1)), "active")], {"C1": cred})
    at = datetime(2026, 3, 5, 10, tzinfo=CST)
    verdict = can_act(holder, "market", at)
    assert not verdict.allowed and [r.code for r in verdict.reasons] == ["suspended"]
    payload = {"officer_id": "O1", "name": "李明", "dept": "511322-scjg", "kind": "officer",
               "statuses": [{"since": "2024-01-01T00:00:00+08:00", "status": "active"}],
               "credentials": [cred.to_payload(at)]}
    assert can_act(holder_from_payload(payload), "market", at) == verdict
    assert can_act(holder_from_payload(payload), "market", at - timedelta(days=30)).allowed


def test_crime_threshold_matches_law_and_article_not_its_numbering_variants():
    th = {"bases": [{"law": "《中华人民共和国产品质量法》", "article": "第五十条"}]}
    assert crime.threshold_applies(th, "any-code", [("产品质量法", "第五十条第一款")])
    assert not crime.threshold_applies(th, "any-code", [("产品质量法", "第五十条之一")])
    assert not crime.threshold_applies(th, "any-code", [("食品安全法", "第五十条")])
    assert crime.threshold_applies({"item_codes": ["X"]}, "X", [])
