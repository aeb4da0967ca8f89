"""OpenAPI 3.1 document of the HTTP API, generated from the route table (services/api/routes.py).

Checked in as services/api/openapi.json (`python -m services.api.openapi > services/api/openapi.json`)
and kept in sync by tests/unit/test_api_openapi.py; served at `GET /api/v1/openapi.json`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from services.api import downloads
from services.api.routes import Route, all_routes
from services.kernel.manifest import HEALTH_LAYOUTS, PUBLIC, Param, manifests

CHECKED_IN = Path(__file__).with_name("openapi.json")
ERROR_CODES = {
    "400": "参数不符合声明（code、field 指明哪个参数违反了哪条规则）",
    "401": "未登录或凭据无效",
    "403": "角色无权调用，或不属于本部门",
    "404": "记录不存在（或属于其他部门）",
    "405": "不支持的方法",
    "413": "请求体过大",
    "409": "与当前状态冲突",
    "422": "生成的事实（命令）或死信不符合事件契约（violations 列出每处违反）",
    "429": "登录尝试过多",
    "503": "后端服务暂不可用",
}
PARTY = {"type": "object", "description": "当事人；证件号码、电话、地址按角色脱敏（见 docs/api.md）"}


def _page(item: dict, **extra) -> dict:
    return {"type": "object", "required": ["items", "total", "limit", "offset"],
            "properties": {"items": {"type": "array", "items": item}, "total": {"type": "integer", "minimum": 0},
                           "limit": {"type": "integer"}, "offset": {"type": "integer"}, **extra}}


STR, STR_OR_NULL = {"type": "string"}, {"type": ["string", "null"]}
USER = {"type": "object", "required": ["username", "role", "dept", "via"], "additionalProperties": False,
        "properties": {"username": STR, "role": {"enum": ["supervisor", "dept_user", "auditor", "operator"]},
                       "dept": STR_OR_NULL, "via": {"enum": ["session", "token"]}}}
OWN_SCHEMAS = {
    "User": USER,
    "Login": {"type": "object", "required": ["user", "csrf_token"],
              "properties": {"user": {"$ref": "#/components/schemas/User"}, "csrf_token": STR}},
    "Me": {"type": "object", "required": ["user"], "properties": {"user": {"$ref": "#/components/schemas/User"}}},
    "Ok": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}},
    "Token": {"type": "object", "required": ["username", "token"], "properties": {"username": STR, "token": STR}},
    "Finding": {"type": "object", "required": ["rule_id", "severity", "source"],
                "properties": {"rule_id": STR, "severity": {"enum": ["critical", "serious", "warning", "info"]},
                               "source": STR, "dept": STR_OR_NULL, "finding_key": STR}},
    "FindingsPage": _page({"$ref": "#/components/schemas/Finding"},
                          unavailable={"type": "array", "items": STR, "description": "未答复的来源服务"}),
    "FindingsFigures": {"type": "object", "required": ["total", "by_severity", "rows", "unavailable"],
                        "properties": {"total": {"type": "integer", "minimum": 0},
                                       "by_severity": {"type": "object", "additionalProperties": {"type": "integer"}},
                                       "rows": {"type": "array", "items": {
                                           "type": "object", "required": ["severity", "rule_id", "count", "source"],
                                           "properties": {"severity": STR, "dept": STR_OR_NULL, "rule_id": STR,
                                                          "count": {"type": "integer"}, "source": STR}}},
                                       "unavailable": {"type": "array", "items": STR,
                                                       "description": "未答复的来源服务"}}},
    "AuditEntry": {"type": "object",
                   "required": ["id", "at", "actor", "role", "action", "method", "route", "client", "status"],
                   "properties": {"id": STR, "at": STR, "actor": STR_OR_NULL, "role": STR, "dept": STR_OR_NULL,
                                  "action": STR, "method": STR, "route": STR, "target": {"type": "object"},
                                  "client": STR, "status": {"type": "integer"},
                                  "personal": {"enum": ["full", "masked", None]}}},
    "AuditPage": _page({"$ref": "#/components/schemas/AuditEntry"}),
    "DeadLetter": {"type": "object", "required": ["_id", "status", "event", "size", "sha256"],
                   "properties": {"_id": STR, "status": {"enum": ["dead", "replaying", "replayed", "refused"]},
                                  "queue": STR, "service": STR, "size": {"type": "integer"}, "sha256": STR,
                                  "event": {"type": "object", "description": "信封摘要（不含 payload）"}},
                   "not": {"anyOf": [{"required": ["traceback"]}, {"required": ["headers"]},
                                     {"required": ["body"]}]}},
    "DeadLetterPage": _page({"$ref": "#/components/schemas/DeadLetter"}),
    "Replayed": {"type": "object", "required": ["ok", "id", "status"],
                 "properties": {"ok": {"const": True}, "id": STR, "status": {"const": "replayed"}}},
    "Preset": {"type": "object", "required": ["name", "settings", "problems"],
               "properties": {"name": STR, "sources": {"type": ["array", "null"]}, "settings": {"type": "object"},
                              "problems": {"type": "array"}}},
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "degraded"]}}},
    "Liveness": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["alive", "dead"]}}},
    "SuiteHealth": {"type": "object", "required": ["status", "layout", "processes"],
                    "properties": {"status": {"enum": ["ok", "degraded"]},
                                   "layout": {"enum": list(HEALTH_LAYOUTS)},
                                   "processes": {"type": "array", "items": {
                                       "type": "object", "required": ["process", "service", "title", "status", "url"],
                                       "properties": {"process": STR, "service": STR, "title": STR,
                                                      "status": {"enum": ["ok", "degraded", "unreachable"]},
                                                      "url": STR, "error": STR,
                                                      "services": {"type": "object", "description": "进程内各服务的状态"},
                                                      "dependencies": {"type": "object",
                                                                       "description": "依赖（database、broker）的状态与说明"},
                                                      "plugins": {"type": "object", "description": "插件失败（隔离，不影响就绪）"}}}}}},
}


def _schema(p: Param) -> dict:
    if p.type == "integer":
        s: dict = {"type": "integer"}
        if p.minimum is not None:
            s["minimum"] = p.minimum
        if p.maximum is not None:
            s["maximum"] = p.maximum
    elif p.type == "boolean":
        s = {"type": "boolean"}
    elif p.type in ("date", "date-time"):
        s = {"type": "string", "format": p.type, "maxLength": p.max_length}
    elif p.type == "object":
        s = {"type": "object"}
    elif p.type == "array":
        s = {"type": "array"}
    else:
        s = {"type": "string", "maxLength": p.max_length}
        if p.enum:
            s["enum"] = list(p.enum)
        if p.pattern:
            s["pattern"] = f"^(?:{p.pattern})$"
        if p.in_ == "path":
            s["minLength"] = 1
            s["pattern"] = s.get("pattern", r"^[^/\x00-\x1f\x7f]+$")
    if p.default is not None:
        s["default"] = p.default
    return s


def _error() -> dict:
    return {"$ref": "#/components/schemas/Error"}


def _ok_schema(route: Route) -> dict:
    if route.name == "metrics":
        return {"type": "string"}
    if route.response:
        return {"$ref": f"#/components/schemas/{route.response}"}
    if route.paged:
        return {"$ref": "#/components/schemas/Page"}
    return {"type": "object"}


def operation(route: Route) -> dict:
    params = [p for p in route.params if p.in_ in ("path", "query")]
    body = [p for p in route.params if p.in_ == "body"]
    op: dict = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "x-roles": sorted(route.roles),
        "x-personal-data": route.personal,
        "parameters": [{"name": p.name, "in": p.in_, "required": p.in_ == "path" or p.required,
                        "description": p.description or p.name, "schema": _schema(p)} for p in params],
        "responses": {},
    }
    if route.scope != "none":
        op["x-dept-scope"] = route.scope
    if body:
        op["requestBody"] = {"required": any(p.required for p in body), "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {p.name: {**_schema(p), "description": p.description or p.name} for p in body},
            "required": [p.name for p in body if p.required]}}}}
    ok_type = "text/plain" if route.name == "metrics" else "application/json"
    op["responses"]["200"] = {"description": "成功", "content": {ok_type: {"schema": _ok_schema(route)}}}
    if route.name == "download_document":  # bytes, not JSON (services/api/downloads.py)
        op["responses"]["200"] = {"description": "文书文件", "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in downloads.CONTENT_TYPES.values()}}
    codes = ["400", "404", "503"]
    if not route.public or route.name == "logout":
        codes += ["401", "403"]
    if route.kind == "command" or route.name == "replay_dead_letter":
        codes.append("409")
    if route.name == "replay_dead_letter" or route.kind == "command":
        codes.append("422")
    if route.method == "POST" and route.params:
        codes.append("413")
    if route.name == "login":
        codes += ["401", "429"]
    for code in sorted(set(codes)):
        op["responses"][code] = {"description": ERROR_CODES[code],
                                 "content": {"application/json": {"schema": _error()}}}
    if params:  # the HTTP server itself refuses a request line over 8 KiB (no body)
        op["responses"]["414"] = {"description": "请求行过长（超过 8 KiB）"}
    if route.name == "health":
        op["responses"]["503"] = {"description": "不健康", "content": {"application/json": {"schema": {"type": "object"}}}}
    if not route.public:
        op["security"] = [{"session": [], "csrf": []}, {"bearer": []}] if route.method == "POST" else \
            [{"session": []}, {"bearer": []}]
    else:
        op["security"] = [{}]
    return op


def document() -> dict:
    paths: dict = {}
    for route in all_routes():
        paths.setdefault(route.url, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zhifa 执法监督平台 HTTP API",
            "version": "1",
            "description": "面向人员（监督人员、部门用户、审计人员、运维人员、公众）的统一接口。每个接口的 x-roles "
                           "列出可调用的角色；部门用户只能看到、操作本部门的数据。错误一律为 JSON："
                           "{\"error\": {\"code\", \"field\", \"message\"}}。",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("auth", "findings", "audit", "operations", "meta",
                                       *(m.name for m in manifests() if m.queries or m.commands))],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "zhifa_session",
                            "description": "浏览器会话（POST /api/v1/auth/login 设置；HttpOnly、SameSite=Strict）"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                         "description": "会话请求的状态变更操作须带上登录时返回的 CSRF 令牌（也在 zhifa_csrf Cookie 中）"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "机器账户的访问令牌"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "field": {"type": ["string", "null"]},
                                   "message": {"type": "string"}}}}},
                "Page": {"type": "object", "required": ["items", "total"],
                         "properties": {"items": {"type": "array", "items": {"type": "object"}},
                                        "total": {"type": "integer", "minimum": 0},
                                        "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
                "Party": PARTY,
                **OWN_SCHEMAS,
            },
        },
    }


def rendered() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(rendered())
