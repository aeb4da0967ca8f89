"""Small helpers for the HTTP-facing services: JSON responses and errors in Chinese."""
from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from services.kernel.metrics import health, liveness, metrics_payload

_log = logging.getLogger("zhifa.web")


def _default(value: Any):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False, default=_default), status=status,
                    mimetype="application/json")


def error(status: int, code: str, message: str, **extra) -> Response:
    return json_response({"error": {"code": code, "message": message, **extra}}, status)


def metrics_response(request: Any = None) -> Response:
    """/metrics; with the `request`, `?name[]=<sample name>` (repeatable) narrows it to the families
    holding those samples (the gateway's; the API validates its query against the route, which
    declares no parameter, so it answers the whole page)."""
    body, ctype = metrics_payload(request.args.getlist("name[]") if request is not None else ())
    return Response(body, status=200, headers={"Content-Type": ctype})


def health_response() -> Response:
    """Readiness (`/health`, `/health/ready`): containers and dependencies."""
    code, doc = health()
    return json_response(doc, code)


def liveness_response() -> Response:
    """Liveness (`/health/live`): the process runs its containers."""
    code, doc = liveness()
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


class SafeHttpHandler(HttpRequestHandler):
    """nameko's `@http` without its error page: nameko answers an exception with
    `Error: <type>: <text>`; here the exception goes to the log and the caller gets a JSON error in
    Chinese with no exception name, text or traceback (400 for a malformed request, else 500)."""

    def response_from_exception(self, exc):
        if isinstance(exc, BadRequest) or isinstance(exc, self.expected_exceptions):
            return error(400, "bad_request", "请求格式不正确")
        _log.error("unhandled error in %s", getattr(self, "method_name", "?"), exc_info=exc)
        return error(500, "internal", "服务内部错误，已记录；请稍后重试")


safe_http = SafeHttpHandler.decorator
