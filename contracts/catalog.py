"""The catalog of all contracts and the one validator of envelopes and payloads.

Validators are built once per (type, version) and called with `normalize=False` (5x faster
than normalising; we never coerce). Every rejection names the field and the rule it broke.
Each schema is also compiled to plain checks (contracts/compiled.py) that only say "surely valid":
a valid event skips cerberus, anything else gets cerberus's verdict and messages.
"""
from __future__ import annotations

import importlib
import json
import math
import pkgutil
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable

from cerberus import TypeDefinition, Validator

import contracts.events
from contracts.compiled import compile_schema
from contracts.fields import DATETIME, DEPT, req
from contracts.model import EventContract

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 8
# Years a date or time in an event may name (configurable: INGRESS_YEAR_MIN / INGRESS_YEAR_MAX).
YEAR_MIN = 1949
YEAR_MAX = 2100

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
    # rules of the contract machinery beyond cerberus (see ContractValidator and inspect_values)
    "calendar_date": "不是真实存在的日期或时间",
    "year_range": "年份超出允许范围",
    "date_order": "结束日期早于开始日期",
    "not_finite": "数值必须是有限数（不得为 NaN 或 Infinity）",
    "control_chars": "字符串含有控制字符",
    "bidi_override": "字符串含有双向文本控制字符（可能伪装显示内容）",
    "zero_width_only": "字符串只含零宽或空白字符",
    "lone_surrogate": "字符串含有不成对的代理字符（非法 Unicode）",
    "max_depth": "嵌套层级超过上限",
    "forbidden_key": "字段名不得为空、以 $ 开头或包含 . 字符",
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
        if err.code == 0x00 and err.info and isinstance(err.info[0], str):  # ContractValidator's own rules
            rule = err.info[0]
        if rule == "schema" and err.info:
            out.extend(_flatten(err.info[0] if isinstance(err.info[0], list) else err.info, prefix))
            continue
        msg = RULE_MESSAGES.get(rule, "不符合契约")
        if err.code == 0x00 and err.info and isinstance(err.info[0], str) and "|" in err.info[0]:
            rule, msg = err.info[0].split("|", 1)
        if err.constraint is not None and rule in ("maxlength", "minlength", "max", "min", "allowed", "regex"):
            msg = f"{msg}（要求：{err.constraint}）"
        out.append(Violation(prefix + path, rule, msg))
    return out


# Characters no field of an event may carry. Tab, LF and CR stay allowed (multi-line text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_INVISIBLE = re.compile(r"[\s\u200b-\u200d\u2060\ufeff\u180e]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Any character of the three sets above: one search clears most strings (which then need no other).
_SUSPECT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _string_violation(text: str, path: str) -> Violation | None:
    if _SUSPECT.search(text) is not None:
        if _SURROGATE.search(text):
            return Violation(path, "lone_surrogate", RULE_MESSAGES["lone_surrogate"])
        if _CONTROL.search(text):
            return Violation(path, "control_chars", RULE_MESSAGES["control_chars"])
        if _BIDI.search(text):
            return Violation(path, "bidi_override", RULE_MESSAGES["bidi_override"])
    if text and _INVISIBLE.fullmatch(text) and not text.isspace():
        return Violation(path, "zero_width_only", RULE_MESSAGES["zero_width_only"])
    return None


def _when(value: Any) -> date | datetime | None:
    """A DATE or DATETIME string as a value to compare (None when it is neither)."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _order_violation(mapping: dict, path: str) -> list[Violation]:
    """Date pairs by naming convention: `from`/`to` and `<x>_from`/`<x>_to` must not run backwards."""
    out: list[Violation] = []
    for key, start in mapping.items():
        if not isinstance(key, str) or not (key == "from" or key.endswith("_from")):
            continue
        end_key = key[:-4] + "to"
        begin, finish = _when(start), _when(mapping.get(end_key))
        if begin is None or finish is None or type(begin) is not type(finish):
            continue
        try:
            backwards = finish < begin
        except TypeError:  # naive against aware: the calendar rule reports the malformed one
            continue
        if backwards:
            out.append(Violation(f"{path}.{end_key}" if path else end_key, "date_order",
                                 f"{end_key}（{mapping[end_key]}）早于 {key}（{start}）"))
    return out


_PLAIN_LEAVES = frozenset({int, bool, type(None)})  # (floats need the finiteness check)


def _plain_text(value: Any) -> bool:
    """A string no rule of `_string_violation` can fail on, already in NFC: printable ASCII (no control,
    bidi, surrogate or zero-width character; all spaces or empty is not "zero-width only")."""
    return type(value) is str and value.isascii() and value.isprintable()


def _plain_key(key: Any) -> bool:
    """A key `inspect_values` keeps as it is: printable ASCII (so no NUL), not empty, no `$` first, no `.`."""
    return _plain_text(key) and key != "" and key[0] != "$" and "." not in key


def inspect_values(value: Any, path: str = "", depth: int = 0) -> tuple[Any, list[Violation]]:
    """Everything checkable from the event alone that cerberus does not check, in one walk.

    Keys MongoDB would misread (empty, `$…`, containing `.`, NUL), nesting beyond MAX_DEPTH,
    non-finite numbers, strings with lone surrogates, control or bidi-override characters or only
    zero-width content (date pairs: `date_order_violations`, after the schema). Returns the value with every string in Unicode NFC
    (names typed on different systems compare equal) and the violations found.
    """
    if depth > MAX_DEPTH:
        return value, [Violation(path or "$root", "max_depth", f"嵌套层级超过 {MAX_DEPTH}")]
    if isinstance(value, str):
        if _plain_text(value):  # (no rule can fail on it, and it is NFC)
            return value, []
        bad = _string_violation(value, path or "$root")
        if bad is not None:
            return value, [bad]
        return (value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)), []
    if isinstance(value, float) and not math.isfinite(value):
        return value, [Violation(path or "$root", "not_finite", RULE_MESSAGES["not_finite"])]
    out: list[Violation] = []
    if isinstance(value, dict):
        clean = {}
        leaf_ok = depth < MAX_DEPTH  # (a child at depth + 1 is within MAX_DEPTH)
        for k, v in value.items():
            if leaf_ok and _plain_key(k) and (type(v) in _PLAIN_LEAVES or _plain_text(v)):
                clean[k] = v  # (what the walk below returns for it, without building its path)
                continue
            p = f"{path}.{k}" if path else str(k)
            if not isinstance(k, str) or not k or k.startswith("$") or "." in k or "\x00" in k:
                if k == "":
                    p = f'{path}.""' if path else '""'
                out.append(Violation(p, "forbidden_key", RULE_MESSAGES["forbidden_key"]))
                continue
            bad = _string_violation(k, p)
            if bad is not None:
                out.append(Violation(p, "forbidden_key", RULE_MESSAGES["forbidden_key"]))
                continue
            clean[k], found = inspect_values(v, p, depth + 1)
            out.extend(found)
        return clean, out
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            item, found = inspect_values(v, f"{path}.{i}", depth + 1)
            items.append(item)
            out.extend(found)
        return items, out
    return value, out


def date_order_violations(value: Any, path: str = "") -> list[Violation]:
    """`from`/`to` and `<x>_from`/`<x>_to` pairs anywhere in a document that run backwards."""
    out: list[Violation] = []
    if isinstance(value, dict):
        out.extend(_order_violation(value, path))
        for k, v in value.items():
            out.extend(date_order_violations(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(date_order_violations(v, f"{path}.{i}"))
    return out


def hostile_keys(value: Any, path: str = "", depth: int = 0) -> list[Violation]:
    """The violations `inspect_values` finds (kept for callers that only need the verdict)."""
    return inspect_values(value, path, depth)[1]


_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting_depth(data: bytes, limit: int) -> int:
    """How deep JSON text nests (strings skipped), stopping once past `limit`; no recursion."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


class ContractValidator(Validator):
    """cerberus with the suite's stricter types and calendar rule.

    - `integer` excludes booleans (JSON `true` is not a schema version);
    - `calendar: date|datetime`: the text is a real calendar date/time (no 2024-02-30, no hour 24,
      no offset beyond ±23:59) whose year lies in [year_min, year_max].
    """

    types_mapping = {**Validator.types_mapping,
                     "integer": TypeDefinition("integer", (int,), (bool,))}
    year_min = YEAR_MIN
    year_max = YEAR_MAX

    def _validate_calendar(self, kind, field, value):
        """{'type': 'string', 'allowed': ['date', 'datetime']}"""
        if not isinstance(value, str):
            return
        broken = calendar_violation(kind, value, self.year_min, self.year_max)
        if broken == "calendar_date":
            self._error(field, "calendar_date")
        elif broken == "year_range":
            self._error(field, f"year_range|{RULE_MESSAGES['year_range']}（要求：{self.year_min}–{self.year_max}）")


def calendar_violation(kind: str, text: str, year_min: int, year_max: int) -> str | None:
    """The `calendar` rule: `calendar_date` (not a real date/time of that kind), `year_range` or None."""
    when = _when(text)
    if when is None or (kind == "date") != (type(when) is date):
        return "calendar_date"
    if not year_min <= when.year <= year_max:
        return "year_range"
    return None

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

    def __init__(self, items: Iterable[EventContract] | None = None, max_bytes: int = MAX_MESSAGE_BYTES,
                 years: tuple[int, int] = (YEAR_MIN, YEAR_MAX)):
        self.max_bytes = max_bytes
        self.years = (int(years[0]), int(years[1]))
        validator = type("BoundContractValidator", (ContractValidator,),
                         {"year_min": self.years[0], "year_max": self.years[1]})
        self.contracts: dict[tuple[str, int], EventContract] = {}
        for c in items if items is not None else load_contracts():
            key = (c.type, c.version)
            if key in self.contracts:
                raise ValueError(f"duplicate contract {key}")
            self.contracts[key] = c
        self._envelope = validator(strict_regex(ENVELOPE_SCHEMA), allow_unknown=False)
        self._payload = {k: validator(strict_regex(c.schema), allow_unknown=False) for k, c in self.contracts.items()}
        # The same schemas compiled to plain checks: True only where cerberus accepts too, so the
        # valid event skips cerberus; anything else gets cerberus's verdict and messages.
        lo, hi = self.years

        def calendar(kind: str, text: str) -> bool:
            return calendar_violation(kind, text, lo, hi) is None
        self._envelope_fast = compile_schema(strict_regex(ENVELOPE_SCHEMA), calendar)
        self._payload_fast = {k: compile_schema(strict_regex(c.schema), calendar) for k, c in self.contracts.items()}

    def types(self) -> set[str]:
        return {t for t, _ in self.contracts}

    def get(self, type_: str, version: int) -> EventContract:
        return self.contracts[(type_, version)]

    def decode(self, raw: bytes | str) -> dict:
        """Bytes on the wire -> dict, with size, nesting and JSON checks (NaN/Infinity read as
        non-finite numbers, which `check` then names by field)."""
        doc = self.parse(raw)
        if not isinstance(doc, dict):
            raise ContractError([Violation("$message", "not_an_object", "事件必须是 JSON 对象")])
        return doc

    def parse(self, raw: bytes | str, *, max_bytes: int | None = None, depth: int = MAX_DEPTH + 1) -> Any:
        """Any JSON text -> value, refusing oversize (`max_bytes`, default the catalog's), nesting
        deeper than `depth` (counted before parsing: no recursion) and invalid UTF-8/JSON."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        try:
            data = raw.encode() if isinstance(raw, str) else bytes(raw)
        except (UnicodeEncodeError, TypeError):
            raise ContractError([Violation("$message", "malformed_json", "不是合法的 UTF-8 JSON 文本")]) from None
        if len(data) > limit:
            raise ContractError([Violation("$message", "max_bytes", f"消息大小 {len(data)} 字节超过上限 {limit}")])
        # every level opens with [ or {: with no more of them than `depth` (counted in C) it cannot nest deeper
        if data.count(b"[") + data.count(b"{") > depth and nesting_depth(data, depth) > depth:
            raise ContractError([Violation("$message", "max_depth", f"嵌套层级超过 {MAX_DEPTH}")])
        try:  # UTF-8 only (json.loads would guess UTF-16/32 from bytes)
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            # the parser's own text stays out of the answer (it names internals); the logs have the input
            raise ContractError([Violation("$message", "malformed_json", "不是合法的 JSON 文本（须为 UTF-8 编码的 JSON 对象）")]) from None

    def validate(self, envelope: dict, *, expected_dept: str | None = None, direction: str | None = "ingress") -> EventContract:
        """Check an envelope and its payload; return the contract or raise ContractError."""
        return self.check(envelope, expected_dept=expected_dept, direction=direction)[0]

    def check(self, envelope: dict, *, expected_dept: str | None = None,
              direction: str | None = "ingress") -> tuple[EventContract, dict]:
        """Check an envelope and its payload; return the contract and the envelope as accepted
        (strings in NFC), or raise ContractError naming every field and rule."""
        envelope, violations = inspect_values(envelope)
        if violations:
            raise ContractError(violations)
        if not self._envelope_fast(envelope) and not self._envelope.validate(envelope, normalize=False):
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
        if not self._payload_fast[key](envelope["payload"]) and not validator.validate(envelope["payload"], normalize=False):
            raise ContractError(_flatten(validator._errors, "payload."))
        backwards = date_order_violations(envelope["payload"], "payload")
        if backwards:
            raise ContractError(backwards)
        return contract, envelope
