"""Small helpers for the HTTP-facing services: JSON responses and errors in Chinese."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from werkzeug.wrappers import Response

from services.kernel.metrics import health, metrics_payload


def _default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False, default=_default), status=status,
                    mimetype="application/json")


def error(status: int, code: str, message: str, **extra) -> Response:
    return json_response({"error": {"code": code, "message": message, **extra}}, status)


def metrics_response() -> Response:
    body, ctype = metrics_payload()
    return Response(body, status=200, headers={"Content-Type": ctype})


def health_response() -> Response:
    code, doc = health()
    return json_response(doc, code)


def int_arg(request, name: str, default: int, lo: int = 0, hi: int = 10_000) -> int:
    """An integer query argument within bounds; anything else is a 400 naming the argument."""
    from werkzeug.exceptions import BadRequest

    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"参数 {name} 必须是整数") from None
    if not lo <= value <= hi:
        raise BadRequest(f"参数 {name} 必须在 {lo} 到 {hi} 之间")
    return value
