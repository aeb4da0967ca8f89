"""Parameters of an HTTP request parsed and checked against the `Param` declarations.

Every failure is a `ParamError` naming the field, the rule it broke and a message in Chinese; the
API service answers it as a 400 JSON error, never a 500.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from services.kernel.manifest import Param

# C0/C1 controls (except none: parameters are single-line), bidi overrides, NUL.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


class ParamError(Exception):
    """A parameter that breaks its declaration: answered as 400 `{"error": {code, field, message}}`."""

    def __init__(self, field: str, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.field, self.code, self.message, self.status = field, code, message, status

    def to_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "message": self.message}


def _string(p: Param, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ParamError(p.name, "invalid_type", f"参数 {p.name} 必须是字符串")
    if len(raw) > p.max_length:
        raise ParamError(p.name, "max_length", f"参数 {p.name} 最长 {p.max_length} 个字符")
    if _FORBIDDEN_CHARS.search(raw):
        raise ParamError(p.name, "forbidden_char", f"参数 {p.name} 含有控制字符或方向控制字符")
    value = unicodedata.normalize("NFC", raw)
    if p.enum and value not in p.enum:
        raise ParamError(p.name, "enum", f"参数 {p.name} 只能是：{'、'.join(map(str, p.enum))}")
    if p.pattern and not re.fullmatch(p.pattern, value):
        raise ParamError(p.name, "pattern", f"参数 {p.name} 格式不正确（要求：{p.pattern}）")
    return value


def _integer(p: Param, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ParamError(p.name, "invalid_type", f"参数 {p.name} 必须是整数")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,12}", raw.strip()):
        value = int(raw)
    else:
        raise ParamError(p.name, "invalid_type", f"参数 {p.name} 必须是整数")
    if p.minimum is not None and value < p.minimum:
        raise ParamError(p.name, "minimum", f"参数 {p.name} 不得小于 {p.minimum}")
    if p.maximum is not None and value > p.maximum:
        raise ParamError(p.name, "maximum", f"参数 {p.name} 不得大于 {p.maximum}")
    return value


def _boolean(p: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in TRUE + FALSE:
        return raw.strip().lower() in TRUE
    raise ParamError(p.name, "invalid_type", f"参数 {p.name} 只能是 true 或 false")


def _date(p: Param, raw: Any) -> str:
    text = _string(p, raw)
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ParamError(p.name, "invalid_date", f"参数 {p.name} 必须是真实的日期 YYYY-MM-DD") from None


def _datetime(p: Param, raw: Any) -> str:
    text = _string(p, raw)
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})", text):
            raise ValueError
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if not 1900 <= value.year <= 2200:
            raise ValueError
    except ValueError:
        raise ParamError(p.name, "invalid_datetime",
                         f"参数 {p.name} 必须是带时区的 ISO 8601 时间，如 2024-08-01T09:00:00+08:00") from None
    return value.isoformat()


def _object(p: Param, raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ParamError(p.name, "invalid_type", f"参数 {p.name} 必须是 JSON 对象")
    return raw


def _array(p: Param, raw: Any) -> list:
    if not isinstance(raw, list):
        raise ParamError(p.name, "invalid_type", f"参数 {p.name} 必须是 JSON 数组")
    return raw


PARSERS = {"string": _string, "integer": _integer, "boolean": _boolean, "date": _date,
           "date-time": _datetime, "object": _object, "array": _array}


def parse_one(p: Param, raw: Any) -> Any:
    return PARSERS.get(p.type, _string)(p, raw)


def parse(params: Iterable[Param], *, path: Mapping[str, Any], query: Mapping[str, list[str]],
          body: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values of every declared parameter (defaults filled in), or raise ParamError.

    `query` maps a name to every value given (a repeated query parameter is an error); undeclared
    query parameters and body fields are errors too, so a typo is never silently ignored.
    """
    params = tuple(params)
    declared = {p.name for p in params}
    for name in query:
        if name not in declared or next(p for p in params if p.name == name).in_ != "query":
            raise ParamError(name, "unknown_param", f"未知的查询参数 {name[:40]}")
    for name in body or {}:
        if name not in declared or next(p for p in params if p.name == name).in_ != "body":
            raise ParamError(name, "unknown_param", f"未知的请求体字段 {str(name)[:40]}")
    out: dict[str, Any] = {}
    for p in params:
        if p.in_ == "path":
            raw = path.get(p.name)
        elif p.in_ == "query":
            values = query.get(p.name) or []
            if len(values) > 1:
                raise ParamError(p.name, "repeated", f"参数 {p.name} 只能出现一次")
            raw = values[0] if values else None
            if raw == "":
                raw = None
        else:
            raw = (body or {}).get(p.name)
        if raw is None:
            if p.required:
                raise ParamError(p.name, "required", f"缺少必填参数 {p.name}")
            out[p.name] = p.default
            continue
        out[p.name] = parse_one(p, raw)
    return out
