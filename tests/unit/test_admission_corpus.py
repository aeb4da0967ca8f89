"""The hostile-input corpus (tests/corpus/cases.jsonl) through admission: every case gets exactly
the outcome it was built for. Over AMQP and HTTP on real servers: tests/integration/test_hostile_corpus.py."""
from collections import Counter

import pytest

from contracts.catalog import Catalog
from services.gateway.admission import Admitted, Refused, admit
from tests.corpus.build import build, raw_bytes

CATALOG = Catalog()
ALL = build()  # built from the contracts as they are now (cases.jsonl is a snapshot for reading)


def test_corpus_is_large_and_covers_every_rule():
    assert len(ALL) >= 300
    rules = Counter(c["expect"].get("rule", "accepted") for c in ALL)
    for rule in ("accepted", "calendar_date", "year_range", "date_order", "not_finite", "type", "control_chars",
                 "bidi_override", "zero_width_only", "lone_surrogate", "forbidden_key", "max_depth", "max_bytes",
                 "malformed_json", "dept_mismatch", "routing_key_mismatch"):
        assert rules[rule] >= 1, rule


def outcome(c: dict, channel: str):
    if channel == "amqp":
        return admit(CATALOG, raw_bytes(c), routing_key=c["routing_key"])
    return admit(CATALOG, raw_bytes(c), authenticated_dept=c["dept"])


def matches(result, expect: dict) -> bool:
    if expect["status"] == "accepted":
        return isinstance(result, Admitted)
    return isinstance(result, Refused) and any(
        v["rule"] == expect["rule"] and ("field" not in expect or v["field"] == expect["field"])
        for v in result.violations)


@pytest.mark.parametrize("channel", ["amqp", "http"])
def test_every_case_gets_its_outcome(channel):
    wrong = [(c["id"], c["expect"], getattr(r, "violations", "admitted")) for c in ALL if channel in c["channels"]
             for r in [outcome(c, channel)] if not matches(r, c["expect"])]
    assert wrong == []
