"""The compiled checks (contracts/compiled.py) against cerberus, on every contract of the catalog.

The compiled check may only say "valid" where cerberus (the catalog's ContractValidator) says valid:
it is compared with cerberus on the contracts' examples, the simulator's workload, the hostile
corpus, hand-made mutations of every field (wrong types, None, bounds, regexes, nested lists and
dicts, NaN/inf, huge ints, bool-as-int, deep nesting, unknown and missing fields) and hypothesis's
hostile mutations. It must also say "valid" for the valid events, or it would spare nothing.
"""
from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from contracts.catalog import ENVELOPE_SCHEMA, Catalog, ContractError, ContractValidator, strict_regex
from contracts.compiled import compile_schema
from contracts.events.registry import TIER
from services.simulator.bench import SERVICES, workload
from tests.corpus.build import build, raw_bytes
from tests.corpus.strategies import mutated, valid_envelope

CATALOG = Catalog()
CONTRACTS = sorted(CATALOG.contracts.values(), key=lambda c: (c.type, c.version))
WORKLOAD = workload(400, SERVICES, seed=7, run_id="hc")[0]

HOSTILE = [None, True, False, 0, 1, -1, 2, 65, 366, 1001, 10**30, -10**30, 0.5, -0.5, 1e300, math.nan, math.inf,
           -math.inf, "", " ", "x", "a" * 65, "名" * 2001, "A" * 501, "2024-02-30", "2024-02-29", "1948-12-31",
           "2101-01-01", "2026-03-02T10:15:00+08:00", "2026-03-02T24:00:00Z", "2026-03-02", "511322-scjg",
           "511322-scjg\n", "org", "fine", "seizure", "http://x", "https://a b", "37032200123", "-abc", "a.b",
           "$where", [], [None], [1], ["x"], ["fine", "nope"], ["a" * 65], ["x"] * 51, {}, {"a": 1}, {"$gt": ""},
           {"sales_amount": 8600}, {"Bad": 1}, {"x": -1}, {"x": None}, {"k": [1, {"d": [[[[]]]]}]},
           {"type": "org", "id": "91370322MA3C4XYZ1K", "name": "名"}, {"type": "org", "id": "short", "name": "名"}]


def cerberus_accepts(validator, doc) -> bool:
    return bool(validator.validate(doc, normalize=False))


def pairs(env: dict):
    """(compiled, cerberus validator, document) for an envelope and, when its contract exists, its payload."""
    yield CATALOG._envelope_fast, CATALOG._envelope, env
    key = (env.get("type"), env.get("schema_version"))
    if all(type(k) in (str, int) for k in key) and key in CATALOG.contracts and isinstance(env.get("payload"), dict):
        yield CATALOG._payload_fast[key], CATALOG._payload[key], env["payload"]


def assert_never_more_lenient(env: dict) -> int:
    """Compiled says valid only where cerberus does; returns how often it said valid."""
    fast_yes = 0
    for fast, slow, doc in pairs(env):
        if fast(doc):
            fast_yes += 1
            assert cerberus_accepts(slow, doc), (doc, slow._errors)
    return fast_yes


def envelope_of(contract, payload) -> dict:
    return {"event_id": "0b7e7a4c-5a4e-4c11-9d2e-1f3a5b7c9d0e", "type": contract.type,
            "schema_version": contract.version, "occurred_at": "2026-03-02T10:15:00+08:00",
            "dept": "370322-scjg", "source": "test", "payload": payload}


def mutations(value, depth=0):
    """Every document that differs from `value` by one hostile change at any path."""
    if isinstance(value, dict):
        for key in list(value):
            for bad in HOSTILE:
                yield {**value, key: bad}
            yield {k: v for k, v in value.items() if k != key}
            for inner in mutations(value[key], depth + 1):
                yield {**value, key: inner}
        yield {**value, "unknown_field": 1}
        yield {**value, "": 1}
    elif isinstance(value, list):
        for i in range(len(value)):
            for bad in HOSTILE:
                yield value[:i] + [bad] + value[i + 1:]
            for inner in mutations(value[i], depth + 1):
                yield value[:i] + [inner] + value[i + 1:]
        yield value + [None]
        yield value * 60


def test_every_example_and_workload_event_takes_the_fast_path():
    events = [envelope_of(c, c.example) for c in CONTRACTS] + WORKLOAD
    assert len({e["type"] for e in WORKLOAD}) >= 10
    for env in events:
        checked = list(pairs(env))
        assert len(checked) == 2, env["type"]
        for fast, slow, doc in checked:
            assert cerberus_accepts(slow, doc), (doc, slow._errors)
            assert fast(doc), doc


def test_check_gives_the_same_answer_as_cerberus_alone_for_valid_events():
    for env in WORKLOAD[:200]:
        contract, accepted = CATALOG.check(copy.deepcopy(env), direction=None)
        assert (contract.type, contract.version) == (env["type"], env["schema_version"])


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: f"{c.type}.v{c.version}")
def test_one_change_anywhere_never_makes_it_more_lenient_than_cerberus(contract):
    samples = [contract.example] + [e["payload"] for e in WORKLOAD if e["type"] == contract.type][:3]
    said_valid = said_invalid = 0
    for payload in samples:
        for bad in mutations(payload):
            for fast, slow, doc in pairs(envelope_of(contract, bad)):
                if fast(doc):
                    said_valid += 1
                    assert cerberus_accepts(slow, doc), (doc, slow._errors)
                else:
                    said_invalid += 1
    assert said_invalid > 0 and said_valid > 0


def test_envelope_mutations_never_more_lenient():
    env = WORKLOAD[0]
    rejected = 0
    for bad in mutations({k: v for k, v in env.items() if k != "payload"}):
        doc = {**bad, "payload": env["payload"]}
        if CATALOG._envelope_fast(doc):
            assert cerberus_accepts(CATALOG._envelope, doc), (doc, CATALOG._envelope._errors)
        else:
            rejected += 1
    for bad in (None, [], "x", 1, {"payload": {}}, {**env, "payload": []}, {**env, "schema_version": True},
                {**env, "schema_version": 1.0}, {**env, "dept": "511322-scjg\n"}):
        assert not CATALOG._envelope_fast(bad)
    assert rejected > 100


def test_the_hostile_corpus_never_more_lenient():
    accepted = 0
    for case in build():
        try:
            env = json.loads(raw_bytes(case))
        except (ValueError, RecursionError):  # malformed or nested too deep for the parser: never validated
            continue
        if isinstance(env, dict):
            accepted += assert_never_more_lenient(env)
    assert accepted > 50


def test_unmodelled_rules_and_types_always_defer_to_cerberus():
    def calendar(kind, text):
        return True
    for schema in ({"a": {"type": "string", "empty": False}}, {"a": {"type": ["string", "integer"]}},
                   {"a": {"anyof": [{"type": "string"}]}}, {"a": {"type": "datetime"}}, {"a": {"maxlength": 3}},
                   {"a": {"type": "dict", "allow_unknown": True}}, {"a": {"type": "string", "calendar": "week"}}):
        check = compile_schema(schema, calendar)
        assert not check({"a": "x"}) and not check({"a": {}}) and not check({"a": 1})
    check = compile_schema(strict_regex(ENVELOPE_SCHEMA), calendar)
    assert not check({"event_id": 1})


def test_excludes_follow_cerberus():
    schema = strict_regex(TIER["schema"])  # a tier: exactly one of `amount` and `multiple`
    fast, slow = compile_schema(schema, lambda kind, text: True), ContractValidator(schema, allow_unknown=False)
    base = {"tier": "t1", "name": "一般", "conditions": "情节一般"}
    amount, multiple = {"min": 0, "max": 10}, {"min_multiple": 1, "max_multiple": 3}
    for doc in ({**base, "amount": amount}, {**base, "multiple": multiple}):
        assert fast(doc) and cerberus_accepts(slow, doc)
    for doc in (base, {**base, "amount": amount, "multiple": multiple}, {**base, "amount": None},
                {**base, "amount": None, "multiple": multiple}, {**base, "amount": {"min": 0}},
                {"amount": amount, "name": "x", "conditions": "y"}):
        assert not fast(doc)
        assert not cerberus_accepts(slow, doc), doc


def test_a_rejection_still_names_field_and_rule():
    env = envelope_of(CONTRACTS[0], {**CONTRACTS[0].example, "nope": 1})
    with pytest.raises(ContractError) as err:
        CATALOG.check(env, direction=None)
    assert {"field": "payload.nope", "rule": "unknown", "message": "不允许的字段"} in err.value.to_list()


HYPO = settings(max_examples=10, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: f"{c.type}.v{c.version}")
@HYPO
@given(data=st.data())
def test_generated_and_mutated_events_agree(contract, data):
    env = data.draw(valid_envelope(contract), label="valid")
    for fast, slow, doc in pairs(env):
        assert cerberus_accepts(slow, doc)
        assert fast(doc), doc
    assert_never_more_lenient(data.draw(mutated(env), label="mutated"))
