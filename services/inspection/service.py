"""Inspection planning service (检查计划、名录库、双随机、检查登记、检查码).

Declared in manifest.py; the kernel generates the handlers of the declared routes
(`inspection_plan.*`, `inspection_pool.*`, `inspection_draw.*`, `inspection.*`), the findings
query, the deadline sweep and the command path. What is this service's own:

- the adapters over the pure domain (domain.py) for the five aggregates;
- `after_save`: what one aggregate tells others, as derived facts with deterministic ids (so a
  redelivery or a crash between two writes repairs itself): a plan's targets become
  `inspection.planned` on each enterprise (joint-inspection suggestions before anything happens),
  a draw's result `inspection.drawn`, plans and registrations `inspection_unit.*` facts on the
  department's unit aggregate; plus the side indexes and the figures' counters (store.py);
- projections of `officer.changed` and `item.changed` (no RPC per inspection or per draw); a newer
  projection makes the enterprises that refer to it due, and the sweep re-evaluates them;
- the draw commands (announce with a commitment, perform by revealing, publish) and the
  inspection code (检查码) signing and public verification.
"""
from __future__ import annotations

import secrets
import sys
from datetime import datetime
from typing import Any

from nameko.rpc import rpc

from services.common.chinatime import iso_local, local_date, parse_time
from services.common.errors import DomainError
from services.common.facts import Fact
from services.common.qualification import holder_from_payload
from services.inspection import code as ic
from services.inspection import domain as d
from services.inspection import draw as dr
from services.inspection import store
from services.inspection.manifest import MANIFEST
from services.kernel import config
from services.kernel.aggregates import derived_event_id
from services.kernel.base import EventSourcedService, bounded as _bounded
from services.kernel.commands import CommandRefused, build_envelope
from services.kernel.messaging import batch_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.penalty.projections import projected_item
from services.penalty.store import _officer_facts as officer_facts  # what the credential rules read

# What this process has already written to the side collections, per database (a process may serve
# several databases: the tests give each test its own), to skip repeat writes.
_KNOWN: dict[tuple[str, str], set] = {}


def _known(db, what: str) -> set:
    return _KNOWN.setdefault((db.name, what), set())


def _facts(facts: list[dict]) -> list[Fact]:
    return [Fact.from_envelope(f, seq=i) for i, f in enumerate(facts)]


def _officer_read_changed(old: dict | None, version: int, payload: dict) -> bool:
    """Whether storing an officer's `payload` over the document `old` changed what the inspector rules
    read of it, or stored the same version again (a redelivery after a stop before its enterprises
    were made due)."""
    return officer_facts((old or {}).get("payload")) != officer_facts(payload) or (old or {}).get("version") == version


def item_check(payload: dict | None, dept: str, code: str, at: datetime) -> d.ItemCheck | None:
    """What the projected registry says about item `code` for `dept` at `at` (None: never published)."""
    return d.item_check(projected_item(payload) if payload is not None else None, dept, code, at)


def lookups(db, officer_ids, item_codes) -> d.Lookups:
    officers = {k: holder_from_payload(v) for k, v in store.officer_payloads(db, officer_ids).items()}
    items = store.item_payloads(db, item_codes)
    return d.Lookups(officer=officers.get, item=lambda dept, code, at: item_check(items.get(code), dept, code, at))


class InspectionAdapter:
    """Runs the pure inspection domain for the kernel's event-sourced repository (one per aggregate kind)."""

    ID_FIELDS = {"plan": "plan_id", "pool": "pool_id", "draw": "draw_id", "unit": "dept"}

    def __init__(self, kind: str, db, settings):
        self.kind, self.db, self.settings = kind, db, settings

    def _for(self, dept: str | None) -> d.InspectionSettings:
        return self.settings.for_dept(dept) if hasattr(self.settings, "for_dept") else self.settings

    def aggregate_id(self, envelope: dict) -> str:
        if self.kind == "enterprise":
            return d.target_of(envelope["payload"])
        return str(envelope["payload"][self.ID_FIELDS[self.kind]])

    def admit(self, facts: list[dict], fact: dict) -> None:
        """Refuse (NotOwnerError) a fact about another department's plan, pool, draw or inspection."""
        self.fold(list(facts) + [fact])

    def fold(self, facts: list[dict]):
        first = facts[0]
        folded = _facts(facts)
        agg_id = self.aggregate_id(first)
        return {"plan": d.plan_from_facts, "pool": d.pool_from_facts, "draw": d.draw_from_facts,
                "enterprise": d.enterprise_from_facts, "unit": d.unit_from_facts}[self.kind](agg_id, folded)

    def snapshot(self, agg, as_of: datetime) -> dict:
        if self.kind == "unit":
            return agg.to_dict(as_of, self._for(agg.dept))
        return agg.to_dict()

    def findings(self, agg, as_of: datetime):
        """The department's rules from the plugin host (built-ins: plugin `builtin.rules`)."""
        look = None
        if self.kind == "enterprise":
            look = lookups(self.db, {o for i in agg.inspections.values() for o in i.officers},
                           {c for i in agg.inspections.values() for c in i.item_codes})
        host = getattr(self.settings, "host", None)
        rules_for = (lambda dept: host.rules("inspection", dept)) if host is not None else None
        return d.evaluate(agg, as_of, self._for, look, rules_for)

    def due_at(self, agg, as_of: datetime):
        if self.kind == "plan":
            return d.plan_due_at(agg, self._for(agg.dept), as_of)
        if self.kind == "draw":
            return d.draw_due_at(agg, self._for(agg.dept), as_of)
        if self.kind == "unit":
            return d.unit_due_at(agg, self._for(agg.dept), as_of)
        if self.kind == "enterprise":
            return d.enterprise_due_at(agg, self._for, as_of)
        return None

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        return []  # findings only; the unit's findings carry what personnel needs (consequence)


def _listing(dept, year, year_field: str, limit, offset) -> tuple[dict[str, Any], int, int]:
    """(query, limit, offset) of a department/year listing; DomainError naming a bad argument."""
    query: dict[str, Any] = {"dept": dept} if dept else {}
    if year not in (None, ""):
        query[year_field] = _bounded(year, "year", 1949, 2100)
    return query, _bounded(limit, "limit", 1, 500), _bounded(offset, "offset", 0, 1_000_000)


def _refuse(code: str, field: str | None, message: str):
    raise CommandRefused(code, field, message)


class InspectionService(EventSourcedService):
    """Plans, pools, verifiable draws, inspection records, unit rules, inspection codes."""

    manifest = MANIFEST

    db = Mongo("inspection", indexes=store.ensure_indexes)
    plugins = Plugins()

    def adapter(self, aggregate, envelope=None) -> InspectionAdapter:
        return InspectionAdapter(aggregate.name, self.db, self.settings)

    # ---- what one aggregate tells the others -----------------------------------------------------
    def _derive(self, aggregate: str, type_: str, payload: dict, dept: str, occurred_at: str, *id_parts: str) -> None:
        event_id = derived_event_id("inspection-derived", type_, *id_parts)
        if event_id in _known(self.db, "derived"):
            return
        envelope = build_envelope(type_, payload, dept=dept, occurred_at=occurred_at, event_id=event_id)
        self.ingest(self.repository(self.aggregate(aggregate), envelope), envelope)
        _known(self.db, "derived").add(event_id)

    def after_save(self, aggregate, doc: dict) -> None:
        facts = doc.get("facts") or []
        if not facts:
            return
        latest = max(facts, key=lambda f: f["occurred_at"])["occurred_at"]
        adapter = self.adapter(aggregate)
        if aggregate.name == "plan":
            plan = adapter.fold(facts)
            for p in d.planned_payloads(plan):
                self._derive("enterprise", d.INSPECTION_PLANNED, p, plan.dept, latest, plan.plan_id, p["target_id"],
                             dr.digest(p))
            for type_, p in d.unit_payloads(plan):
                self._derive("unit", type_, p, plan.dept, latest, plan.plan_id, dr.digest(p))
        elif aggregate.name == "draw":
            draw = adapter.fold(facts)
            for p in d.drawn_payloads(draw):
                self._derive("enterprise", d.INSPECTION_DRAWN, p, draw.dept, latest, draw.draw_id, p["target_id"],
                             str(p["attempt"]))
        elif aggregate.name == "enterprise":
            snap = doc["snapshot"]
            inspections = snap.get("inspections") or []
            officers = {o for i in inspections for o in i["officers"]}
            codes = {c for i in inspections for c in i["item_codes"]}
            keys = {f"officer:{o}" for o in officers} | {f"item:{c}" for c in codes}
            store.index_refs(self.db, doc["_id"], sorted(keys), _known(self.db, "refs"))
            if doc.get("evaluated_at") and store.projection_newer(self.db, officers, codes, doc["evaluated_at"]):
                self.store(aggregate).mark_due(doc["_id"], self.clock())  # the sweep re-evaluates it
            store.index_inspections(self.db, doc["_id"], inspections, _known(self.db, "index"))
            for insp in inspections:
                store.count_inspection(self.db, doc["_id"], insp, _known(self.db, "counted"),
                                       lambda dept: self.settings.for_dept(dept).yearly_caps)
            for p in d.registration_unit_payloads(adapter.fold(facts)):
                self._derive("unit", d.UNIT_REGISTERED, p, p["dept"], f"{p['on']}T00:00:00+08:00", p["dept"], p["on"])

    # ---- projections ---------------------------------------------------------------------------
    @batch_event_handler("personnel", "officer.changed")
    def handle_officer_changed(self, envelopes):
        """Officer snapshots, a batch at a time (one outcome per envelope: see `_projections`)."""
        return self._projections(envelopes, self.db.officers, "officer_id", "version", _officer_read_changed)

    @batch_event_handler("registry", "item.changed")
    def handle_item_changed(self, envelopes):
        """Item time lines, a batch at a time (one outcome per envelope: see `_projections`)."""
        return self._projections(envelopes, self.db.items, "item_code", "revision", lambda old, version, payload: True)

    def _projections(self, envelopes, col, key_field: str, version_field: str, makes_due) -> list | None:
        """Officer snapshots (for the inspector rules and the draw's inspector pool) or item time lines
        (for the item rule), a batch at a time: stored in order, each kept unless a newer version is
        (store.store_projections: one read, one insert, one bulk), then the enterprises referring to
        those whose change `makes_due(old document, version, payload)` made due in one bulk
        (`store.mark_due`). One outcome per envelope (messaging.BatchEventHandler): None, or the
        `sys.exc_info()` of its failure — an envelope without a readable key and version, its own
        write, or the due marks its store asked for (then it is redelivered: storing the same version
        again makes them again). Without batching (BATCH_MAX 1: one envelope, not a list) the same, its
        failure raised, as penalty's `_projections_changed` does."""
        if not isinstance(envelopes, list):
            failure = self._projections([envelopes], col, key_field, version_field, makes_due)[0]
            if failure is not None:
                raise failure[1].with_traceback(failure[2])
            return None
        outcomes: list = [None] * len(envelopes)
        entries, positions = [], []
        for i, envelope in enumerate(envelopes):
            try:
                payload = envelope["payload"]
                entries.append((payload[key_field], int(payload[version_field]), payload))
                positions.append(i)
            except Exception:
                outcomes[i] = sys.exc_info()
        if not entries:
            return outcomes
        now = self.clock()
        try:
            answers = store.store_projections(col, entries, now)
        except Exception:  # the read failed: nothing of the batch was written
            failed, read = sys.exc_info(), set(positions)
            return [failed if i in read else o for i, o in enumerate(outcomes)]
        due: dict[int, list] = {}
        for (key, version, payload), i, answer in zip(entries, positions, answers):
            if isinstance(answer, store.Failed):
                outcomes[i] = answer.exc_info  # its write failed: retried / dead-lettered alone
                continue
            stored, old = answer
            if stored and makes_due(old, version, payload):
                due[i] = (old or {}).get("targets") or []
        targets = [t for ts in due.values() for t in ts]
        if targets:
            try:
                store.mark_due(self.db, targets, now)
            except Exception:
                failed = sys.exc_info()
                for i, ts in due.items():
                    if ts:
                        outcomes[i] = failed
        return outcomes

    # ---- draws (commands) ------------------------------------------------------------------------
    def _inspector_pool(self, dept: str, item_codes, at: datetime, chosen) -> list[dict]:
        items = store.item_payloads(self.db, item_codes or ())
        areas = sorted({c.area for code in item_codes or () if (c := item_check(items.get(code), dept, code, at))
                        and c.area}) or [""]
        pool = []
        for payload in store.officers_of_dept(self.db, dept):
            holder = holder_from_payload(payload)
            if d.officer_verdict(holder, areas, at)[0]:
                pool.append({"id": holder.officer_id, "name": holder.name})
        if chosen:
            known = {p["id"] for p in pool}
            missing = [o for o in chosen if o not in known]
            if missing:
                _refuse("unqualified_inspectors", "inspectors",
                        f"以下人员不在本部门合格执法人员名录中（无有效证件或领域不符）：{'、'.join(missing)}")
            pool = [p for p in pool if p["id"] in set(chosen)]
        return sorted(pool, key=lambda p: p["id"])

    @rpc
    def announce_draw(self, draw_id, pool_id, params, dept, plan_id=None, conflicts=None, inspectors=None,
                      seed_method="commit_reveal", beacon_source=None, reason=None):
        """Announce (commit) a draw: the pool, the qualified inspectors, the parameters and the seed's
        commitment are fixed and published before anything is drawn. Announcing again is a new,
        recorded attempt and needs a reason."""
        now = self.clock()
        try:
            pool_doc = self.aggregate_doc("pool", str(pool_id))
            if pool_doc is None:
                _refuse("not_found", "pool_id", f"名录库 {pool_id} 不存在")
            pool = self.adapter(self.aggregate("pool")).fold(pool_doc["facts"])
            if pool.dept != dept:
                _refuse("forbidden", "pool_id", f"名录库 {pool_id} 属于 {pool.dept}，{dept} 无权使用")
            plan = None
            if plan_id:
                plan_doc = self.aggregate_doc("plan", str(plan_id))
                plan = self.adapter(self.aggregate("plan")).fold(plan_doc["facts"]) if plan_doc else None
                if plan is None or plan.dept != dept:
                    _refuse("not_found", "plan_id", f"本部门没有检查计划 {plan_id}")
            at = max(now, d.day_start(plan.period_from)) if plan and plan.period_from else now
            team = self._inspector_pool(dept, plan.item_codes if plan else (), at, inspectors)
            seed = None
            if seed_method == "commit_reveal":
                seed = secrets.token_hex(32)
                seed_spec = {"method": "commit_reveal", "commitment": dr.seed_commitment(seed)}
            elif seed_method == "beacon":
                if not beacon_source:
                    _refuse("missing_param", "beacon_source", "公开随机源抽取须写明随机源（如某日某彩票开奖号码）")
                seed_spec = {"method": "beacon", "source": str(beacon_source)}
            else:
                _refuse("invalid_value", "seed_method", "随机数来源只能是 commit_reveal 或 beacon")
            announcement = {
                "draw_id": draw_id, "dept": dept, "plan_id": plan_id, "pool_id": pool_id,
                "announced_at": iso_local(now),
                "targets": [{"id": m["id"], "name": m["name"], "grade": m["grade"]} for m in pool.to_dict()["members"]],
                "inspectors": team, "params": params if isinstance(params, dict) else {},
                "conflicts": [{"officer_id": c.get("officer_id"), "target_id": c.get("target_id"),
                               "relation": c.get("relation")} for c in conflicts or () if isinstance(c, dict)],
                "seed": seed_spec,
            }
            try:
                dr.check_announcement(announcement)
            except dr.DrawError as exc:
                _refuse("invalid_value", exc.field, str(exc))
        except CommandRefused as exc:
            return {"ok": False, "error": {"code": exc.code, "field": exc.field, "message": exc.message}}
        if seed is not None:
            store.save_secret(self.db, seed_spec["commitment"], seed)

        def decide(draw, event_id):
            if draw is not None and draw.dept and draw.dept != dept:
                _refuse("forbidden", "draw_id", f"抽取 {draw_id} 属于 {draw.dept}，{dept} 无权操作")
            if draw is not None and draw.attempts and not (reason or "").strip():
                _refuse("reason_required", "reason",
                        f"抽取 {draw_id} 已进行过 {len(draw.attempts)} 次，再次抽取须说明理由（每次均记录并公开）")
            return Fact(event_id, d.DRAW_ANNOUNCED, now, dept,
                        {"draw_id": draw_id, "plan_id": plan_id, "reason": reason, "announcement": announcement,
                         "announcement_digest": dr.digest(announcement)})

        return self.execute("draw", str(draw_id), decide, dept=dept, summary=self._draw_summary)

    @rpc
    def perform_draw(self, draw_id, dept, seed=None):
        """Reveal the seed and compute the result (draw.py); a draw is performed once per attempt."""
        now = self.clock()

        def decide(draw, event_id):
            if draw is None or draw.current is None:
                _refuse("not_found", "draw_id", f"抽取 {draw_id} 尚未公告")
            if draw.dept != dept:
                _refuse("forbidden", "draw_id", f"抽取 {draw_id} 属于 {draw.dept}，{dept} 无权操作")
            cur = draw.current
            if cur.performed_at is not None:
                _refuse("already_performed", "draw_id",
                        f"抽取 {draw_id} 第 {cur.number} 次已于 {iso_local(cur.performed_at)} 实施；再次抽取须重新公告并说明理由")
            if now <= cur.announced_at:
                _refuse("too_early", "draw_id", "抽取须在公告之后实施")
            spec = cur.announcement["seed"]
            value = store.secret(self.db, spec["commitment"]) if spec["method"] == "commit_reveal" else seed
            if not value:
                _refuse("missing_param", "seed", "公开随机源抽取须提供随机源的取值" if spec["method"] == "beacon"
                        else "找不到该次公告的随机数种子")
            try:
                result = dr.compute_result(cur.announcement, str(value))
            except dr.DrawError as exc:
                _refuse("invalid_value", exc.field, str(exc))
            return Fact(event_id, d.DRAW_PERFORMED, now, dept,
                        {"draw_id": draw_id, "attempt": cur.number, "seed": str(value), "result": result,
                         "result_digest": dr.digest(result)})

        return self.execute("draw", str(draw_id), decide, dept=dept, summary=self._draw_summary)

    @rpc
    def publish_draw(self, draw_id, dept, url=None):
        """Record that the result was published (公开); the 20-working-day rule then clears."""
        now = self.clock()

        def decide(draw, event_id):
            if draw is None or draw.current is None or draw.current.performed_at is None:
                _refuse("not_performed", "draw_id", f"抽取 {draw_id} 尚未实施，无结果可公开")
            if draw.dept != dept:
                _refuse("forbidden", "draw_id", f"抽取 {draw_id} 属于 {draw.dept}，{dept} 无权操作")
            if draw.current.published_on is not None:
                _refuse("already_published", "draw_id", f"抽取 {draw_id} 的结果已于 {draw.current.published_on} 公开")
            return Fact(event_id, d.DRAW_PUBLISHED, now, dept,
                        {"draw_id": draw_id, "attempt": draw.current.number,
                         "published_on": local_date(now).isoformat(), "url": url})

        return self.execute("draw", str(draw_id), decide, dept=dept, summary=self._draw_summary)

    def _draw_summary(self, doc: dict) -> dict:
        return {"draw": self._public_draw(doc)}

    @staticmethod
    def _public_draw(doc: dict) -> dict:
        snap = doc["snapshot"]
        cur = (snap.get("attempts") or [None])[-1]
        return {"draw_id": snap["draw_id"], "dept": snap["dept"], "plan_id": snap["plan_id"], "status": snap["status"],
                "attempts": snap["attempts"], "announcement": snap["announcement"],
                "announcement_digest": cur and cur["announcement_digest"],
                "announced_at": cur and cur["announced_at"], "record": snap["record"]}

    # ---- queries ---------------------------------------------------------------------------------------
    def _detail(self, collection: str, agg_id: str) -> dict | None:
        doc = store.aggregate(self.db, collection, agg_id)
        if doc is None:
            return None
        return {**doc["snapshot"], "findings": self.open_findings(doc), "history": self.history(doc)}

    @rpc
    def list_plans(self, dept=None, year=None, limit=50, offset=0):
        """Plans by department and year."""
        try:
            query, limit, offset = _listing(dept, year, "snapshot.year", limit, offset)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        docs, total = store.list_docs(self.db, "plans", query, limit, offset)
        items = [{**{k: v for k, v in doc["snapshot"].items() if k not in ("targets", "content")},
                  "targets": len(doc["snapshot"].get("targets") or ()),
                  "open_findings": sorted({f["rule_id"] for f in (doc.get("findings_open") or {}).values()})}
                 for doc in docs]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @rpc
    def get_plan(self, plan_id):
        """One plan with its open findings and facts."""
        return self._detail("plans", plan_id)

    @rpc
    def get_pool(self, pool_id):
        """One target pool (名录库) with its members."""
        return self._detail("pools", pool_id)

    @rpc
    def get_draw(self, draw_id):
        """One draw: every attempt, the current announcement and record, findings, facts."""
        return self._detail("draws", draw_id)

    @rpc
    def public_draw(self, draw_id):
        """What is published of a draw: the announcement (before) and the record (after); no secrets."""
        doc = store.aggregate(self.db, "draws", draw_id)
        return self._public_draw(doc) if doc else None

    @rpc
    def get_enterprise(self, target_id):
        """Every inspection record, plan and draw concerning one enterprise, with open findings."""
        return self._detail("enterprises", target_id)

    @rpc
    def list_inspections(self, dept=None, year=None, limit=50, offset=0):
        """Inspection records of a department (lead department), newest first."""
        try:
            query, limit, offset = _listing(dept, year, "year", limit, offset)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        col = self.db.inspection_index
        total = col.count_documents(query)
        items = []
        for ref in col.find(query).sort("_id", -1).skip(offset).limit(limit):
            doc = store.aggregate(self.db, "enterprises", ref["target_id"]) or {}
            insp = next((i for i in (doc.get("snapshot") or {}).get("inspections", ())
                         if i["inspection_id"] == ref["_id"]), None)
            if insp:
                rules = sorted({f["rule_id"] for f in (doc.get("findings_open") or {}).values()
                                if f["subject_id"] == ref["_id"]})
                items.append({**insp, "target_id": ref["target_id"], "target_name": doc["snapshot"].get("name"),
                              "open_findings": rules})
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @rpc
    def unit_status(self, dept):
        """A department's inspection work: last registration, idle days and the credential consequence."""
        doc = store.aggregate(self.db, "units", dept)
        if doc is None:
            return None
        snap = self.adapter(self.aggregate("unit")).snapshot(
            self.adapter(self.aggregate("unit")).fold(doc["facts"]), self.clock())
        return {**snap, "findings": self.open_findings(doc)}

    @rpc
    def figures(self, dept=None, year=None):
        """Inspections this year vs last, per-enterprise frequency, joint rate, draw share, over-cap enterprises."""
        try:
            year = _bounded(year, "year", 1949, 2100) if year not in (None, "") else local_date(self.clock()).year
        except DomainError as exc:
            return {"error": exc.to_dict()}
        settings = self.settings.for_dept(dept) if dept else self.settings.for_dept(None)
        this, last = store.figures_doc(self.db, dept, year), store.figures_doc(self.db, dept, year - 1)
        n = int(this.get("inspections", 0))
        frequency = {k: int(v) for k, v in ((this.get("dist") or {}).get("all") or {}).items() if v}
        over = {kind: int(v) for kind, v in (this.get("over_cap") or {}).items() if v}
        return {
            "dept": dept, "year": year, "inspections": n, "last_year": int(last.get("inspections", 0)),
            "by_kind": this.get("by_kind") or {},
            "frequency": {k: frequency[k] for k in sorted(frequency, key=int)},
            "joint": int(this.get("joint", 0)), "joint_rate": round(this.get("joint", 0) / n, 4) if n else None,
            "joint_rate_target": settings.joint_rate_target,
            "from_draws": int(this.get("drawn", 0)), "draw_share": round(this.get("drawn", 0) / n, 4) if n else None,
            "remote": int(this.get("remote", 0)),
            "enterprises_over_cap": sum(over.values()), "over_cap_by_kind": over,
        }

    @rpc
    def month_figures(self, months):
        """Inspections per month for every department and the county ('*'): the counters kept on
        write, for the coordination service's monthly and quarterly reports (an RPC, no HTTP route)."""
        if not isinstance(months, list) or not all(isinstance(m, str) and len(m) == 7 for m in months) \
                or len(months) > 24:
            return {"error": {"code": "invalid_value", "field": "months", "message": "months 应为至多 24 个 YYYY-MM"}}
        return store.month_figures(self.db, months)

    # ---- inspection codes (检查码) ------------------------------------------------------------------
    @staticmethod
    def _code_key():
        secret = config.get("INSPECTION_CODE_KEY") or \
            f"dev:{config.get('INTERNAL_KEY') or ''}:{config.get('AMQP_URI')}"
        return ic.private_key(str(secret))

    def _legality(self, insp: dict, target_id: str) -> dict:
        """Officers with the credential each acts under, items held, approval: the legality view."""
        ent = d.enterprise_from_facts(target_id, _facts(store.aggregate(self.db, "enterprises", target_id)["facts"]))
        record = ent.inspections[insp["inspection_id"]]
        look = lookups(self.db, record.officers, record.item_codes)
        checks = d.item_checks(record, look)
        areas = d.inspection_areas(checks)
        settings = self.settings.for_dept(record.dept)
        officers = []
        for officer_id in record.officers:
            holder = look.officer(officer_id)
            ok, credential_no, reasons = d.officer_verdict(holder, areas, record.started_at)
            officers.append({"id": officer_id, "name": holder.name if holder else None, "credential_no": credential_no,
                             "qualified": ok, "reasons": reasons})
        return {"officers": officers,
                "items": [{"code": code, "held": d.item_problem(check, settings) is None,
                           "reason": d.item_problem(check, settings)} for code, check in checks.items()],
                "approval": ({"approved_by": insp["approved_by"], "approved_at": insp["approved_at"]}
                             if insp["approved_at"] else None)}

    @rpc
    def inspection_code(self, target_id, inspection_id):
        """The signed 检查码 of a registered inspection (deterministic: asking twice gives the same code)."""
        doc = store.aggregate(self.db, "enterprises", target_id)
        insp = next((i for i in ((doc or {}).get("snapshot") or {}).get("inspections", ())
                     if i["inspection_id"] == inspection_id), None)
        if insp is None:
            return None
        view = self._legality(insp, target_id)
        claims = {"v": 1, "inspection_id": inspection_id, "dept": insp["dept"], "agency_id": insp["agency_id"],
                  "officers": [{"id": o["id"], "name": o["name"], "credential_no": o["credential_no"]}
                               for o in view["officers"]],
                  "items": list(insp["item_codes"]), "approval": view["approval"],
                  "from": insp["started_at"], "to": insp["ended_at"]}
        key = self._code_key()
        return {"dept": insp["dept"], "inspection_id": inspection_id, "code": ic.sign(claims, key),
                "public_key": ic.public_key_hex(key)}

    @rpc
    def verify_inspection_code(self, code):
        """Public: is this 检查码 genuine, and is the inspection lawful (agency, officers and their
        credentials, items, approval)? Shows nothing else about the inspection or the enterprise."""
        key = self._code_key()
        try:
            claims = ic.verify(code, ic.public_key_hex(key))
        except ic.CodeError as exc:
            return {"genuine": False, "lawful": False, "error": {"code": exc.code, "field": "code", "message": str(exc)}}
        ref = store.inspection_ref(self.db, claims["inspection_id"])
        doc = store.aggregate(self.db, "enterprises", ref["target_id"]) if ref else None
        insp = next((i for i in ((doc or {}).get("snapshot") or {}).get("inspections", ())
                     if i["inspection_id"] == claims["inspection_id"]), None)
        if insp is None:
            return {"genuine": True, "lawful": False, "registered": False, **claims,
                    "problems": ["该检查未登记（未登记视为未检查）"]}
        view = self._legality(insp, ref["target_id"])
        problems = [f"{o['name'] or o['id']}：{'；'.join(o['reasons'])}" for o in view["officers"] if not o["qualified"]]
        qualified = sum(1 for o in view["officers"] if o["qualified"])
        minimum = self.settings.for_dept(insp["dept"]).min_officers
        if qualified < minimum:
            problems.append(f"具备资格的执法人员 {qualified} 人，少于 {minimum} 人")
        problems += [f"事项 {i['code']}：{i['reason']}" for i in view["items"] if not i["held"]]
        if view["approval"] is None:
            problems.append("该检查未经执法机关负责人批准")
        return {"genuine": True, "registered": True, "lawful": not problems, "problems": problems,
                "dept": insp["dept"], "agency_id": insp["agency_id"], "from": insp["started_at"], "to": insp["ended_at"],
                "officers": [{k: o[k] for k in ("name", "credential_no", "qualified")} for o in view["officers"]],
                "items": [{k: i[k] for k in ("code", "held")} for i in view["items"]], "approval": view["approval"]}

    @rpc
    def inspection_code_key(self):
        """Public: the Ed25519 public key that verifies 检查码 offline."""
        return {"algorithm": "Ed25519", "public_key": ic.public_key_hex(self._code_key()), "format": ic.PREFIX}
