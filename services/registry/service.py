"""Enforcement-item registry service (执法事项清单、裁量基准、四张清单).

Entrypoints translate only: a validated envelope becomes a registry fact; the kernel folds it into
the per-item aggregate, evaluates the registry rules at `as_of` and relays `item.changed` and
findings. Leniency lists are kept one document per published list. Queries are RPC methods.

Refused facts. The gateway checks contracts; the registry domain may still refuse a fact that
satisfies its contract (a discretion standard with too few tiers or a lightest tier below the
floor, a window that ends before it starts, ...). No retry can change that verdict, so the
handler raises PoisonMessage carrying the domain's Chinese reasons: the message goes straight to
the dead letters (GET /api/v1/dead-letters), where it is listed with its error and can be replayed
once the publisher or the settings change. There is deliberately no separate `standard.rejected`
event: the dead-letter list is the one record of refused input, and a second record of the same
refusal could only disagree with it.
"""
from __future__ import annotations

from datetime import date, datetime

from nameko.rpc import rpc

from services.common.errors import DomainError, NotFoundError
from services.kernel.aggregates import derived_event_id, outbound
from services.kernel.base import EventSourcedService
from services.kernel.messaging import PoisonMessage, reliable_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.settings import DeptSettings
from services.registry import domain as d
from services.registry import store
from services.registry.manifest import MANIFEST


def record_of(code: str, facts: list[dict]) -> d.ItemRecord:
    """The item folded from its stored facts; accepted facts are never re-validated."""
    return d.ItemRecord(code, [d.Fact.from_envelope(f) for f in facts])


def item_changed_payload(record: d.ItemRecord, as_of: datetime, dept: str) -> dict:
    """Payload of `item.changed` (contracts/events/registry_internal.py): the item's whole time line."""
    versions = [{k: v for k, v in version.to_dict().items() if k not in ("code", "event_id")}
                for version in record.versions]
    standards = [{
        "standard_no": s.standard_no, "dept": s.dept, "published_at": s.published_at.isoformat(),
        "effective_from": s.effective_from.isoformat(),
        "effective_to": s.effective_to.isoformat() if s.effective_to else None,
        "legal_limit": {"kind": s.kind, "max": s.legal_max, "min": s.legal_min, "max_only": s.max_only},
        "tiers": [{"tier": t.tier, "name": t.name, "kind": t.kind, "min": t.min, "max": t.max} for t in s.tiers],
    } for s in record.standards]
    return {"item_code": record.code, "revision": len(record.facts), "as_of": as_of.isoformat(), "dept": dept,
            "versions": versions, "standards": standards}


class RegistryAdapter:
    """Runs the pure registry domain for the kernel's event-sourced repository.

    Only the fact being ingested (`incoming`) is put to the domain's checks, with the settings in
    force now for the department that published it; facts already accepted are folded as they are,
    so a settings change never un-accepts history and the deadline sweep (no incoming fact) never
    raises. `settings` is one RegistrySettings or a DeptSettings resolver (per department).
    """

    one_fact_at_a_time = True  # only `incoming` is checked: a kernel batch applies its facts one by one

    def __init__(self, settings: d.RegistrySettings | DeptSettings, incoming: str | None = None):
        self.settings = settings
        self.incoming = incoming

    def _settings(self, dept: str | None) -> d.RegistrySettings:
        if isinstance(self.settings, DeptSettings):
            return self.settings.for_dept(dept)
        return self.settings

    def aggregate_id(self, envelope: dict) -> str:
        return envelope["payload"]["item_code"]

    def fold(self, facts: list[dict]) -> d.ItemRecord:
        code = facts[0]["payload"]["item_code"]
        record = record_of(code, [f for f in facts if f["event_id"] != self.incoming])
        for fact in facts:
            if fact["event_id"] == self.incoming:
                record.apply(d.Fact.from_envelope(fact), self._settings(fact.get("dept")))
        return record

    @staticmethod
    def dept_of(agg: d.ItemRecord) -> str | None:
        latest = agg.versions[-1] if agg.versions else None
        return latest.owning_dept if latest else (agg.facts[0].dept if agg.facts else None)

    def snapshot(self, agg: d.ItemRecord, as_of: datetime) -> dict:
        snap = {k: v for k, v in agg.to_snapshot().items() if k != "facts"}  # the aggregate keeps the facts
        latest = agg.versions[-1] if agg.versions else None
        snap["dept"] = latest.owning_dept if latest else None
        snap["name"] = latest.name if latest else None
        return snap

    def findings(self, agg: d.ItemRecord, as_of: datetime):
        rules = (self.settings.host.rules("registry", self.dept_of(agg))  # built-ins are the plugin builtin.rules
                 if isinstance(self.settings, DeptSettings) else None)
        return d.evaluate_item(agg, as_of, self._settings(self.dept_of(agg)), rules)

    def due_at(self, agg: d.ItemRecord, as_of: datetime):
        return d.next_due(agg, as_of, self._settings(self.dept_of(agg)))

    def changed_events(self, agg: d.ItemRecord, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        if not agg.versions and not agg.standards:
            return []  # nothing a projection could use yet (e.g. an amendment waiting for its item)
        dept = snapshot["dept"] or agg.facts[0].dept
        payload = item_changed_payload(agg, as_of, dept)
        return [outbound("item.changed", payload, dept=dept, source="registry", occurred_at=as_of,
                         event_id=derived_event_id(cause, "item.changed", agg.code))]


def _moment(value, now: datetime) -> date | datetime:
    """A caller's `at`: None/"" = now; "YYYY-MM-DD" = that local day; an ISO datetime with offset."""
    if value is None or value == "":
        return now
    text = str(value)
    try:
        moment = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(f"时间参数无效：{text[:40]}（应为 YYYY-MM-DD 或带时区的 ISO 8601 时间）",
                          code="invalid_at", field="at") from None
    d.local_date(moment)  # refuses a datetime without a zone
    return moment


class RegistryService(EventSourcedService):
    """Enforcement items, discretion standards and leniency lists; the source of `item.changed`.

    `handle_item` (item.* and standard.*, one queue: an invalid standard is dead-lettered with every
    reason) is generated from the manifest; leniency lists are this service's own.
    """

    manifest = MANIFEST

    db = Mongo("registry", indexes=store.ensure_indexes)
    plugins = Plugins()

    def adapter(self, aggregate, envelope=None) -> RegistryAdapter:
        return RegistryAdapter(self.settings, envelope["event_id"] if envelope else None)

    @reliable_event_handler("gateway", "leniency_list.*")
    def handle_leniency_list(self, envelope):
        """Leniency lists (四张清单、涉企免罚), one document per published list."""
        try:
            lst = d.LeniencyList.from_fact(d.Fact.from_envelope(envelope))
        except DomainError as exc:
            raise PoisonMessage(f"{exc.code}: {exc}") from exc
        store.add_leniency_list(self.db, lst.event_id, lst.to_dict())

    # ---- queries -----------------------------------------------------------------------------
    def _records(self, dept: str) -> tuple[list[d.ItemRecord], dict[str, int]]:
        docs = store.item_docs_of_dept(self.db, dept)
        return ([record_of(doc["_id"], doc["facts"]) for doc in docs],
                {doc["_id"]: len(doc.get("findings_open", {})) for doc in docs})

    @rpc
    def items_of_dept(self, dept, at=None):
        """Item versions in force at `at` (default now) that `dept` holds as owner or delegated township."""
        try:
            when = _moment(at, self.clock())
        except DomainError as exc:
            return {"error": exc.to_dict()}
        records, open_findings = self._records(dept)
        by_code = {r.code: r for r in records}
        items = [{**v.to_dict(), "has_standard": by_code[v.code].standard_at(when) is not None,
                  "open_findings": open_findings[v.code]}
                 for v in d.items_of_dept(records, dept, when)]
        return {"dept": dept, "at": when.isoformat(), "items": items, "total": len(items)}

    @rpc
    def get_item(self, code):
        """One item: the version in force now, every version, standards, evaluations, open findings, facts."""
        doc = self.aggregate_doc("item", code)
        if doc is None:
            return None
        now = self.clock()
        record = record_of(code, doc["facts"])
        snap = record.to_snapshot()
        current, standard = record.version_at(now), record.standard_at(now)
        return {
            "item_code": code, "as_of": now.isoformat(),
            "current": current.to_dict() if current else None,
            "current_standard": standard.to_dict() if standard else None,
            **{k: snap[k] for k in ("versions", "standards", "evaluations", "held", "depts")},
            "findings": self.open_findings(doc),
            "history": self.history(doc),
        }

    @rpc
    def tier_range(self, code, tier, at=None):
        """{min, max, kind} of discretion tier `tier` (id or name) of item `code` at `at`, or {"error": ...}."""
        try:
            when = _moment(at, self.clock())
            doc = self.aggregate_doc("item", code)
            if doc is None:
                raise NotFoundError(f"执法事项 {code} 不存在", field="item_code")
            found = d.tier_range(record_of(code, doc["facts"]).standards, code, tier, when)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        return {"item_code": code, "tier": tier, "at": when.isoformat(),
                "min": found.min, "max": found.max, "kind": found.kind}

    @rpc
    def publication_view(self, dept, at=None):
        """What the public sees of `dept`'s items in force at `at` (事前公开), with leniency entries."""
        try:
            when = _moment(at, self.clock())
        except DomainError as exc:
            return {"error": exc.to_dict()}
        records, _ = self._records(dept)
        by_code = {r.code: r for r in records}
        held = d.items_of_dept(records, dept, when)
        lists = [d.LeniencyList.from_dict(doc)
                 for doc in store.leniency_lists(self.db, {v.owning_dept for v in held})]
        views = [view for v in held if (view := d.publication_view(by_code[v.code], when, lists)) is not None]
        return {"dept": dept, "at": when.isoformat(), "items": views, "total": len(views)}
