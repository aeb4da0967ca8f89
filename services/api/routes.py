"""The routes of the HTTP API: the API's own (auth, findings inbox, audit, dead letters, quarantine,
health) and one per query (GET) and command (POST) that a service declares in its manifest.

Paths are relative to `/api/v1` (except /health and /metrics). Every route says which roles may call
it; the service enforces it (services/api/service.py) and the OpenAPI document shows it (`x-roles`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.api import downloads
from services.kernel.manifest import (AUDITOR, DEPT_USER, OPERATOR, PUBLIC, READERS, SUPERVISOR, Param,
                                      manifests)

PREFIX = "/api/v1"
ALL_ROLES = frozenset({SUPERVISOR, DEPT_USER, AUDITOR, OPERATOR})
SEVERITIES = ("critical", "serious", "warning", "info")
DEPT_PARAM = Param("dept", max_length=40, pattern=r"\d{6}-[a-z][a-z0-9]{1,15}",
                   description="部门编码（6位行政区划代码-部门简称）")
PAGE = (Param("limit", "integer", minimum=1, maximum=500, default=50, description="每页条数"),
        Param("offset", "integer", minimum=0, maximum=1_000_000, default=0, description="跳过条数"))


@dataclass(frozen=True)
class Route:
    method: str                    # GET | POST
    path: str                      # OpenAPI style, e.g. /officers/{officer_id} (under PREFIX unless root)
    name: str                      # operationId
    summary: str
    roles: frozenset               # who may call it (PUBLIC in it: no login needed)
    params: tuple[Param, ...] = ()
    kind: str = "own"              # own | query | command
    service: str | None = None     # backing service (query/command)
    rpc: str | None = None         # RPC method (query/command)
    scope: str = "none"            # dept_arg | result | none (see kernel.manifest.Query)
    personal: bool = False         # answers may carry a party's personal data
    paged: bool = False
    not_found: str = "记录不存在"
    root: bool = False             # path not under PREFIX (/health, /metrics)
    tag: str = "api"
    audit: bool = False            # every call is an audited write
    response: str | None = None    # name of the success schema in the OpenAPI components (own routes)

    @property
    def url(self) -> str:
        return self.path if self.root else PREFIX + self.path

    @property
    def public(self) -> bool:
        return PUBLIC in self.roles

    @property
    def werkzeug_rule(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.url)


OWN: tuple[Route, ...] = (
    Route("POST", "/auth/login", "login", "登录（浏览器会话：Cookie + CSRF 令牌）", frozenset({PUBLIC}),
          (Param("username", in_="body", required=True, max_length=64),
           Param("password", in_="body", required=True, max_length=256)), tag="auth", audit=True,
          response="Login"),
    Route("POST", "/auth/logout", "logout", "退出登录", ALL_ROLES, tag="auth", audit=True, response="Ok"),
    Route("GET", "/auth/me", "me", "当前账户", ALL_ROLES, tag="auth", response="Me"),
    Route("POST", "/auth/tokens", "create_token", "为机器账户签发访问令牌（仅显示一次）", frozenset({SUPERVISOR}),
          (Param("username", in_="body", required=True, max_length=64, description="机器账户名"),
           Param("rotate", "boolean", in_="body", default=False, description="作废该账户的其他令牌")),
          tag="auth", audit=True, response="Token"),
    Route("GET", "/findings", "list_findings", "监督发现收件箱：各服务的未结发现（最严重的在前）", READERS,
          (DEPT_PARAM, Param("rule_id", max_length=64, description="规则编号"),
           Param("severity", enum=SEVERITIES, description="严重程度"),
           Param("source", max_length=40, description="来源服务"), *PAGE),
          scope="dept_arg", paged=True, personal=True, tag="findings", response="FindingsPage"),
    Route("GET", "/findings-figures", "findings_figures",
          "监督发现统计：各服务未结发现按严重程度、部门、规则计数（来自计数器，不读取发现）", READERS,
          (DEPT_PARAM, Param("source", max_length=40, description="来源服务")),
          scope="dept_arg", tag="findings", response="FindingsFigures"),
    Route("GET", "/audit", "list_audit", "审计日志（只读，追加写入）", frozenset({AUDITOR}),
          (Param("actor", max_length=64, description="操作人"), Param("action", max_length=64, description="操作"),
           Param("since", "date-time", max_length=40, description="起始时间（含）"),
           Param("until", "date-time", max_length=40, description="截止时间（不含）"),
           *PAGE), paged=True, tag="audit", response="AuditPage"),
    Route("GET", "/dead-letters", "list_dead_letters", "死信列表", frozenset({OPERATOR}),
          (Param("status", enum=("dead", "replaying", "replayed", "refused"), description="状态"), *PAGE),
          paged=True, tag="operations", response="DeadLetterPage"),
    Route("POST", "/dead-letters/{dl_id}/replay", "replay_dead_letter", "重放一条死信（按契约重新校验，只重放一次）",
          frozenset({OPERATOR}), (Param("dl_id", in_="path", required=True, max_length=128),),
          tag="operations", audit=True, not_found="死信不存在", response="Replayed"),
    Route("GET", "/quarantine", "list_quarantine", "隔离区：被拒收的输入（不含原文）", frozenset({OPERATOR}),
          (DEPT_PARAM, *PAGE), paged=True, tag="operations"),
    Route("GET", "/suite-health", "suite_health",
          "全套服务健康：每个已声明服务进程的就绪状态及其依赖（数据库、消息中间件）；一个进程不可达时整体为降级",
          frozenset({OPERATOR, SUPERVISOR}), tag="operations", response="SuiteHealth"),
    Route("GET", "/preset", "preset_in_effect", "当前生效的法域预设（来源与全部数值，公开）", frozenset({PUBLIC}),
          tag="meta", response="Preset"),
    Route("GET", "/openapi.json", "openapi", "本接口的 OpenAPI 3.1 文档", frozenset({PUBLIC}), tag="meta"),
    Route("GET", "/health", "health", "健康状态（匿名只见状态，运维人员见详情）", frozenset({PUBLIC}), root=True,
          tag="operations", response="Health"),
    Route("GET", "/health/ready", "health_ready", "就绪检查：容器运行且数据库、消息队列可达（同 /health）",
          frozenset({PUBLIC}), root=True, tag="operations", response="Health"),
    Route("GET", "/health/live", "health_live", "存活检查：进程在运行（不可用时应重启）", frozenset({PUBLIC}),
          root=True, tag="operations", response="Liveness"),
    Route("GET", "/metrics", "metrics", "Prometheus 指标", frozenset({OPERATOR}), root=True, tag="operations"),
    *downloads.routes(Route),  # documents (文书): the binary DOCX / PDF (services/api/downloads.py)
)


REVEAL = Param("reveal", max_length=200,
               description="司法局监督人员查看未脱敏个人信息的理由（至少 4 个字，记入审计日志）；其他角色不可用")


def _query_roles(q) -> frozenset:
    return frozenset(q.roles) | ({PUBLIC} if q.public else frozenset())


def declared() -> tuple[Route, ...]:
    """One route per declared query and command of every service."""
    out: list[Route] = []
    for m in manifests():
        for q in m.queries:
            reveal = (REVEAL,) if q.personal and SUPERVISOR in q.roles else ()
            out.append(Route("GET", q.path, q.name, q.summary, _query_roles(q), (*q.params, *reveal), "query",
                             m.name, q.method, q.scope, bool(q.personal), q.paged, q.not_found, tag=m.name))
        for c in m.commands:
            dept = Param("dept", max_length=40, pattern=DEPT_PARAM.pattern,
                         description="办案部门（司法局监督人员必填；部门用户默认为本部门）")
            out.append(Route("POST", c.path, c.name, c.summary, frozenset(c.roles), (*c.params, dept), "command",
                             m.name, c.method, "dept_arg", bool(c.personal), tag=m.name, audit=True))
    return tuple(out)


def all_routes() -> tuple[Route, ...]:
    routes = OWN + declared()
    seen: dict[tuple[str, str], Route] = {}
    for r in routes:
        key = (r.method, r.url)
        if key in seen:
            raise ValueError(f"two routes for {r.method} {r.url}: {seen[key].name} and {r.name}")
        seen[key] = r
    return routes


def findings_sources() -> tuple[tuple[str, str], ...]:
    """(service, RPC method) of every declared service that keeps findings."""
    return tuple((m.name, m.findings) for m in manifests() if m.findings)
