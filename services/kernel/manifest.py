"""Service declarations (manifests): each service is declared once, everything else iterates.

A service package exports one `ServiceManifest` and registers it in the Python entry-point group
`zhifa.services` (pyproject.toml of the suite, or of a third-party distribution):

    [project.entry-points."zhifa.services"]
    personnel = "services.personnel.manifest:MANIFEST"

The launcher, dead-letter routing, the AsyncAPI channels, the findings inbox, per-department
settings, health, the HTTP API (OpenAPI routes from declared queries and commands) and the
generated parts of docker-compose.yml / prometheus.yml read `manifests()`; nothing else lists
services by name.

Declarations are plain data (no nameko, no I/O) so they can be imported by tools, tests and the
API service without starting anything.
"""
from __future__ import annotations

import functools
import logging
import re
from fnmatch import fnmatchcase
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from services.kernel.packing import PACKED_FIELDS, Layout

log = logging.getLogger("zhifa.manifest")

GROUP = "zhifa.services"

# Roles of the HTTP API (services/api). Kept here so declarations can name them.
SUPERVISOR = "supervisor"   # 司法局监督人员: all departments, read and act
DEPT_USER = "dept_user"     # 部门用户: own department only, reads and own commands
AUDITOR = "auditor"         # 审计人员: read-only, all departments (and the audit log)
OPERATOR = "operator"       # 运维人员: dead letters, health, metrics; no case data
PUBLIC = "public"           # 公众: only what is published (公示), no login
ROLES = (SUPERVISOR, DEPT_USER, AUDITOR, OPERATOR, PUBLIC)
READERS = frozenset({SUPERVISOR, DEPT_USER, AUDITOR})
ACTORS = frozenset({SUPERVISOR, DEPT_USER})


@dataclass(frozen=True)
class Param:
    """One argument of a query or command, as the HTTP API and OpenAPI see it.

    `type`: string | integer | boolean | date | date-time | object | array. `in_`: path | query |
    body. Strings are bounded (`max_length`) and may carry a `pattern` (anchored) or `enum`.
    """

    name: str
    type: str = "string"
    required: bool = False
    description: str = ""
    in_: str = "query"
    enum: tuple = ()
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None
    max_length: int = 200


@dataclass(frozen=True)
class Query:
    """A read the service answers over RPC (`method`), exposed by the API service at `path`.

    `scope` says how department isolation is enforced by the API service:
      - "dept_arg": the RPC takes `dept`; a department user's `dept` is forced to its own;
      - "result": the answer has a `dept` field; another department's record is a 404 for a
        department user;
      - "none": not department data (e.g. public views).
    `personal`: dotted paths of personal data in the answer (masked for roles that do not need it,
    reads audited). `public`: readable without login (公示). `roles`: who may call it.
    """

    name: str
    method: str
    path: str
    summary: str
    params: tuple[Param, ...] = ()
    scope: str = "dept_arg"
    personal: tuple[str, ...] = ()
    public: bool = False
    roles: frozenset = READERS
    paged: bool = False
    not_found: str = "记录不存在"


@dataclass(frozen=True)
class Command:
    """An imperative operation (网上办案 and others): RPC `method`, HTTP POST at `path`.

    The API service passes the caller's department (`dept`) and who acted (`actor`); the service
    validates against the contract and decides inside its compare-and-set loop.
    """

    name: str
    method: str
    path: str
    summary: str
    params: tuple[Param, ...] = ()
    roles: frozenset = ACTORS
    personal: bool = False


@dataclass(frozen=True)
class Aggregate:
    """An event-sourced aggregate: its collection, the ingress event types routed to it.

    `packed`: fields of its documents stored as one compressed binary (services/kernel/packing.py),
    for fields no database query filters, sorts or projects on; `lifted`: dotted paths inside them
    kept readable beside it for the queries that do (e.g. `snapshot.status`). The default packs the
    facts only; a service that packs its snapshot reads it with `packing.reading` + `unpack`."""

    name: str
    collection: str
    routes: tuple[str, ...] = ()
    description: str = ""
    dept_field: str = "dept"   # document field holding the department(s) its findings can belong to
    packed: tuple[str, ...] = PACKED_FIELDS
    lifted: tuple[str, ...] = ()
    # its id is the value of the service's `partition_key`: run as partitions, each process's deadline sweep
    # judges again only the due aggregates of its own partitions (kernel/base.py `_sweep_deadlines`)
    partitioned: bool = False

    @property
    def layout(self) -> Layout:
        return Layout(self.packed, self.lifted)


@dataclass(frozen=True)
class ServiceManifest:
    """One service's declaration."""

    name: str
    title: str                                   # Chinese name for people (console, docs)
    service: str                                 # "module:Class" of the nameko service
    metrics_port: int | None = None              # /metrics and /health port (None: HTTP-facing)
    http_facing: bool = False                    # the process's one HTTP-facing service
    http_port: int | None = None                 # its WEB_SERVER_ADDRESS port when http_facing
    aggregates: tuple[Aggregate, ...] = ()
    # (source service, event type pattern), or (source, (pattern, pattern, …)): the facts one handler
    # (one queue) takes; the facts of one aggregate arriving on one queue are batched together
    consumes: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    publishes: tuple[str, ...] = ()              # event types on `<name>.events`
    settings: Callable[..., Any] | None = None   # settings class with from_mapping(**section)
    settings_section: str | None = None          # key in presets / department settings
    queries: tuple[Query, ...] = ()
    commands: tuple[Command, ...] = ()
    findings: str | None = None                  # RPC method: list_findings(dept, rule_id, severity, limit, offset)
    rules: tuple[str, ...] = ()                  # rule ids this service can raise
    order: int = 50                              # start order (lower first)
    relays_ingress: bool = False                 # re-dispatches admitted department events on `<name>.events`
    partition_key: str | None = None             # envelope path the relayed events are partitioned by (kernel/partitions.py)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # (a declaration is loaded by every process, the gateway's included, which routes by it: a malformed
        # `consumes` entry is refused here, where a plugin's broken declaration is logged and left out)
        for entry in self.consumes:
            source, patterns = entry if isinstance(entry, tuple) and len(entry) == 2 else (None, None)
            patterns = _patterns(patterns)
            if not (isinstance(source, str) and source and isinstance(patterns, tuple) and patterns
                    and all(isinstance(p, str) and p for p in patterns)):
                raise ValueError(f"{self.name}: consumes entry {entry!r} is not (source, pattern) or "
                                 "(source, (pattern, …)) of non-empty strings")

    @property
    def health_port(self) -> int | None:
        """Where the process serves /health and /metrics: its HTTP port if HTTP-facing, else METRICS_PORT."""
        return self.http_port if self.http_facing else self.metrics_port

    def handlers(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(source, patterns) of each declared handler, in declaration order: a handler (and its queue)
        is named after its first pattern and bound to all of them (`consumes`)."""
        return tuple((source, _patterns(patterns)) for source, patterns in self.consumes)

    def consumed(self) -> tuple[tuple[str, str], ...]:
        """Every declared (source, pattern), a handler's patterns one by one."""
        return tuple((source, pattern) for source, patterns in self.handlers() for pattern in patterns)

    def aggregate_for(self, event_type: str) -> Aggregate | None:
        """The aggregate whose routes match `event_type` (first match, declaration order)."""
        return next((a for a in self.aggregates if any(fnmatchcase(event_type, r) for r in a.routes)), None)


def _patterns(declared: Any) -> Any:
    """A `consumes` entry's patterns as a tuple: one pattern written alone is a tuple of one."""
    return (declared,) if isinstance(declared, str) else declared


def handler_name(pattern: str) -> str:
    """The method (and queue) name of the generated handler whose first pattern is `pattern`."""
    return "handle_" + re.sub(r"\W", "_", pattern.split(".")[0])


def _load(ep) -> ServiceManifest | None:
    try:
        obj = ep.load()
        obj = obj() if callable(obj) and not isinstance(obj, ServiceManifest) else obj
    except Exception:  # a broken third-party declaration must not stop the suite
        log.exception("service declaration %s could not be loaded", ep.name)
        return None
    if not isinstance(obj, ServiceManifest):
        log.error("entry point %s is not a ServiceManifest", ep.name)
        return None
    return obj


_extra: dict[str, ServiceManifest] = {}


def register(manifest: ServiceManifest) -> None:
    """Add a declaration at run time (tests); the entry-point group is the normal way."""
    _extra[manifest.name] = manifest
    manifests.cache_clear()


def unregister(name: str) -> None:
    _extra.pop(name, None)
    manifests.cache_clear()


@functools.lru_cache(maxsize=1)
def manifests() -> tuple[ServiceManifest, ...]:
    """Every declared service, in start order."""
    found: dict[str, ServiceManifest] = {}
    for ep in entry_points(group=GROUP):
        m = _load(ep)
        if m is not None:
            found[m.name] = m
    found.update(_extra)
    return tuple(sorted(found.values(), key=lambda m: (m.order, m.name)))


def manifest(name: str) -> ServiceManifest | None:
    return next((m for m in manifests() if m.name == name), None)


def names() -> tuple[str, ...]:
    return tuple(m.name for m in manifests())


# ---- what the suite derives from the declarations ---------------------------------------------

def event_exchange_names() -> tuple[str, ...]:
    """`<name>.events` of every declared service (nameko's event exchanges); nothing undeclared."""
    return tuple(f"{m.name}.events" for m in manifests())


def findings_sources() -> tuple[tuple[str, str], ...]:
    """(service, RPC method) of every service that keeps findings, for the findings inbox.

    Each method is called `method(dept=None, rule_id=None, severity=None, limit=100, offset=0)` and
    answers `{items, total, limit, offset}` with the true total (services/kernel/base.py).
    """
    return tuple((m.name, m.findings) for m in manifests() if m.findings)


def settings_sections() -> tuple[str, ...]:
    """Sections a preset or a department plugin may set: one per service with settings."""
    return tuple(sorted({m.settings_section for m in manifests() if m.settings_section}))


PARTITION_PORT_STEP = 100  # partition i > 0 of a service serves /metrics and /health on its port + i × this


def process_key(service: str, index: int) -> str:
    """The name of a service's process `index` (0, 1, …): the service itself, then `penalty#2`, `penalty#3`…"""
    return service if index == 0 else f"{service}#{index + 1}"


def service_of(process: str) -> str:
    """The service a process runs (`process_key` read back): `penalty#2` runs penalty."""
    return process.split("#", 1)[0]


def service_processes(m: ServiceManifest, counts: dict[str, int] | None = None) -> list[tuple[str, int | None, int | None]]:
    """(process name, partition or None, health port) of each process a declared service runs as: one,
    or one per partition (PARTITIONS, services/kernel/partitions.py; `counts` overrides it), partition i
    on its health port + i × PARTITION_PORT_STEP."""
    from services.kernel import partitions

    n = ((counts or {}).get(m.name) or partitions.count_for(m)) if m.partition_key else 1
    if n <= 1:
        return [(m.name, None, m.health_port)]
    return [(process_key(m.name, i), i, m.health_port + i * PARTITION_PORT_STEP if m.health_port else None)
            for i in range(n)]


HEALTH_LAYOUTS = ("local", "compose", "kubernetes")


def health_targets(host: str = "127.0.0.1", layout: str = "local") -> dict[str, str]:
    """Name -> /health URL of every service process that serves one, as a process of the suite reaches it:
    `local` — each process (each partition's too) on `host` at its declared port (`make run`, one machine);
    `compose` — each process's container (docker-compose.yml: `penalty#2` is `penalty-2`) at that port;
    `kubernetes` — each service's Service at the service's port (infra/k8s: one of its pods answers)."""
    from services.kernel.deploy import container

    if layout == "kubernetes":
        return {m.name: f"http://{m.name}:{m.health_port}/health" for m in manifests() if m.health_port}
    if layout not in HEALTH_LAYOUTS:
        raise ValueError(f"unknown health layout {layout!r}: one of {', '.join(HEALTH_LAYOUTS)}")
    return {name: f"http://{container(name) if layout == 'compose' else host}:{port}/health" for m in manifests()
            for name, _, port in service_processes(m) if port}
