"""The AsyncAPI 2.6 document of the whole catalog, generated from the cerberus contracts.

`python -m contracts.asyncapi > contracts/asyncapi.json` regenerates the checked-in copy;
`python -m contracts.asyncapi --check` exits non-zero when that copy is stale. The gateway
serves the same document at `GET /api/v1/asyncapi.json`.

Every (type, version) becomes one message `<type>.v<version>`: its payload is the envelope
with that contract's payload schema, translated rule by rule from cerberus to JSON Schema.
A cerberus rule this module does not know raises, so a contract can never be published with
a constraint silently missing from the document.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from contracts.catalog import ENVELOPE_SCHEMA, MAX_DEPTH, MAX_MESSAGE_BYTES, RULE_MESSAGES, load_contracts
from contracts.model import EventContract

ASYNCAPI_VERSION = "2.6.0"
DOCUMENT_VERSION = "1.0.0"
CHECKED_IN = Path(__file__).with_name("asyncapi.json")
REGENERATE_HINT = "python -m contracts.asyncapi > contracts/asyncapi.json"

INGRESS_EXCHANGE = "ingress"
REJECTIONS_EXCHANGE = "ingress.rejections"
# The exchanges nameko services dispatch on (`<service>.events`, routing key = event type) come
# from the declared services (services/kernel/manifest.py): no channel for an undeclared service.
AMQP_BINDING_VERSION = "0.2.0"
EXAMPLE_DEPT = "511322-scjg"
EXAMPLE_OCCURRED_AT = "2024-05-06T09:30:00+08:00"
EXAMPLE_NAMESPACE = uuid.UUID("5f8f2f7e-3c1d-4d0e-9a51-7a6b8b0c2d41")

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "dict": "object", "list": "array"}
_LENGTH_KEYS = {"string": ("minLength", "maxLength"), "list": ("minItems", "maxItems"),
                "dict": ("minProperties", "maxProperties")}
# Rules that describe a field itself; `required` and `excludes` are read by the enclosing object.
_TRANSLATED = {"type", "required", "nullable", "maxlength", "minlength", "min", "max", "regex", "allowed",
               "schema", "keysrules", "valuesrules", "excludes", "empty", "calendar"}


class UntranslatableRule(ValueError):
    """A cerberus rule with no JSON Schema translation here: extend `field_schema` first."""


# ---- cerberus -> JSON Schema ----------------------------------------------------------------
def anchored(pattern: str) -> str:
    """cerberus matches a regex against the whole value; JSON Schema `pattern` searches."""
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern
    return f"^(?:{pattern})$"


def field_schema(rule: dict[str, Any], where: str = "") -> dict[str, Any]:
    """JSON Schema for one cerberus field definition."""
    unknown = set(rule) - _TRANSLATED
    if unknown:
        raise UntranslatableRule(f"{where or 'field'}: no JSON Schema translation for {sorted(unknown)}")
    declared = rule.get("type")
    kinds = [declared] if isinstance(declared, str) else list(declared or [])
    for kind in kinds:
        if kind not in _JSON_TYPES:
            raise UntranslatableRule(f"{where or 'field'}: cerberus type {kind!r}")
    kind = kinds[0] if len(kinds) == 1 else None
    nullable = bool(rule.get("nullable"))
    out: dict[str, Any] = {}
    if kinds:
        out["type"] = _json_type(kinds, nullable)
    if "allowed" in rule:
        values = list(rule["allowed"])
        if kind == "list":
            out["items"] = {"enum": values}
        else:
            out["enum"] = values + ([None] if nullable else [])
    if "regex" in rule:
        out["pattern"] = anchored(rule["regex"])
    if "calendar" in rule:  # a real date/time; the year range is the gateway's INGRESS_YEAR_MIN/MAX
        out["format"] = "date" if rule["calendar"] == "date" else "date-time"
    lo_key, hi_key = _LENGTH_KEYS.get(kind or "", (None, None))
    minlength = rule.get("minlength")
    if rule.get("empty") is False and kind in ("string", "list", "dict"):
        minlength = max(minlength or 0, 1)
    if minlength is not None or "maxlength" in rule:
        if lo_key is None:
            raise UntranslatableRule(f"{where or 'field'}: length rule on type {declared!r}")
        if minlength is not None:
            out[lo_key] = minlength
        if "maxlength" in rule:
            out[hi_key] = rule["maxlength"]
    if "min" in rule:
        out["minimum"] = rule["min"]
    if "max" in rule:
        out["maximum"] = rule["max"]
    if "schema" in rule:
        if kind == "dict":
            nested = object_schema(rule["schema"], where)
            nested.pop("type")
            out.update(nested)
        elif kind == "list":
            out["items"] = field_schema(rule["schema"], f"{where}[]")
        else:
            raise UntranslatableRule(f"{where or 'field'}: 'schema' on type {declared!r}")
    if "keysrules" in rule:
        out["propertyNames"] = field_schema(rule["keysrules"], f"{where}{{key}}")
    if "valuesrules" in rule:
        out["additionalProperties"] = field_schema(rule["valuesrules"], f"{where}{{value}}")
    return out


def _json_type(kinds: list[str], nullable: bool) -> str | list[str]:
    types = [_JSON_TYPES[k] for k in kinds] + (["null"] if nullable else [])
    return types[0] if len(types) == 1 else types


def object_schema(schema: dict[str, dict], where: str = "") -> dict[str, Any]:
    """JSON Schema for a cerberus mapping schema: unknown keys refused, as the catalog does.

    cerberus waives `required` on a field whose `excludes` partner is present, so a required
    pair that excludes each other means "exactly one of them" (anyOf + not both).
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    one_required: list[list[str]] = []
    not_together: list[list[str]] = []
    for name, rule in schema.items():
        path = f"{where}.{name}" if where else name
        properties[name] = field_schema(rule, path)
        excludes = rule.get("excludes")
        excludes = [excludes] if isinstance(excludes, str) else list(excludes or [])
        if rule.get("required"):
            if excludes:
                group = sorted({name, *excludes})
                if group not in one_required:
                    one_required.append(group)
            else:
                required.append(name)
        for other in excludes:
            pair = sorted([name, other])
            if pair not in not_together:
                not_together.append(pair)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    all_of = [{"anyOf": [{"required": [n]} for n in group]} for group in one_required]
    all_of += [{"not": {"required": pair}} for pair in not_together]
    if all_of:
        out["allOf"] = all_of
    return out


# ---- the document ---------------------------------------------------------------------------
def message_name(contract: EventContract) -> str:
    return f"{contract.type}.v{contract.version}"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def example_envelope(contract: EventContract) -> dict[str, Any]:
    """A complete, valid envelope around the contract's example payload (deterministic)."""
    if contract.direction == "ingress":
        dept, source = EXAMPLE_DEPT, f"{EXAMPLE_DEPT}-system"
    else:
        payload_dept = contract.example.get("dept")
        dept = payload_dept if isinstance(payload_dept, str) else EXAMPLE_DEPT
        source = contract.owner if contract.owner != "any" else "personnel"
    return {
        "event_id": str(uuid.uuid5(EXAMPLE_NAMESPACE, message_name(contract))),
        "type": contract.type,
        "schema_version": contract.version,
        "occurred_at": EXAMPLE_OCCURRED_AT,
        "dept": dept,
        "source": source,
        "payload": contract.example,
    }


def _envelope_schema() -> dict[str, Any]:
    schema = object_schema(ENVELOPE_SCHEMA, "envelope")
    return {
        "title": "Envelope",
        "description": (
            "Every event travels in this envelope. `event_id` is the idempotency key: re-sending the same "
            "event (same id, same content) is harmless, the same id with other content is rejected "
            "(event_id_conflict). `dept` must be the sending department (routing key and AMQP user / HTTP "
            f"token). Limits beyond this schema: at most {MAX_MESSAGE_BYTES} bytes per message (the gateway's "
            f"INGRESS_MAX_BYTES), nesting at most {MAX_DEPTH} levels, and no key may start with `$` or contain `.`."
        ),
        **schema,
    }


def _violation_schema() -> dict[str, Any]:
    return {
        "title": "Violation",
        "type": "object",
        "properties": {
            "field": {"type": "string", "description": "Dotted path of the offending field (`payload.kind`), "
                                                       "or `$message` / `$routing_key` / `$publisher`."},
            "rule": {"type": "string", "description": "The rule that was broken (cerberus rule name or a "
                                                      "gateway rule such as dept_mismatch).",
                     "examples": sorted(RULE_MESSAGES)},
            "message": {"type": "string", "description": "Human-readable explanation in Chinese."},
        },
        "required": ["field", "rule", "message"],
        "additionalProperties": False,
    }


def _rejection_schema() -> dict[str, Any]:
    return {
        "title": "RejectionNotice",
        "description": "Published by the gateway for every message it refuses; the input is kept in quarantine.",
        "type": "object",
        "properties": {
            "event_id": {"type": ["string", "null"], "maxLength": 64,
                         "description": "The refused event's id, null when the message was not readable."},
            "status": {"type": "string", "enum": ["rejected"]},
            "reason": {"type": "string", "description": "The first violation's rule (e.g. required, allowed, "
                                                        "dept_mismatch, malformed_json, event_id_conflict)."},
            "violations": {"type": "array", "items": _ref("schemas", "Violation")},
            "quarantine_id": {"type": "string", "description": "Where the gateway keeps the refused input."},
            "channel": {"type": "string", "enum": ["amqp"]},
            "routing_key": {"type": ["string", "null"]},
            "rejected_at": {"type": "string", "format": "date-time"},
        },
        "required": ["event_id", "status", "reason", "violations", "quarantine_id", "channel", "routing_key",
                     "rejected_at"],
        "additionalProperties": False,
    }


def _refused_schema() -> dict[str, Any]:
    return {
        "title": "RefusedNotice",
        "description": (
            "Published by a service for a department's event that passed the gateway's contracts but that "
            "the domain refuses given the current state (e.g. a fact about another department's officer). "
            "The event is dead-lettered, never applied; `violations` say which field broke which rule, "
            "exactly as a rejection's do. `GET /api/v1/events/{event_id}` reports the same refusal."
        ),
        "type": "object",
        "properties": {
            "event_id": {"type": "string", "maxLength": 64},
            "status": {"type": "string", "enum": ["refused"]},
            "reason": {"type": "string", "enum": ["domain_refused"]},
            "violations": {"type": "array", "minItems": 1, "items": _ref("schemas", "Violation")},
            "dead_letter_id": {"type": "string", "description": "The dead letter that keeps the refused event."},
            "service": {"type": "string", "description": "The service that refused it (personnel, registry …)."},
            "dept": {"type": "string", "description": "The sending department (also the routing key)."},
            "type": {"type": ["string", "null"], "description": "The refused event's type."},
            "rejected_at": {"type": "string", "format": "date-time"},
        },
        "required": ["event_id", "status", "reason", "violations", "dead_letter_id", "service", "dept", "type",
                     "rejected_at"],
        "additionalProperties": False,
    }


REFUSED_EXAMPLE = {
    "event_id": "5c0d4e8a-1f2b-4c3d-8e9f-0a1b2c3d4e5f",
    "status": "refused",
    "reason": "domain_refused",
    "violations": [{"field": "payload.officer_id", "rule": "not_owner",
                    "message": "执法人员 511322-sthj-0003 属于 511322-sthj，本部门不能变更"}],
    "dead_letter_id": "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c",
    "service": "personnel",
    "dept": "511322-scjg",
    "type": "officer.updated",
    "rejected_at": "2024-05-06T09:30:02.118000+00:00",
}


REJECTION_EXAMPLE = {
    "event_id": "0b6c3f8e-5d0a-4c53-9a9e-3f1d2c4b5a60",
    "status": "rejected",
    "reason": "allowed",
    "violations": [{"field": "payload.kind", "rule": "allowed",
                    "message": "取值不在允许范围内（要求：['officer', 'auxiliary', 'supervisor']）"}],
    "quarantine_id": "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",
    "channel": "amqp",
    "routing_key": "511322-scjg.officer.registered",
    "rejected_at": "2024-05-06T09:30:01.204000+08:00",
}


def _message(contract: EventContract) -> dict[str, Any]:
    name = message_name(contract)
    return {
        "name": name,
        "title": contract.type,
        "summary": contract.doc,
        "contentType": "application/json",
        "tags": [{"name": contract.direction}, *({"name": t} for t in contract.tags)],
        "x-owner": contract.owner,
        "x-direction": contract.direction,
        "x-schema-version": contract.version,
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": contract.type,
                              "bindingVersion": AMQP_BINDING_VERSION}},
        "payload": {"allOf": [
            _ref("schemas", "Envelope"),
            {"properties": {
                "type": {"const": contract.type},
                "schema_version": {"const": contract.version},
                "payload": _ref("schemas", f"{name}.payload"),
            }},
        ]},
        "examples": [{"name": f"{name}.example", "summary": contract.doc, "payload": example_envelope(contract)}],
    }


def _exchange_binding(name: str) -> dict[str, Any]:
    return {"amqp": {"is": "routingKey",
                     "exchange": {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                     "bindingVersion": AMQP_BINDING_VERSION}}


def _one_of(names: list[str]) -> dict[str, Any]:
    refs = [_ref("messages", n) for n in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _channels(contracts: list[EventContract], services: Iterable | None = None) -> dict[str, Any]:
    ingress = [message_name(c) for c in contracts if c.direction == "ingress"]
    channels: dict[str, Any] = {
        INGRESS_EXCHANGE: {
            "description": (
                "Topic exchange where departmental systems publish facts. Routing key `<dept>.<type>` "
                "(e.g. `511322-scjg.officer.registered`); it must match the envelope's `dept` and `type`. "
                "Set the AMQP `user_id` property to your broker user (RabbitMQ checks it; the gateway takes it "
                "as the authenticated department), `content_type` application/json, persistent delivery, and "
                "use publisher confirms. A department's broker user may only publish routing keys `<dept>.*`. "
                "Acceptance is silent: only refused messages produce a notice on `ingress.rejections`."
            ),
            "bindings": _exchange_binding(INGRESS_EXCHANGE),
            "publish": {
                "operationId": "publishEvent",
                "summary": "Publish one event to the suite.",
                "bindings": {"amqp": {"cc": ["<dept>.<type>"], "userId": "<dept>", "deliveryMode": 2,
                                      "mandatory": True, "bindingVersion": AMQP_BINDING_VERSION}},
                "message": _one_of(ingress),
            },
        },
        REJECTIONS_EXCHANGE: {
            "description": (
                "Topic exchange where the gateway explains every refused message (`rejection`: it broke a "
                "contract) and the services every admitted event they refused (`refused`: it depends on state), "
                "routing key `<dept>` (the sending department). Bind a queue with your dept as binding key BEFORE publishing: notices are "
                "not stored for queues that do not exist yet. A department's user may bind only its own key."
            ),
            "bindings": _exchange_binding(REJECTIONS_EXCHANGE),
            "subscribe": {
                "operationId": "receiveRejection",
                "summary": "Why a published event was refused.",
                "bindings": {"amqp": {"cc": ["<dept>"], "ack": False, "bindingVersion": AMQP_BINDING_VERSION}},
                "message": {"oneOf": [_ref("messages", "rejection"), _ref("messages", "refused")]},
            },
        },
    }
    if services is None:
        from services.kernel.manifest import manifests

        services = manifests()
    for declared in services:
        service = declared.name
        if declared.relays_ingress:
            names, what = ingress, "admitted ingress events, re-dispatched unchanged for the suite's services"
        else:
            names = [message_name(c) for c in contracts
                     if c.direction == "internal" and (c.owner == service or c.type in declared.publishes)]
            what = f"events emitted by the {service} service"
        if not names:
            continue
        routing = ("routing key = event type; the events a declared service consumes travel to it in bundles "
                   "of at most GATEWAY_BUNDLE_MAX, routing key `zhifa_bundle.<service>.<hash>`, body "
                   "`{\"bundle\": 1, \"events\": [[traceparent, event], …]}` (GATEWAY_BUNDLE_MAX=1: every event "
                   "alone)" if declared.relays_ingress else "routing key = event type")
        channels[f"{service}.events"] = {
            "description": f"Internal nameko event exchange `{service}.events` ({routing}): {what}. "
                           "Read-only for departments, and only where an operator grants it.",
            "bindings": _exchange_binding(f"{service}.events"),
            "subscribe": {
                "operationId": f"receive{service.capitalize()}Event",
                "summary": f"Events on {service}.events.",
                "bindings": {"amqp": {"cc": ["<type>"], "bindingVersion": AMQP_BINDING_VERSION}},
                "message": _one_of(names),
            },
        }
    return channels


def build(contracts: Iterable[EventContract] | None = None, services: Iterable | None = None) -> dict[str, Any]:
    """The AsyncAPI document (a plain dict) for the given contracts, or for the whole catalog, with one
    event channel per declared service (`services`: ServiceManifest list, default every declared one)."""
    items = sorted(contracts if contracts is not None else load_contracts(), key=lambda c: (c.type, c.version))
    schemas: dict[str, Any] = {
        "Envelope": _envelope_schema(),
        "RejectionNotice": _rejection_schema(),
        "RefusedNotice": _refused_schema(),
        "Violation": _violation_schema(),
    }
    messages: dict[str, Any] = {}
    for contract in items:
        name = message_name(contract)
        schemas[f"{name}.payload"] = {"title": f"{name} payload",
                                      **object_schema(contract.schema, f"{name}.payload")}
        messages[name] = _message(contract)
    messages["rejection"] = {
        "name": "rejection",
        "title": "Rejection notice",
        "summary": "The gateway refused a message: which fields broke which rules.",
        "contentType": "application/json",
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": "rejection",
                              "bindingVersion": AMQP_BINDING_VERSION}},
        "payload": _ref("schemas", "RejectionNotice"),
        "examples": [{"name": "rejection.example", "payload": REJECTION_EXAMPLE}],
    }
    messages["refused"] = {
        "name": "refused",
        "title": "Refused notice",
        "summary": "A service refused an admitted event (it depends on state): which fields broke which rules.",
        "contentType": "application/json",
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": "refused",
                              "bindingVersion": AMQP_BINDING_VERSION}},
        "payload": _ref("schemas", "RefusedNotice"),
        "examples": [{"name": "refused.example", "payload": REFUSED_EXAMPLE}],
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:zhifa:events",
        "info": {
            "title": "Zhifa (执法) event contracts",
            "version": DOCUMENT_VERSION,
            "description": (
                "Events that departmental systems publish to the Zhifa supervision suite, the rejection notices "
                "they get back, and the suite's internal events. Generated from the cerberus contracts in "
                "`contracts/events/`; every message is one event type at one schema version (`<type>.v<version>`). "
                "The same events can be posted over HTTP: `POST /api/v1/events` with a JSON object or an array, "
                "header `Authorization: Bearer <department token>`; the response carries one result per event. "
                "See docs/integration.md."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "url": "{host}:{port}",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The suite's RabbitMQ broker; the virtual host is given with your credentials.",
                "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "5672"}},
                "security": [{"departmentUser": []}],
            },
        },
        "channels": _channels(items, services),
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "departmentUser": {
                    "type": "userPassword",
                    "description": "One broker user per department, named after the dept code "
                                   "(scripts/provision_dept.py). It may publish only `<dept>.*` on `ingress` and "
                                   "read only `<dept>` notices on `ingress.rejections`.",
                },
            },
        },
    }


def render(contracts: Iterable[EventContract] | None = None) -> str:
    """The document as the exact text checked in at contracts/asyncapi.json."""
    return json.dumps(build(contracts), ensure_ascii=False, indent=2) + "\n"


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The whole catalog's document, built once per process (treat as read-only)."""
    return build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.asyncapi",
                                     description="Print the AsyncAPI document generated from the contracts.")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if {CHECKED_IN.name} differs from the generated document")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = CHECKED_IN.read_text(encoding="utf-8") if CHECKED_IN.exists() else ""
        if current != text:
            sys.stderr.write(f"{CHECKED_IN} 已过期，请运行：{REGENERATE_HINT}\n")
            return 1
        return 0
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
