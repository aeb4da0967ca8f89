"""The AsyncAPI document: up to date, complete, and saying exactly what the cerberus contracts say."""
import copy
import json
import re

import pytest

from contracts import asyncapi
from contracts.catalog import Catalog, ContractError, load_contracts

DOC = asyncapi.build()
CATALOG = Catalog()


def test_checked_in_document_is_current():
    current = asyncapi.CHECKED_IN.read_text(encoding="utf-8") if asyncapi.CHECKED_IN.exists() else ""
    assert current == asyncapi.render(), (
        f"contracts/asyncapi.json is stale or missing; regenerate it: {asyncapi.REGENERATE_HINT}")


def test_every_contract_is_a_message_with_its_doc_and_example():
    messages = DOC["components"]["messages"]
    contracts = load_contracts()
    assert {f"{c.type}.v{c.version}" for c in contracts} | {"rejection", "refused"} == set(messages)
    for c in contracts:
        msg = messages[f"{c.type}.v{c.version}"]
        assert msg["name"] == f"{c.type}.v{c.version}" and msg["summary"] == c.doc
        example = msg["examples"][0]["payload"]
        assert example["payload"] == c.example and example["type"] == c.type
        assert example["schema_version"] == c.version
        # the example envelope is one the gateway itself would accept
        CATALOG.validate(example, direction=None)


def test_channels_route_ingress_rejections_and_internal_events():
    channels = DOC["channels"]
    refs = lambda op: {r["$ref"].rsplit("/", 1)[1] for r in op["message"].get("oneOf", [op["message"]])}  # noqa: E731
    ingress = {f"{c.type}.v{c.version}" for c in load_contracts() if c.direction == "ingress"}
    assert refs(channels["ingress"]["publish"]) == ingress
    assert channels["ingress"]["bindings"]["amqp"]["exchange"] == {
        "name": "ingress", "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    assert channels["ingress"]["publish"]["bindings"]["amqp"]["cc"] == ["<dept>.<type>"]
    assert refs(channels["ingress.rejections"]["subscribe"]) == {"rejection", "refused"}
    assert channels["ingress.rejections"]["subscribe"]["bindings"]["amqp"]["cc"] == ["<dept>"]
    notice = DOC["components"]["schemas"]["RejectionNotice"]
    assert set(notice["required"]) == {"event_id", "status", "reason", "violations", "quarantine_id", "channel",
                                       "routing_key", "rejected_at"}
    assert DOC["components"]["schemas"]["Violation"]["required"] == ["field", "rule", "message"]
    assert refs(channels["personnel.events"]["subscribe"]) >= {"officer.changed.v1", "finding.raised.v1"}
    assert refs(channels["registry.events"]["subscribe"]) >= {"item.changed.v1", "finding.resolved.v1"}
    assert refs(channels["gateway.events"]["subscribe"]) == ingress
    for name, channel in channels.items():
        if name not in ("ingress", "ingress.rejections"):
            assert "publish" not in channel
            assert all(not r.startswith(("officer.registered", "case.filed")) or name == "gateway.events"
                       for r in refs(channel["subscribe"]))


def test_cerberus_rules_are_translated():
    schemas = DOC["components"]["schemas"]
    officer = schemas["officer.registered.v1.payload"]
    assert officer["additionalProperties"] is False
    assert {"officer_id", "name", "agency_id", "kind"} <= set(officer["required"])
    assert officer["properties"]["kind"]["enum"] == ["officer", "auxiliary", "supervisor"]
    assert officer["properties"]["officer_id"]["pattern"].startswith("^")
    assert officer["properties"]["officer_id"]["maxLength"] == 64

    case = schemas["case.filed.v1.payload"]["properties"]
    assert case["procedure"]["type"] == ["string", "null"] and case["procedure"]["enum"][-1] is None
    assert case["party"]["properties"]["type"]["enum"] and case["party"]["required"] == ["type", "id", "name"]
    assert case["officers"]["items"]["pattern"] and case["officers"]["maxItems"] == 20
    assert case["measures"]["propertyNames"]["pattern"] == "^[a-z][a-z0-9_]{0,39}$"
    assert case["measures"]["additionalProperties"] == {"type": "number", "minimum": 0,
                                                        "maximum": 1_000_000_000_000}

    tiers = schemas["standard.published.v1.payload"]["properties"]["tiers"]
    assert (tiers["minItems"], tiers["maxItems"]) == (1, 10)
    tier = tiers["items"]
    assert "amount" not in tier["required"] and "multiple" not in tier["required"]
    assert {"anyOf": [{"required": ["amount"]}, {"required": ["multiple"]}]} in tier["allOf"]
    assert {"not": {"required": ["amount", "multiple"]}} in tier["allOf"]

    envelope = schemas["Envelope"]
    assert envelope["properties"]["schema_version"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert envelope["required"] == ["event_id", "type", "schema_version", "occurred_at", "dept", "source", "payload"]


def test_unanchored_regex_is_anchored_and_unknown_rules_refuse():
    assert asyncapi.field_schema({"type": "string", "regex": "[a-z]+"})["pattern"] == "^(?:[a-z]+)$"
    assert asyncapi.field_schema({"type": "list", "allowed": ["a", "b"]}) == {"type": "array",
                                                                             "items": {"enum": ["a", "b"]}}
    assert asyncapi.field_schema({"type": "string", "empty": False}) == {"type": "string", "minLength": 1}
    with pytest.raises(asyncapi.UntranslatableRule):
        asyncapi.field_schema({"type": "string", "coerce": int})
    with pytest.raises(asyncapi.UntranslatableRule):
        asyncapi.field_schema({"type": "datetime"})


# ---- the document and the catalog agree on what is valid ---------------------------------------
_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def _is_type(value, name: str) -> bool:
    if name == "null":
        return value is None
    if name in ("integer", "number"):
        if isinstance(value, bool):
            return False
        return isinstance(value, int) if name == "integer" else isinstance(value, (int, float))
    return isinstance(value, _TYPES[name])


def json_errors(schema: dict, value, root: dict = DOC) -> list[str]:
    """A small JSON Schema checker for exactly the keywords the generator emits."""
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return json_errors(target, value, root)
    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"type {names}"]
    if "const" in schema and value != schema["const"]:
        errors.append("const")
    if "enum" in schema and value not in schema["enum"]:
        errors.append("enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append("pattern")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append("length")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            errors.append("range")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append("items count")
        for item in value if "items" in schema else []:
            errors += json_errors(schema["items"], item, root)
    if isinstance(value, dict):
        if len(value) < schema.get("minProperties", 0) or len(value) > schema.get("maxProperties", len(value)):
            errors.append("properties count")
        props = schema.get("properties", {})
        errors += [f"required {k}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if "propertyNames" in schema:
                errors += json_errors(schema["propertyNames"], key, root)
            if key in props:
                errors += json_errors(props[key], item, root)
            elif schema.get("additionalProperties") is False:
                errors.append(f"additional {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += json_errors(schema["additionalProperties"], item, root)
    for sub in schema.get("allOf", []):
        errors += json_errors(sub, value, root)
    if "anyOf" in schema and all(json_errors(s, value, root) for s in schema["anyOf"]):
        errors.append("anyOf")
    if "oneOf" in schema and sum(not json_errors(s, value, root) for s in schema["oneOf"]) != 1:
        errors.append("oneOf")
    if "not" in schema and not json_errors(schema["not"], value, root):
        errors.append("not")
    return errors


def _cerberus_ok(envelope: dict) -> bool:
    try:
        CATALOG.validate(envelope, direction=None)
        return True
    except ContractError:
        return False


def _mutations(envelope: dict):
    payload = envelope["payload"]
    for key in list(payload):
        for change in ("drop", None, "x" * 3000, 12345, [], {"zz": 1}):
            mutated = copy.deepcopy(envelope)
            if change == "drop":
                del mutated["payload"][key]
            else:
                mutated["payload"][key] = change
            yield f"{key}={str(change)[:10]}", mutated
    extra = copy.deepcopy(envelope)
    extra["payload"]["zz_unknown"] = 1
    yield "unknown field", extra
    for key, bad in (("event_id", "not-a-uuid"), ("dept", "SCJG"), ("schema_version", 0), ("occurred_at", "today")):
        mutated = copy.deepcopy(envelope)
        mutated[key] = bad
        yield key, mutated


@pytest.mark.parametrize("contract", load_contracts(), ids=lambda c: f"{c.type}.v{c.version}")
def test_document_and_catalog_agree_on_examples_and_mutations(contract):
    name = asyncapi.message_name(contract)
    schema = DOC["components"]["messages"][name]["payload"]
    example = asyncapi.example_envelope(contract)
    assert json_errors(schema, example) == [] and _cerberus_ok(example)
    refused = 0
    for label, mutated in _mutations(example):
        by_schema = not json_errors(schema, mutated)
        assert by_schema == _cerberus_ok(mutated), f"{name} {label}: schema says {by_schema}"
        refused += not by_schema
    assert refused > 0


def test_exactly_one_of_amount_and_multiple_like_cerberus():
    contract = next(c for c in load_contracts() if c.type == "standard.published")
    schema = DOC["components"]["messages"]["standard.published.v1"]["payload"]
    base = asyncapi.example_envelope(contract)
    for change in ("both", "neither", "multiple_only"):
        env = copy.deepcopy(base)
        tier = env["payload"]["tiers"][0]
        if change == "both":
            tier["multiple"] = {"min_multiple": 1, "max_multiple": 2}
        elif change == "neither":
            del tier["amount"]
        else:
            del tier["amount"]
            tier["multiple"] = {"min_multiple": 1, "max_multiple": 2}
        assert (not json_errors(schema, env)) == _cerberus_ok(env), change


def test_rejection_example_matches_its_schema():
    msg = DOC["components"]["messages"]["rejection"]
    assert json_errors(msg["payload"], msg["examples"][0]["payload"]) == []
    json.dumps(DOC)  # serialisable as is
