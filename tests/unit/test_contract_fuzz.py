"""Property-based fuzzing of every contract in the catalog (hypothesis).

- valid stays valid: events generated from a contract's schema are admitted, round-trip through
  JSON unchanged (up to NFC) and are a fixed point of admission;
- nothing crashes: any one hostile change to a valid event, and any bytes at all, give either an
  admission or a refusal whose violations are structured (field, rule, Chinese message) and carry
  no exception text.
The integration side (tests/integration/test_hostile_corpus.py) shows every refusal is kept in
quarantine with its reason.
"""
from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from contracts.catalog import Catalog
from services.gateway.admission import Admitted, Refused, admit
from tests.corpus.strategies import DEPT, encode, mutated, valid_envelope

CATALOG = Catalog()
INGRESS = sorted((c for c in CATALOG.contracts.values() if c.direction == "ingress"), key=lambda c: (c.type, c.version))
FAST = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
LEAKS = ("Error", "Traceback", "Exception", "line 1", "Expecting")


def nfc(value):
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nfc(v) for v in value]
    return value


def assert_well_formed(result) -> None:
    assert isinstance(result, (Admitted, Refused)), result
    if isinstance(result, Refused):
        assert result.violations, "a refusal names at least one violation"
        for v in result.violations:
            assert set(v) == {"field", "rule", "message"}
            assert all(isinstance(v[k], str) and v[k] for k in ("field", "rule", "message")), v
            assert not any(leak in v["message"] for leak in LEAKS), v


def test_every_ingress_contract_is_fuzzed():
    assert len(INGRESS) >= 40 and len({c.type for c in INGRESS}) == len(INGRESS)


@pytest.mark.parametrize("contract", INGRESS, ids=lambda c: f"{c.type}.v{c.version}")
@FAST
@given(data=st.data())
def test_valid_stays_valid_and_no_mutation_crashes(contract, data):
    key = f"{DEPT}.{contract.type}"
    env = data.draw(valid_envelope(contract), label="valid")
    result = admit(CATALOG, json.dumps(env, ensure_ascii=False).encode(), routing_key=key)
    assert isinstance(result, Admitted), (env, getattr(result, "violations", None))
    assert result.envelope == nfc(env)
    again = admit(CATALOG, json.dumps(result.envelope).encode(), routing_key=key)
    assert isinstance(again, Admitted) and again.envelope == result.envelope  # a fixed point

    bad = data.draw(mutated(env), label="mutated")
    result = admit(CATALOG, encode(bad), routing_key=key)
    assert_well_formed(result)
    if isinstance(result, Admitted):  # whatever is admitted is admitted again, unchanged
        again = admit(CATALOG, json.dumps(result.envelope).encode(), routing_key=key)
        assert isinstance(again, Admitted) and again.envelope == result.envelope


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_bytes_are_admitted_or_refused_never_raised(raw):
    assert_well_formed(admit(CATALOG, raw, routing_key=f"{DEPT}.officer.registered"))
