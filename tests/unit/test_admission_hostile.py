"""What is accepted is final: everything checkable from the event alone is refused at the ingress
with the field and the rule (real dates, date order, finite numbers, no booleans as integers,
years in range, clean strings), parsing is bounded, and names are kept in NFC."""
import json
import unicodedata
import uuid

import pytest

from contracts.catalog import Catalog, MAX_DEPTH
from contracts.fields import DATE, DATETIME, ID, NAME, opt, req
from contracts.model import EventContract
from services.gateway.admission import Admitted, Refused, admit

SAMPLE = EventContract(
    type="sample.recorded", version=1, owner="test", doc="A test event.",
    schema={"sample_id": req(ID), "name": req(NAME), "on": opt(DATE), "at": opt(DATETIME),
            "valid_from": opt(DATE), "valid_to": opt(DATE), "count": opt({"type": "integer"}),
            "amount": opt({"type": "number"}),
            "window": opt({"type": "dict", "schema": {"from": req(DATETIME, nullable=True),
                                                      "to": req(DATETIME, nullable=True)}}),
            "notes": opt({"type": "list", "schema": {"type": "dict", "allow_unknown": True}})},
    example={"sample_id": "S1", "name": "样例"},
)
RK = "511322-scjg.sample.recorded"


@pytest.fixture(scope="module")
def catalog():
    return Catalog([SAMPLE], max_bytes=4096, years=(1949, 2100))


def envelope(payload=None, **over):
    env = {"event_id": str(uuid.uuid4()), "type": "sample.recorded", "schema_version": 1,
           "occurred_at": "2026-03-01T09:00:00+08:00", "dept": "511322-scjg", "source": "scjg-case-system",
           "payload": {"sample_id": "S1", "name": "样例", **(payload or {})}}
    env.update(over)
    return env


def outcome(catalog, env) -> Admitted | Refused:
    raw = env if isinstance(env, (bytes, str)) else json.dumps(env).encode()  # \u escapes: any code point
    return admit(catalog, raw, routing_key=RK)


def rules(result) -> set[tuple[str, str]]:
    assert isinstance(result, Refused), result
    for v in result.violations:  # every violation is structured and explained in Chinese
        assert set(v) == {"field", "rule", "message"} and v["message"]
    return {(v["field"], v["rule"]) for v in result.violations}


@pytest.mark.parametrize("on", ["2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31"])
def test_impossible_calendar_dates_are_refused(catalog, on):
    assert ("payload.on", "calendar_date") in rules(outcome(catalog, envelope({"on": on})))


def test_leap_day_is_a_real_date(catalog):
    assert isinstance(outcome(catalog, envelope({"on": "2024-02-29"})), Admitted)


@pytest.mark.parametrize("at", ["2024-01-01T24:00:00Z", "2024-01-01T10:61:00+08:00", "2024-01-01T10:00:00+25:00"])
def test_impossible_times_are_refused(catalog, at):
    assert ("payload.at", "calendar_date") in rules(outcome(catalog, envelope({"at": at})))


@pytest.mark.parametrize("field,value", [("on", "9999-12-31"), ("on", "1900-01-01"), ("at", "9999-12-31T23:59:59Z")])
def test_years_out_of_range_are_refused(catalog, field, value):
    result = outcome(catalog, envelope({field: value}))
    assert (f"payload.{field}", "year_range") in rules(result)
    assert "1949" in result.violations[0]["message"]


def test_envelope_time_is_checked_too(catalog):
    assert ("occurred_at", "year_range") in rules(outcome(catalog, envelope(occurred_at="9999-12-31T23:59:59Z")))
    assert ("occurred_at", "calendar_date") in rules(outcome(catalog, envelope(occurred_at="2024-02-30T09:00:00Z")))


def test_year_range_is_configuration():
    wide = Catalog([SAMPLE], years=(1900, 9999))
    assert isinstance(outcome(wide, envelope({"on": "9999-12-31"})), Admitted)


def test_date_pairs_must_not_run_backwards(catalog):
    assert ("payload.valid_to", "date_order") in rules(
        outcome(catalog, envelope({"valid_from": "2024-05-01", "valid_to": "2024-04-30"})))
    assert isinstance(outcome(catalog, envelope({"valid_from": "2024-05-01", "valid_to": "2024-05-01"})), Admitted)
    assert ("payload.window.to", "date_order") in rules(outcome(catalog, envelope(
        {"window": {"from": "2024-05-01T10:00:00+08:00", "to": "2024-05-01T09:00:00+08:00"}})))
    # an open end is no order problem
    assert isinstance(outcome(catalog, envelope({"window": {"from": "2024-05-01T10:00:00+08:00", "to": None}})),
                      Admitted)


def test_real_contract_date_pairs_are_checked():
    from contracts.catalog import Catalog as Full

    catalog = Full()
    from contracts.asyncapi import example_envelope

    checked = 0
    for contract in catalog.contracts.values():
        if contract.direction != "ingress":
            continue
        for start in [k for k in contract.schema if k.endswith("_from")]:
            end = start[:-4] + "to"
            if end not in contract.schema:
                continue
            env = example_envelope(contract)
            env["payload"] = {**env["payload"], start: "2024-05-02", end: "2024-05-01"}
            result = admit(catalog, env, routing_key=f"{env['dept']}.{env['type']}")
            assert (f"payload.{end}", "date_order") in rules(result), contract.type
            checked += 1
    assert checked >= 3  # credential validity, discretion standards, leniency lists


@pytest.mark.parametrize("text", ['{"amount": NaN}', '{"amount": Infinity}', '{"amount": -Infinity}',
                                  '{"amount": 1e400}'])
def test_non_finite_numbers_are_refused(catalog, text):
    env = envelope()
    raw = json.dumps(env, ensure_ascii=False).replace('"payload": {', '"payload": ' + text[:-1] + ", ")
    assert ("payload.amount", "not_finite") in rules(outcome(catalog, raw.encode()))


def test_booleans_are_not_integers(catalog):
    assert ("schema_version", "type") in rules(outcome(catalog, envelope(schema_version=True)))
    assert ("payload.count", "type") in rules(outcome(catalog, envelope({"count": False})))
    assert ("payload.amount", "type") in rules(outcome(catalog, envelope({"amount": True})))


@pytest.mark.parametrize("name,rule", [
    ("李\x00明", "control_chars"), ("李\x1b[31m明", "control_chars"), ("李\x85明", "control_chars"),
    ("李\u202e明", "bidi_override"), ("\u2066admin\u2069", "bidi_override"),
    ("\u200b\u200b", "zero_width_only"), ("\ufeff \u200d", "zero_width_only"),
    ("李\ud800明", "lone_surrogate"),
])
def test_hostile_strings_are_refused(catalog, name, rule):
    assert ("payload.name", rule) in rules(outcome(catalog, envelope({"name": name})))


def test_lone_surrogate_escape_is_refused_before_dispatch(catalog):
    raw = json.dumps(envelope()).replace('"S1"', '"S1", "name2": "\\udc00"').encode()
    assert ("payload.name2", "lone_surrogate") in rules(outcome(catalog, raw))


def test_tabs_and_newlines_stay_allowed_in_text(catalog):
    assert isinstance(outcome(catalog, envelope({"name": "第一行\n第二行\t完"})), Admitted)


def test_names_are_normalised_to_nfc(catalog):
    decomposed = unicodedata.normalize("NFD", "Zoë 李")
    assert decomposed != "Zoë 李"
    result = outcome(catalog, envelope({"name": decomposed}))
    assert isinstance(result, Admitted) and result.envelope["payload"]["name"] == "Zoë 李"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 3, 5000, 200_000])
def test_deep_nesting_is_refused_while_parsing(depth):
    catalog = Catalog([SAMPLE], max_bytes=1_000_000)
    raw = ('{"payload": ' + "[" * depth + "]" * depth + "}").encode()
    assert ("$message", "max_depth") in rules(outcome(catalog, raw))


def test_deep_nesting_inside_strings_is_not_nesting(catalog):
    assert isinstance(outcome(catalog, envelope({"name": "[[[[[[[[[[[[{{{{{{{{{{"})), Admitted)


def test_parser_error_text_does_not_reach_the_answer(catalog):
    result = outcome(catalog, b'{"event_id": "x", oops}')
    assert rules(result) == {("$message", "malformed_json")}
    text = json.dumps(result.violations, ensure_ascii=False)
    assert "Expecting" not in text and "line 1" not in text and "Error" not in text


def test_invalid_utf8_is_malformed(catalog):
    assert ("$message", "malformed_json") in rules(outcome(catalog, b'{"a": "\xff\xfe"}'))
