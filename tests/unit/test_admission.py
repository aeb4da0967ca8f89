"""Admission at the gateway: every kind of bad input is refused with the field and the rule."""
import json
import uuid

import pytest

from contracts.catalog import Catalog
from contracts.fields import ID, NAME, req
from contracts.model import EventContract
from services.gateway.admission import Admitted, Refused, admit

SAMPLE = EventContract(
    type="sample.recorded", version=1, owner="test", doc="A test event.",
    schema={"sample_id": req(ID), "name": req(NAME), "tags": {"type": "list", "maxlength": 3,
                                                              "schema": {"type": "string", "maxlength": 10}}},
    example={"sample_id": "S1", "name": "样例"},
)


@pytest.fixture(scope="module")
def catalog():
    return Catalog([SAMPLE], max_bytes=4096)


def envelope(**over):
    env = {"event_id": str(uuid.uuid4()), "type": "sample.recorded", "schema_version": 1,
           "occurred_at": "2026-03-01T09:00:00+08:00", "dept": "511322-scjg", "source": "scjg-case-system",
           "payload": {"sample_id": "S1", "name": "样例"}}
    env.update(over)
    return env


def refused(result, rule, field=None):
    assert isinstance(result, Refused), result
    rules = [(v["rule"], v["field"]) for v in result.violations]
    assert any(r == rule and (field is None or f == field) for r, f in rules), rules
    return result


def test_valid_event_is_admitted(catalog):
    env = envelope()
    result = admit(catalog, json.dumps(env).encode(), routing_key="511322-scjg.sample.recorded")
    assert isinstance(result, Admitted) and result.envelope == env


def test_malformed_json_is_refused(catalog):
    refused(admit(catalog, b"{not json", routing_key="511322-scjg.sample.recorded"), "malformed_json")


def test_non_object_is_refused(catalog):
    refused(admit(catalog, b"[1,2]", routing_key="511322-scjg.x"), "not_an_object")


def test_oversized_message_is_refused(catalog):
    env = envelope(payload={"sample_id": "S1", "name": "x" * 5000})
    r = refused(admit(catalog, json.dumps(env).encode(), routing_key="511322-scjg.sample.recorded"), "max_bytes")
    assert r.dept == "511322-scjg"


def test_unknown_type_is_refused(catalog):
    refused(admit(catalog, envelope(type="sample.deleted"), routing_key="511322-scjg.sample.deleted"),
            "unknown_type", "type")


def test_unknown_version_is_refused(catalog):
    refused(admit(catalog, envelope(schema_version=2), routing_key="511322-scjg.sample.recorded"),
            "unknown_version")


def test_missing_and_extra_fields_are_refused(catalog):
    env = envelope(payload={"name": "样例", "colour": "红"})
    r = refused(admit(catalog, env, routing_key="511322-scjg.sample.recorded"), "required", "payload.sample_id")
    assert ("unknown", "payload.colour") in [(v["rule"], v["field"]) for v in r.violations]


def test_wrong_type_and_oversized_string_are_refused(catalog):
    refused(admit(catalog, envelope(payload={"sample_id": 7, "name": "样例"}), routing_key="511322-scjg.sample.recorded"),
            "type", "payload.sample_id")
    refused(admit(catalog, envelope(payload={"sample_id": "S1", "name": "名" * 101}),
                  routing_key="511322-scjg.sample.recorded"), "maxlength", "payload.name")


def test_dollar_and_dotted_keys_are_refused(catalog):
    env = envelope(payload={"sample_id": "S1", "name": "x", "$where": "1"})
    refused(admit(catalog, env, routing_key="511322-scjg.sample.recorded"), "forbidden_key", "payload.$where")
    env = envelope(payload={"sample_id": "S1", "name": "x", "a.b": 1})
    refused(admit(catalog, env, routing_key="511322-scjg.sample.recorded"), "forbidden_key")


def test_deep_nesting_is_refused(catalog):
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["n"] = {}
        node = node["n"]
    refused(admit(catalog, envelope(payload={"sample_id": "S1", "name": "x", "extra": deep}),
                  routing_key="511322-scjg.sample.recorded"), "max_depth")


def test_dept_must_match_routing_key(catalog):
    env = envelope(dept="511322-sthj")
    r = refused(admit(catalog, env, routing_key="511322-scjg.sample.recorded"), "dept_mismatch", "dept")
    assert r.dept == "511322-scjg"  # the rejection goes back to the publisher that sent it


def test_routing_key_must_name_the_type(catalog):
    refused(admit(catalog, envelope(), routing_key="511322-scjg.other.thing"), "routing_key_mismatch")


def test_http_caller_dept_must_match(catalog):
    refused(admit(catalog, envelope(), authenticated_dept="511322-sthj"), "dept_mismatch")
    assert isinstance(admit(catalog, envelope(), authenticated_dept="511322-scjg"), Admitted)


def test_bad_envelope_fields_are_named(catalog):
    r = refused(admit(catalog, envelope(event_id="not-a-uuid", occurred_at="yesterday"),
                      routing_key="511322-scjg.sample.recorded"), "regex")
    fields = {v["field"] for v in r.violations}
    assert {"event_id", "occurred_at"} <= fields


def test_trailing_newline_does_not_slip_through_a_pattern(catalog):
    # cerberus matches with Python's `$`, which accepts one trailing newline
    refused(admit(catalog, envelope(dept="511322-scjg\n"), authenticated_dept=None), "regex", "dept")
    refused(admit(catalog, envelope(payload={"sample_id": "S1\n", "name": "x"}),
                  routing_key="511322-scjg.sample.recorded"), "regex", "payload.sample_id")
