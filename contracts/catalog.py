"""The catalog of all contracts and the one validator of envelopes and payloads.

Validators are built once per (type, version) and called with `normalize=False` (5x faster
than normalising; we never coerce). Every rejection names the field and the rule it broke.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass
from typing import Any, Iterable

from cerberus import Validator

import contracts.events
from contracts.fields import DATETIME, DEPT, req
from contracts.model import EventContract

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 8

ENVELOPE_SCHEMA: dict[str, Any] = {
    "event_id": req({"type": "string", "regex": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}),
    "type": req({"type": "string", "regex": r"^[a-z_]+\.[a-z_]+$", "maxlength": 64}),
    "schema_version": req({"type": "integer", "min": 1, "max": 1000}),
    "occurred_at": req(DATETIME),
    "dept": req(DEPT),
    "source": req({"type": "string", "minlength": 1, "maxlength": 100}),
    "payload": req({"type": "dict"}),
}

RULE_MESSAGES = {
    "required": "缺少必填字段",
    "unknown": "不允许的字段",
    "type": "类型错误",
    "regex": "格式不符合要求",
    "maxlength": "长度超过上限",
    "minlength": "长度低于下限",
    "max": "数值超过上限",
    "min": "数值低于下限",
    "allowed": "取值不在允许范围内",
    "nullable": "不允许为空",
    "empty": "不允许为空字符串",
}


@dataclass(frozen=True)
class Violation:
    """Which field broke which rule (machine-readable), with a Chinese message for people."""

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class ContractError(Exception):
    """An input that does not satisfy its contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        super().__init__("; ".join(f"{v.field}: {v.rule}" for v in violations))
        self.violations = violations

    @property
    def reason(self) -> str:
        return self.violations[0].rule if self.violations else "invalid"

    def to_list(self) -> list[dict[str, str]]:
        return [v.to_dict() for v in self.violations]


def _flatten(errors, prefix: str = "") -> list[Violation]:
    out: list[Violation] = []
    for err in errors:
        if err.is_group_error:
            out.extend(_flatten(err.child_errors, prefix))
            continue
        path = ".".join(str(p) for p in err.document_path)
        rule = err.rule or ("unknown" if err.code == 0x03 else "invalid")
        if rule == "schema" and err.info:
            out.extend(_flatten(err.info[0] if isinstance(err.info[0], list) else err.info, prefix))
            continue
        msg = RULE_MESSAGES.get(rule, "不符合契约")
        if err.constraint is not None and rule in ("maxlength", "minlength", "max", "min", "allowed", "regex"):
            msg = f"{msg}（要求：{err.constraint}）"
        out.append(Violation(prefix + path, rule, msg))
    return out


def hostile_keys(value: Any, path: str = "", depth: int = 0) -> list[Violation]:
    """Keys MongoDB would misread (`$…`, containing `.`, NUL) and nesting beyond MAX_DEPTH."""
    out: list[Violation] = []
    if depth > MAX_DEPTH:
        return [Violation(path or "$root", "max_depth", f"嵌套层级超过 {MAX_DEPTH}")]
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{path}.{k}" if path else str(k)
            if not isinstance(k, str) or k.startswith("$") or "." in k or "\x00" in k:
                out.append(Violation(p, "forbidden_key", "字段名不得以 $ 开头或包含 . 字符"))
            else:
                out.extend(hostile_keys(v, p, depth + 1))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(hostile_keys(v, f"{path}.{i}", depth + 1))
    return out


def strict_regex(schema: Any) -> Any:
    """A copy of a cerberus schema whose `^…$` patterns end in `\\Z`.

    cerberus matches with Python's `$`, which also accepts one trailing newline
    ("511322-scjg\\n" would pass as a department code).
    """
    if isinstance(schema, dict):
        out = {k: strict_regex(v) for k, v in schema.items()}
        pattern = out.get("regex")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
            out["regex"] = pattern[:-1] + r"\Z"
        return out
    if isinstance(schema, list):
        return [strict_regex(v) for v in schema]
    return schema


def load_contracts() -> list[EventContract]:
    found: list[EventContract] = []
    for mod in pkgutil.iter_modules(contracts.events.__path__):
        module = importlib.import_module(f"contracts.events.{mod.name}")
        found.extend(getattr(module, "CONTRACTS", []))
    return found


class Catalog:
    """All contracts, with one prepared validator each."""

    def __init__(self, items: Iterable[EventContract] | None = None, max_bytes: int = MAX_MESSAGE_BYTES):
        self.max_bytes = max_bytes
        self.contracts: dict[tuple[str, int], EventContract] = {}
        for c in items if items is not None else load_contracts():
            key = (c.type, c.version)
            if key in self.contracts:
                raise ValueError(f"duplicate contract {key}")
            self.contracts[key] = c
        self._envelope = Validator(strict_regex(ENVELOPE_SCHEMA), allow_unknown=False)
        self._payload = {k: Validator(strict_regex(c.schema), allow_unknown=False) for k, c in self.contracts.items()}

    def types(self) -> set[str]:
        return {t for t, _ in self.contracts}

    def get(self, type_: str, version: int) -> EventContract:
        return self.contracts[(type_, version)]

    def decode(self, raw: bytes | str) -> dict:
        """Bytes on the wire -> dict, with size and JSON checks."""
        data = raw.encode() if isinstance(raw, str) else raw
        if len(data) > self.max_bytes:
            raise ContractError([Violation("$message", "max_bytes", f"消息大小 {len(data)} 字节超过上限 {self.max_bytes}")])
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ContractError([Violation("$message", "malformed_json", f"不是合法的 JSON：{exc}")]) from None
        if not isinstance(doc, dict):
            raise ContractError([Violation("$message", "not_an_object", "事件必须是 JSON 对象")])
        return doc

    def validate(self, envelope: dict, *, expected_dept: str | None = None, direction: str | None = "ingress") -> EventContract:
        """Check an envelope and its payload; return the contract or raise ContractError."""
        violations = hostile_keys(envelope)
        if violations:
            raise ContractError(violations)
        if not self._envelope.validate(envelope, normalize=False):
            raise ContractError(_flatten(self._envelope._errors))
        if expected_dept is not None and envelope["dept"] != expected_dept:
            raise ContractError([Violation("dept", "dept_mismatch", f"信封部门 {envelope['dept']} 与发送方 {expected_dept} 不一致")])
        key = (envelope["type"], envelope["schema_version"])
        contract = self.contracts.get(key)
        if contract is None or (direction and contract.direction != direction):
            known = any(t == envelope["type"] for t, _ in self.contracts)
            rule = "unknown_version" if known else "unknown_type"
            raise ContractError([Violation("type" if not known else "schema_version", rule, "未知的事件类型或版本")])
        validator = self._payload[key]
        if not validator.validate(envelope["payload"], normalize=False):
            raise ContractError(_flatten(validator._errors, "payload."))
        return contract
