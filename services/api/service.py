"""The HTTP API service: one HTTP API for people, every route checked for who may call it.

One catch-all HTTP entrypoint matches the request against the route table (services/api/routes.py),
authenticates (bearer token, or session cookie + CSRF header for state changes), checks the role and
the department, parses the parameters against their declarations, calls the backing service over
RPC, masks personal data for roles that do not need it and records writes and personal-data reads in
the audit log. Errors are always JSON `{"error": {code, field, message}}`; no bad input answers 500.
"""
from __future__ import annotations

import functools
import heapq
import json
import logging
from datetime import datetime
from typing import Any

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import ClusterRpc
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from services.api import accounts, audit, console, downloads
from services.api.accounts import AccountError, LoginRefused, Principal
from services.api.masking import mask, sees_personal
from services.api.openapi import document
from services.api.params import ParamError, parse
from services.api.routes import Route, all_routes, findings_sources
from services.kernel import config
from services.kernel.clock import Clock
from services.kernel.health import suite_report
from services.kernel.manifest import DEPT_USER, OPERATOR, SUPERVISOR, manifests
from services.kernel.metrics import Metrics, health, liveness
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.web import json_response, metrics_response

log = logging.getLogger("zhifa.api")

SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER = "zhifa_session", "zhifa_csrf", "X-CSRF-Token"
MAX_BODY = 64 * 1024
FINDINGS_CHUNK = 500
# service refusal codes -> HTTP status (everything else a service refuses is bad input: 400)
STATUS_OF = {"not_found": 404, "standard_not_found": 404, "unknown_tier": 404, "forbidden": 403,
             "illegal_transition": 409, "conflict": 409, "already_replayed": 409,
             "contract_violation": 422, "unavailable": 503}


class ApiWebServer(WebServer):
    """The API's own web server: `API_WEB_SERVER_ADDRESS`, else nameko's WEB_SERVER_ADDRESS.

    A separate shared extension, so a test process can run the gateway's and the API's HTTP side by
    side on two ports without one stealing the other's requests.
    """

    @property
    def bind_addr(self):
        return parse_address(str(config.get("API_WEB_SERVER_ADDRESS") or config.get("WEB_SERVER_ADDRESS")
                                 or "127.0.0.1:8080"))

    def get_wsgi_app(self):
        return JsonWsgiApp(self)


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, but whatever its routing refuses (e.g. a path with a newline, which the
    catch-all `<path:…>` rule does not match) is answered in JSON too."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        try:
            provider, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            code = exc.code or 404
            response = err(code, "no_such_route" if code == 404 else "bad_request",
                           "没有这个接口，见 /api/v1/openapi.json" if code == 404 else "请求无法处理")
        return response(environ, start_response)


class ApiHttpHandler(HttpRequestHandler):
    server = ApiWebServer()


api_http = ApiHttpHandler.decorator


class Refusal(Exception):
    """An answer other than success: status, code, field, Chinese message."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = status, code, message, field, extra

    def response(self) -> Response:
        resp = json_response({"error": {"code": self.code, "field": self.field, "message": self.message,
                                        **self.extra}}, self.status)
        if self.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="zhifa"'
        return resp


def err(status: int, code: str, message: str, field: str | None = None) -> Response:
    return Refusal(status, code, message, field).response()


def metrics_scrapers() -> set[str]:
    """Addresses allowed to read /metrics without a token (default: loopback, for `make monitor`)."""
    value = config.get("API_METRICS_ALLOW")
    if value is None:
        import os

        value = os.environ.get("API_METRICS_ALLOW", "127.0.0.1,::1")
    if isinstance(value, str):
        value = value.split(",")
    return {str(v).strip() for v in value or () if str(v).strip()}


def record_depts(doc: Any) -> set[str]:
    """Departments a record (or a page of records) belongs to: `dept`, `depts`, `holder.dept`."""
    out: set[str] = set()
    if not isinstance(doc, dict):
        return out
    for key in ("dept", "owning_dept"):
        if isinstance(doc.get(key), str):
            out.add(doc[key])
    if isinstance(doc.get("depts"), list):
        out |= {d if isinstance(d, str) else (d or {}).get("dept") for d in doc["depts"]} - {None}
    if isinstance(doc.get("holder"), dict) and isinstance(doc["holder"].get("dept"), str):
        out.add(doc["holder"]["dept"])
    if isinstance(doc.get("items"), list):
        for item in doc["items"]:
            out |= record_depts(item)
    return out


def takes_actor(service: str, method: str) -> bool:
    """Whether a declared command's RPC method takes `actor` (who acted), read from its signature."""
    return takes(service, method, "actor")


@functools.lru_cache(maxsize=None)
def takes(service: str, method: str, name: str) -> bool:
    """Whether a declared command's RPC method takes the argument `name` (`actor`: who acted,
    `role`: the caller's role, for a service whose rule depends on it), read from its signature."""
    import importlib
    import inspect

    from services.kernel.manifest import manifest

    declared = manifest(service)
    try:
        module, _, cls = declared.service.partition(":")
        fn = getattr(getattr(importlib.import_module(module), cls), method)
        params = inspect.signature(fn).parameters
    except Exception:  # not importable here: call without it
        return False
    return name in params or (name == "actor" and any(p.kind is p.VAR_KEYWORD for p in params.values()))


def _sort_key(f: dict):
    """The services' findings order (services/kernel/findings_index.py): most severe first, then
    department, then rule; within a rule a source's own order (the order raised) is kept — rule ids
    belong to one service, so the merge is exact."""
    from services.api.routes import SEVERITIES

    rank = SEVERITIES.index(f.get("severity")) if f.get("severity") in SEVERITIES else 9
    return rank, str(f.get("dept") or ""), str(f.get("rule_id") or "")


def merged_page(sources, fetch, offset: int, limit: int, unavailable: list | None = None) -> tuple[list[dict], int]:
    """One page of the findings of several services, most severe first, and the true total.

    Each source answers `fetch(service, method, offset, count)` with `{items, total}` in the same order,
    so the first `offset + limit` of the merge are among the first `offset + limit` of each source:
    read each source that far (in chunks), merge, cut the page. The total is the sum of the totals.
    A source that does not answer (503) is left out and named in `unavailable` (the inbox says so
    rather than failing whole).
    """
    need = offset + limit
    if len(sources) == 1:  # one source: its own page is the page (no need to read it from the start)
        service, method = sources[0]
        try:
            reply = fetch(service, method, offset, limit)
        except Refusal as exc:
            if exc.status != 503 or unavailable is None:
                raise
            unavailable.append(service)
            return [], 0
        return [{**f, "source": service} for f in reply.get("items") or []], int(reply.get("total") or 0)
    runs, total = [], 0
    for service, method in sources:
        got: list[dict] = []
        src_total = None
        while src_total is None or len(got) < min(need, src_total):
            try:
                reply = fetch(service, method, len(got), min(FINDINGS_CHUNK, need - len(got)) or 1)
            except Refusal as exc:
                if exc.status != 503 or unavailable is None:
                    raise
                unavailable.append(service)
                got, src_total = [], 0
                break
            items = reply.get("items") or []
            src_total = int(reply.get("total") or 0)
            got.extend({**f, "source": service} for f in items)
            if not items:
                break
        total += src_total or 0
        runs.append(sorted(got[:need], key=_sort_key))
    return list(heapq.merge(*runs, key=_sort_key))[offset:need], total


class ApiService:
    """HTTP API: accounts and roles, declared queries and commands, findings, audit, operations."""

    name = "api"

    db = Mongo("api", indexes=accounts.ensure_indexes)
    rpc = ClusterRpc()
    clock = Clock()
    metrics = Metrics()
    plugins = Plugins()

    _map: tuple | None = None   # (the manifests it was built from, the werkzeug Map)

    @classmethod
    def url_map(cls) -> Map:
        """The route table as a werkzeug Map, rebuilt when the declared services change (register())."""
        declared = manifests()
        if cls._map is None or cls._map[0] is not declared:
            cls._map = (declared, Map([Rule(r.werkzeug_rule, methods=[r.method], endpoint=r) for r in all_routes()],
                                      strict_slashes=False))
        return cls._map[1]

    @api_http("GET,POST,PUT,PATCH,DELETE", "/<path:path>")
    def handle(self, request, path):
        return self._respond(request)

    @api_http("GET,POST,PUT,PATCH,DELETE", "/")
    def handle_root(self, request):
        return self._respond(request)

    # ---- request pipeline --------------------------------------------------------------------
    def _respond(self, request) -> Response:
        try:
            return self._serve(request)
        except Refusal as exc:
            return exc.response()
        except ParamError as exc:
            return err(exc.status, exc.code, exc.message, exc.field)
        except Exception:  # logged, never shown: no exception text reaches an answer
            log.exception("API request %s %s failed", request.method, request.path)
            return err(500, "internal_error", "服务器内部错误，已记录，请稍后再试")

    def _serve(self, request) -> Response:
        adapter = self.url_map().bind_to_environ(request.environ)
        try:
            route, values = adapter.match()
        except MethodNotAllowed:
            raise Refusal(405, "method_not_allowed", f"该路径不支持 {request.method} 方法") from None
        except NotFound:
            if request.method == "GET" and not request.path.startswith("/api/"):
                page = console.serve(request.path)  # the console's page and assets (services/api/console.py)
                if page is not None:
                    return page
            raise Refusal(404, "no_such_route", "没有这个接口，见 /api/v1/openapi.json") from None
        principal = self._authenticate(request)
        self._authorize(route, principal, request)
        body = self._body(route, request)
        query = {k: request.args.getlist(k) for k in request.args.keys()}
        args = parse(route.params, path=values, query=query, body=body)
        if route.kind == "query":
            return self._query(route, principal, args, request)
        if route.kind == "command":
            return self._command(route, principal, args, request)
        return getattr(self, f"_own_{route.name}")(route, principal, args, request)

    def _authenticate(self, request) -> Principal | None:
        now = self.clock()
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Refusal(401, "invalid_token", "Authorization 头格式应为：Bearer <令牌>", "Authorization")
            principal = accounts.by_token(self.db, value.strip(), now)
            if principal is None:
                raise Refusal(401, "invalid_token", "访问令牌无效、已过期或账户已停用", "Authorization")
            return principal
        session = request.cookies.get(SESSION_COOKIE)
        return accounts.by_session(self.db, session, now) if session else None

    def _authorize(self, route: Route, principal: Principal | None, request) -> None:
        if route.public:
            return
        if route.name == "metrics" and principal is None and self.client(request) in metrics_scrapers():
            return  # a Prometheus on an allowed address scrapes without a token (API_METRICS_ALLOW)
        if principal is None:
            raise Refusal(401, "unauthenticated", "请先登录（或提供访问令牌）")
        if principal.role not in route.roles:
            raise Refusal(403, "forbidden_role", f"角色 {principal.role} 无权调用此接口")
        if principal.via == "session" and route.method != "GET":
            sent = request.headers.get(CSRF_HEADER) or ""
            if not sent or sent != request.cookies.get(CSRF_COOKIE) or accounts.digest(sent) != principal.csrf_hash:
                raise Refusal(403, "csrf", "缺少或错误的 CSRF 令牌（请求头 X-CSRF-Token）", CSRF_HEADER)

    @staticmethod
    def _body(route: Route, request) -> dict | None:
        if route.method != "POST":
            return None
        raw = request.get_data(cache=False)
        if len(raw) > MAX_BODY:
            raise Refusal(413, "max_bytes", f"请求体超过 {MAX_BODY} 字节")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refusal(400, "malformed_json", "请求体不是合法的 JSON") from None
        if not isinstance(body, dict):
            raise Refusal(400, "not_an_object", "请求体必须是 JSON 对象")
        return body

    # ---- helpers -----------------------------------------------------------------------------
    @staticmethod
    def client(request) -> str:
        return str(request.remote_addr or "")[:64]

    def _audit(self, request, route: Route, principal: Principal | None, action: str, status: int,
               target: dict | None = None, personal: str | None = None, actor: str | None = None) -> None:
        audit.record(self.db, at=self.clock(), actor=actor or (principal.username if principal else None),
                     role=principal.role if principal else "public", dept=principal.dept if principal else None,
                     action=action, route=f"{route.method} {route.url}", method=route.method,
                     client=self.client(request), status=status, target=target, personal=personal)

    def _call(self, service: str, method: str, **kwargs):
        try:
            with eventlet.Timeout(config.checked("API_RPC_TIMEOUT_SECONDS")):
                return getattr(self.rpc[service], method)(**kwargs)
        except eventlet.Timeout:
            log.warning("RPC %s.%s timed out", service, method)
        except UnknownService:
            log.warning("RPC %s.%s: service not running", service, method)
        except RemoteError:
            log.exception("RPC %s.%s failed", service, method)
        raise Refusal(503, "service_unavailable", f"后端服务 {service} 暂不可用，请稍后再试")

    @staticmethod
    def _dept(principal: Principal | None, given: str | None, *, required: bool = False) -> str | None:
        """The department a request may speak for: a department user's own, whatever it asked."""
        if principal is not None and principal.role == DEPT_USER:
            if given and given != principal.dept:
                raise Refusal(403, "forbidden_dept", f"部门用户只能访问本部门（{principal.dept}）的数据", "dept")
            return principal.dept
        if required and not given:
            raise Refusal(400, "required", "缺少必填参数 dept（办案部门）", "dept")
        return given

    def _answer(self, request, route: Route, principal: Principal | None, doc: Any, target: dict,
                reveal: str | None = None) -> Response:
        """Mask personal data unless the caller needs it (or a supervisor gave a reason to see it);
        audit every answer that carries some."""
        depts = record_depts(doc)
        masked, found = mask(doc)
        if not found:
            return json_response(doc)
        full = principal is not None and (sees_personal(principal.role, principal.dept, depts) or bool(reveal))
        self._audit(request, route, principal, "personal_read", 200, {**target, **({"reveal": reveal} if reveal else {})},
                    "full" if full else "masked")
        return json_response(doc if full else masked)

    @staticmethod
    def _refused(reply: dict, missing: str) -> Refusal:
        e = reply.get("error") or {}
        code = e.get("code") or "invalid_argument"
        return Refusal(STATUS_OF.get(code, 400), code, e.get("message") or missing, e.get("field"),
                       **({"violations": e["violations"]} if isinstance(e.get("violations"), list) else {}))

    # ---- declared queries and commands ---------------------------------------------------------
    def _query(self, route: Route, principal: Principal | None, args: dict, request) -> Response:
        reveal = args.pop("reveal", None)
        if reveal is not None:
            if principal is None or principal.role != SUPERVISOR:
                raise Refusal(403, "forbidden_reveal", "只有司法局监督人员可以说明理由查看未脱敏的个人信息", "reveal")
            if len(reveal.strip()) < 4:
                raise Refusal(400, "reveal_reason", "请说明查看未脱敏个人信息的理由（至少 4 个字）", "reveal")
        if route.scope == "dept_arg" and "dept" in args:
            args["dept"] = self._dept(principal, args["dept"])
        reply = self._call(route.service, route.rpc, **args)
        if reply is None:
            raise Refusal(404, "not_found", route.not_found)
        if isinstance(reply, dict) and "error" in reply:
            raise self._refused(reply, route.not_found)
        if route.scope == "result" and principal is not None and principal.role == DEPT_USER \
                and principal.dept not in record_depts(reply):
            raise Refusal(404, "not_found", route.not_found)  # another department's record: as if absent
        if route.scope == "dept_arg" and "dept" not in args and principal is not None \
                and principal.role == DEPT_USER and record_depts(reply) - {principal.dept}:
            # a declaration that promises department scope but takes no `dept`: never leak, say why
            log.warning("query %s declares scope dept_arg without a dept parameter", route.name)
            raise Refusal(403, "forbidden_dept", "此接口的答复含有其他部门的数据，部门用户不能调用")
        target = {k: v for k, v in args.items() if v is not None and k not in ("limit", "offset")}
        return self._answer(request, route, principal, reply, target, reveal)

    def _command(self, route: Route, principal: Principal, args: dict, request) -> Response:
        dept = self._dept(principal, args.pop("dept", None), required=True)
        target = {k: v for k, v in args.items() if isinstance(v, (str, int, bool))}
        who = {"actor": principal.username} if takes_actor(route.service, route.rpc) else {}
        if takes(route.service, route.rpc, "role"):
            who["role"] = principal.role
        reply = self._call(route.service, route.rpc, **args, dept=dept, **who)
        if not isinstance(reply, dict):
            raise Refusal(503, "service_unavailable", "后端服务答复无效")
        status = 200 if reply.get("ok") else STATUS_OF.get((reply.get("error") or {}).get("code"), 400)
        self._audit(request, route, principal, route.name, status, {**target, "dept": dept})
        if status != 200:
            raise self._refused(reply, "操作被拒绝")
        masked, found = mask(reply)
        full = sees_personal(principal.role, principal.dept, {dept})
        return json_response(reply if full or not found else masked)

    # ---- the API's own routes -------------------------------------------------------------------
    def _own_login(self, route, principal, args, request) -> Response:
        try:
            who, session, csrf = accounts.login(self.db, args["username"], args["password"], self.client(request),
                                                self.clock())
        except LoginRefused as exc:
            self._audit(request, route, None, "login_failed", exc.status, {"username": args["username"]},
                        actor=args["username"])
            refusal = Refusal(exc.status, exc.code, exc.message)
            resp = refusal.response()
            if exc.retry_after:
                resp.headers["Retry-After"] = str(exc.retry_after)
            return resp
        self._audit(request, route, who, "login", 200)
        resp = json_response({"user": who.to_dict(), "csrf_token": csrf})
        secure = bool(accounts.setting("API_COOKIE_SECURE"))
        max_age = int(accounts.setting("API_SESSION_HOURS")) * 3600
        resp.set_cookie(SESSION_COOKIE, session, max_age=max_age, path="/", httponly=True, secure=secure,
                        samesite="Strict")
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", httponly=False, secure=secure,
                        samesite="Strict")
        return resp

    def _own_logout(self, route, principal, args, request) -> Response:
        accounts.logout(self.db, principal)
        self._audit(request, route, principal, "logout", 200)
        resp = json_response({"ok": True})
        resp.delete_cookie(SESSION_COOKIE, path="/")
        resp.delete_cookie(CSRF_COOKIE, path="/")
        return resp

    def _own_me(self, route, principal, args, request) -> Response:
        return json_response({"user": principal.to_dict()})

    def _own_create_token(self, route, principal, args, request) -> Response:
        if accounts.get_user(self.db, args["username"]) is None:
            raise Refusal(404, "not_found", f"用户 {args['username']} 不存在", "username")
        try:
            token = accounts.issue_token(self.db, args["username"], self.clock(), rotate=bool(args["rotate"]))
        except AccountError as exc:
            raise Refusal(400, exc.code, exc.message, exc.field) from None
        self._audit(request, route, principal, "create_token", 200, {"username": args["username"]})
        return json_response({"username": args["username"], "token": token})

    @staticmethod
    def _findings_sources(source: str | None) -> list[tuple[str, str]]:
        """(service, RPC method) of the findings sources a request names (all of them when none)."""
        sources = findings_sources()
        names = [s for s, _ in sources]
        if source and source not in names:
            raise Refusal(400, "enum", f"参数 source 只能是：{'、'.join(names)}", "source")
        return [(s, m) for s, m in sources if not source or source == s]

    def _own_list_findings(self, route, principal, args, request) -> Response:
        chosen = self._findings_sources(args["source"])
        dept = self._dept(principal, args["dept"])
        limit, offset = args["limit"], args["offset"]

        def fetch(service, method, at, count):
            reply = self._call(service, method, dept=dept, rule_id=args["rule_id"], severity=args["severity"],
                               limit=count, offset=at)
            if isinstance(reply, dict) and "error" in reply:
                raise self._refused(reply, "参数错误")
            return reply

        unavailable: list[str] = []
        merged, total = merged_page(chosen, fetch, offset, limit, unavailable)
        page = {"items": merged, "total": total, "limit": limit, "offset": offset, "unavailable": unavailable}
        return self._answer(request, route, principal, page,
                            {k: v for k, v in {"dept": dept, "source": args["source"]}.items() if v})

    def _own_findings_figures(self, route, principal, args, request) -> Response:
        """The overview's findings figures: every source's counters (findings_figures), added up."""
        chosen = self._findings_sources(args["source"])
        dept = self._dept(principal, args["dept"])
        rows, unavailable = [], []
        for service, _ in chosen:
            try:
                reply = self._call(service, "findings_figures", dept=dept)
            except Refusal as exc:
                if exc.status != 503:
                    raise
                unavailable.append(service)
                continue
            rows.extend({**r, "source": service} for r in (reply or {}).get("rows") or ())
        rows.sort(key=_sort_key)
        by_severity: dict[str, int] = {}
        for r in rows:
            by_severity[r["severity"]] = by_severity.get(r["severity"], 0) + r["count"]
        return json_response({"total": sum(by_severity.values()), "by_severity": by_severity, "rows": rows,
                              "unavailable": unavailable})

    def _own_list_audit(self, route, principal, args, request) -> Response:
        since, until = (datetime.fromisoformat(args[k]) if args[k] else None for k in ("since", "until"))
        return json_response(audit.entries(self.db, actor=args["actor"], action=args["action"], since=since,
                                           until=until, limit=args["limit"], offset=args["offset"]))

    def _own_list_dead_letters(self, route, principal, args, request) -> Response:
        return json_response(self._call("gateway", "list_dead_letters", status=args["status"],
                                         limit=args["limit"], offset=args["offset"]))

    def _own_replay_dead_letter(self, route, principal, args, request) -> Response:
        reply = self._call("gateway", "replay_dead_letter", dl_id=args["dl_id"], actor=principal.username)
        status = 200 if reply.get("ok") else STATUS_OF.get((reply.get("error") or {}).get("code"), 400)
        self._audit(request, route, principal, "replay_dead_letter", status, {"dl_id": args["dl_id"]})
        if status != 200:
            raise self._refused(reply, route.not_found)
        return json_response(reply)

    def _own_list_quarantine(self, route, principal, args, request) -> Response:
        return json_response(self._call("gateway", "list_quarantine", dept=args["dept"], limit=args["limit"],
                                        offset=args["offset"]))

    def _own_preset_in_effect(self, route, principal, args, request) -> Response:
        return json_response(self.plugins.preset_in_effect(str(config.get("JURISDICTION_PRESET"))))

    def _own_openapi(self, route, principal, args, request) -> Response:
        return json_response(document())

    def _own_health(self, route, principal, args, request, probe=health) -> Response:
        code, doc = probe()
        if principal is None or principal.role not in (OPERATOR, SUPERVISOR):
            doc = {"status": doc["status"]}
        return json_response(doc, code)

    def _own_suite_health(self, route, principal, args, request) -> Response:
        """Every declared service process's /health, asked at once (kernel/health.py): 200 with the table
        whatever it says — a process down is the answer's content, not this route's failure. The API's own
        /health tells an anonymous caller (the probe) its status alone, so this process's row carries its
        dependencies and plugin failures as read here."""
        report = suite_report(config.checked("SUITE_HEALTH_LAYOUT"), config.checked("SUITE_HEALTH_TIMEOUT_SECONDS"))
        _, own = health()
        for row in report["processes"]:
            if row["service"] == self.name and row["status"] != "unreachable":
                row.update({key: own[key] for key in ("services", "dependencies", "plugins") if key in own})
        return json_response(report)

    def _own_health_ready(self, route, principal, args, request) -> Response:
        return self._own_health(route, principal, args, request)

    def _own_health_live(self, route, principal, args, request) -> Response:
        return self._own_health(route, principal, args, request, probe=liveness)

    def _own_download_document(self, route, principal, args, request) -> Response:
        return downloads.download_document(self, route, principal, args, request, Refusal)

    def _own_metrics(self, route, principal, args, request) -> Response:
        return metrics_response()  # (no query parameter declared: `?name[]=` is refused as unknown, 400)
