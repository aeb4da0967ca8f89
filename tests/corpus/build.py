"""Build the hostile-input corpus (python -m tests.corpus.build > tests/corpus/cases.jsonl).

The tests build the cases from the contracts as they are, so a new or changed contract is covered
at once; tests/corpus/cases.jsonl is the same list written out, a snapshot to read and diff.

Every case is one message and the outcome it must get, fixed by how the case was made (not by
running the validator): `accepted`, or `rejected` with the rule and the field that names it.
Cases start from each ingress contract's example and break one thing: impossible calendar dates,
years out of range, date pairs backwards, booleans as numbers, non-finite numbers, control /
bidi-override / zero-width-only / lone-surrogate strings, and envelope-level attacks (keys MongoDB
would misread, nesting, size, encoding, identity). tests/unit/test_admission_corpus.py runs it
through admission; tests/integration/test_hostile_corpus.py over AMQP and HTTP on real servers.
"""
from __future__ import annotations

import json
import re
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from contracts.asyncapi import example_envelope
from contracts.catalog import MAX_DEPTH, MAX_MESSAGE_BYTES, load_contracts

HERE = Path(__file__).parent
CASES = HERE / "cases.jsonl"
DEPT = "511322-scjg"
OTHER = "511322-sthj"
NS = uuid.UUID("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b")
STRING_ATTACKS = [("bidi_override", "名\u202e称"), ("control_chars", "名\x1b[2J称"), ("zero_width_only", "\u200b\u200c"),
                  ("lone_surrogate", "名\ud800称"), ("control_chars", "\x00"), ("bidi_override", "\u2067x\u2069")]


def case(cid: str, env: Any, expect: str, rule: str | None = None, field: str | None = None, *,
         routing_key: str | None = None, dept: str = DEPT, raw: bytes | None = None,
         channels: tuple[str, ...] = ("amqp", "http")) -> dict:
    own_id = str(uuid.uuid5(NS, cid))  # every case its own event id, so outcomes can be matched
    if isinstance(env, dict) and "event_id" in env:
        env = {**env, "event_id": own_id}
    data = raw if raw is not None else json.dumps(env, ensure_ascii=True, allow_nan=True).encode()
    data = re.sub(rb'"event_id": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"',
                  f'"event_id": "{own_id}"'.encode(), data)
    out: dict[str, Any] = {"id": cid, "dept": dept, "channels": list(channels),
                           "routing_key": routing_key or (f"{env['dept']}.{env['type']}" if isinstance(env, dict)
                                                          and isinstance(env.get("type"), str) else f"{dept}.x.y")}
    try:
        out["raw"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["raw_hex"] = data.hex()
    out["expect"] = {"status": expect, **({"rule": rule} if rule else {}), **({"field": field} if field else {})}
    return out


def with_payload(env: dict, **changes) -> dict:
    return {**env, "payload": {**env["payload"], **changes}}


def _kind(rule: dict) -> str | None:
    kind = rule.get("type")
    return kind[0] if isinstance(kind, list) else kind


def contract_cases() -> list[dict]:
    out: list[dict] = []
    contracts = sorted((c for c in load_contracts() if c.direction == "ingress"), key=lambda c: (c.type, c.version))
    for n, contract in enumerate(contracts):
        base = {**example_envelope(contract), "dept": DEPT}
        name = f"{contract.type}.v{contract.version}"
        out.append(case(f"{name}/example", base, "accepted"))
        strings = []
        for field, rule in contract.schema.items():
            kind = _kind(rule)
            path = f"payload.{field}"
            if rule.get("calendar") == "date":
                out.append(case(f"{name}/{field}/feb30", with_payload(base, **{field: "2023-02-30"}), "rejected",
                                "calendar_date", path))
                out.append(case(f"{name}/{field}/year9999", with_payload(base, **{field: "9999-12-31"}), "rejected",
                                "year_range", path))
            elif rule.get("calendar") == "datetime":
                out.append(case(f"{name}/{field}/apr31", with_payload(base, **{field: "2024-04-31T09:00:00+08:00"}),
                                "rejected", "calendar_date", path))
                out.append(case(f"{name}/{field}/overflow", with_payload(base, **{field: "9999-12-31T23:59:59Z"}),
                                "rejected", "year_range", path))
            elif kind in ("integer", "number"):
                out.append(case(f"{name}/{field}/true", with_payload(base, **{field: True}), "rejected", "type", path))
                out.append(case(f"{name}/{field}/nan", with_payload(base, **{field: float("nan")}), "rejected",
                                "not_finite", path))
                out.append(case(f"{name}/{field}/inf", with_payload(base, **{field: float("-inf")}), "rejected",
                                "not_finite", path))
            elif kind == "string" and "allowed" not in rule:
                strings.append(field)
            if field.endswith("_from") and field[:-4] + "to" in contract.schema:
                end = field[:-4] + "to"
                out.append(case(f"{name}/{field}/backwards", with_payload(base, **{field: "2024-06-02", end: "2024-06-01"}),
                                "rejected", "date_order", f"payload.{end}"))
        for i, field in enumerate(strings[:2]):
            rule, text = STRING_ATTACKS[(n + i) % len(STRING_ATTACKS)]
            out.append(case(f"{name}/{field}/{rule}", with_payload(base, **{field: text}), "rejected", rule,
                            f"payload.{field}"))
    return out


def envelope_cases() -> list[dict]:
    contracts = {c.type: c for c in load_contracts()}
    base = {**example_envelope(contracts["officer.registered"]), "dept": DEPT}
    name_nfd = unicodedata.normalize("NFD", "José 李明")
    deep: Any = 1
    for _ in range(MAX_DEPTH + 3):
        deep = {"a": deep}
    out = [
        case("env/nfd-name-is-accepted", with_payload(base, name=name_nfd), "accepted"),
        case("env/schema-version-true", {**base, "schema_version": True}, "rejected", "type", "schema_version"),
        case("env/schema-version-float", {**base, "schema_version": 1.5}, "rejected", "type", "schema_version"),
        case("env/schema-version-huge", {**base, "schema_version": 10**30}, "rejected", "max", "schema_version"),
        case("env/schema-version-nan", {**base, "schema_version": float("nan")}, "rejected", "not_finite",
             "schema_version"),
        case("env/unknown-version", {**base, "schema_version": 7}, "rejected", "unknown_version", "schema_version"),
        case("env/unknown-type", {**base, "type": "officer.vanished"}, "rejected", "unknown_type", "type"),
        case("env/occurred-feb30", {**base, "occurred_at": "2024-02-30T09:00:00+08:00"}, "rejected", "calendar_date",
             "occurred_at"),
        case("env/occurred-9999", {**base, "occurred_at": "9999-12-31T23:59:59Z"}, "rejected", "year_range",
             "occurred_at"),
        case("env/occurred-1900", {**base, "occurred_at": "1900-01-01T00:00:00Z"}, "rejected", "year_range",
             "occurred_at"),
        case("env/occurred-hour24", {**base, "occurred_at": "2024-05-01T24:00:00+08:00"}, "rejected", "calendar_date",
             "occurred_at"),
        case("env/occurred-offset99", {**base, "occurred_at": "2024-05-01T09:00:00+99:00"}, "rejected",
             "calendar_date", "occurred_at"),
        case("env/occurred-naive", {**base, "occurred_at": "2024-05-01T09:00:00"}, "rejected", "regex", "occurred_at"),
        case("env/dept-newline", {**base, "dept": DEPT + "\n"}, "rejected", "regex", "dept"),
        case("env/dept-escape", {**base, "dept": DEPT + "\x1b"}, "rejected", "control_chars", "dept"),
        case("env/utf8-bom", None, "rejected", "malformed_json", "$message",
             raw=b"\xef\xbb\xbf" + json.dumps(base).encode()),
        case("env/dept-other", {**base, "dept": OTHER}, "rejected", "dept_mismatch", None,
             routing_key=f"{DEPT}.officer.registered"),
        case("env/event-id-not-uuid", {**base, "event_id": "x"}, "rejected", "regex", "event_id",
             raw=json.dumps({**base, "event_id": "not-a-uuid"}).encode()),
        case("env/source-empty", {**base, "source": ""}, "rejected", "minlength", "source"),
        case("env/source-bidi", {**base, "source": "sys\u202etem"}, "rejected", "bidi_override", "source"),
        case("env/source-zero-width", {**base, "source": "\u200b"}, "rejected", "zero_width_only", "source"),
        case("env/unknown-field", {**base, "admin": True}, "rejected", "unknown", "admin"),
        case("env/missing-payload", {k: v for k, v in base.items() if k != "payload"}, "rejected", "required",
             "payload"),
        case("env/payload-list", {**base, "payload": [1, 2]}, "rejected", "type", "payload"),
        case("env/dollar-key", with_payload(base, **{"$where": "1"}), "rejected", "forbidden_key", "payload.$where"),
        case("env/dot-key", with_payload(base, **{"a.b": "1"}), "rejected", "forbidden_key", "payload.a.b"),
        case("env/empty-key", with_payload(base, **{"": "1"}), "rejected", "forbidden_key", 'payload.""'),
        case("env/operator-value", with_payload(base, name={"$gt": ""}), "rejected", "forbidden_key",
             "payload.name.$gt"),
        case("env/deep-nesting", with_payload(base, extra=deep), "rejected", "max_depth", "$message"),
        case("env/very-deep-nesting", None, "rejected", "max_depth", "$message",
             raw=b'{"payload": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        case("env/oversize", with_payload(base, name="名" * (MAX_MESSAGE_BYTES // 3 + 10)), "rejected", "max_bytes",
             "$message", raw=json.dumps(with_payload(base, name="名" * (MAX_MESSAGE_BYTES // 3 + 10)),
                                        ensure_ascii=False).encode()),
        case("env/malformed", None, "rejected", "malformed_json", "$message", raw=b'{"event_id": '),
        case("env/trailing-garbage", None, "rejected", "malformed_json", "$message",
             raw=json.dumps(base).encode() + b" x"),
        case("env/not-object", None, "rejected", "not_an_object", "$message", raw=b'"just a string"'),
        case("env/invalid-utf8", None, "rejected", "malformed_json", "$message", raw=b'{"a": "\xff\xfe\xfd"}'),
        case("env/utf16", None, "rejected", "malformed_json", "$message",
             raw='{"a": 1}'.encode("utf-16")),
        case("env/empty", None, "rejected", "malformed_json", "$message", raw=b""),
        case("env/huge-number", None, "rejected", "malformed_json", "$message",
             raw=json.dumps(base).replace('"schema_version": 1', '"schema_version": ' + "9" * 5000).encode()),
        case("env/inf-literal", None, "rejected", "not_finite", "schema_version",
             raw=json.dumps(base).replace('"schema_version": 1', '"schema_version": Infinity').encode()),
        case("env/overflow-float", None, "rejected", "not_finite", "schema_version",
             raw=json.dumps(base).replace('"schema_version": 1', '"schema_version": 1e400').encode()),
        case("env/duplicate-keys-last-wins-bad", None, "rejected", "allowed", "payload.kind",
             raw=json.dumps(base).replace('"kind": "officer"', '"kind": "officer", "kind": "boss"').encode()),
        case("amqp/routing-key-type-mismatch", base, "rejected", "routing_key_mismatch", "$routing_key",
             routing_key=f"{DEPT}.officer.updated", channels=("amqp",)),
        case("amqp/routing-key-dept-mismatch", base, "rejected", "dept_mismatch", "dept",
             routing_key=f"{OTHER}.officer.registered", channels=("amqp",)),
    ]
    return out


def build() -> list[dict]:
    cases = contract_cases() + envelope_cases()
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


def render() -> str:
    return "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in build())


def load() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def raw_bytes(c: dict) -> bytes:
    return bytes.fromhex(c["raw_hex"]) if "raw_hex" in c else c["raw"].encode("utf-8")


if __name__ == "__main__":
    sys.stdout.write(render())
