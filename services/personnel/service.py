"""Personnel credentials service (执法主体、人员、证件、培训).

Entrypoints translate only: a validated envelope becomes a domain fact, the kernel folds it
into the officer/agency aggregate, evaluates the rules and relays `officer.changed` and
findings. Queries and Zhifa-originated commands are RPC methods.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from services.kernel import config
from services.kernel.aggregates import derived_event_id, outbound
from services.kernel.base import EventSourcedService
from services.kernel.eventsourced import EventSourcedRepository
from services.kernel.messaging import PoisonMessage, reliable_event_handler
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.personnel import domain as d
from services.personnel import store
from services.common.errors import DomainError
from nameko.rpc import rpc

AGENCY_TYPES = ("agency.registered",)


class PersonnelAdapter:
    """Runs the pure personnel domain for the kernel's event-sourced repository."""

    def __init__(self, kind: str, settings: d.PersonnelSettings):
        self.kind = kind
        self.settings = settings

    def aggregate_id(self, envelope: dict) -> str:
        payload = envelope["payload"]
        return payload["agency_id"] if self.kind == "agency" else payload["officer_id"]

    def fold(self, facts: list[dict]):
        domain_facts = [d.Fact.from_envelope(f, seq=i) for i, f in enumerate(facts)]
        if self.kind == "agency":
            return d.agency_from_facts(domain_facts)
        return d.officer_from_facts(domain_facts)

    def snapshot(self, agg, as_of: datetime) -> dict:
        snap = d.to_snapshot(agg, as_of)
        if self.kind == "officer":
            snap["credential_numbers"] = [c["number"] for c in snap["credentials"]]
        return snap

    def findings(self, agg, as_of: datetime):
        if self.kind == "agency":
            return d.evaluate_agency(agg, as_of, self.settings)
        return d.evaluate_officer(agg, as_of, self.settings)

    def due_at(self, agg, as_of: datetime):
        return d.next_evaluation_at(agg, as_of, self.settings)

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        if self.kind != "officer" or not agg.registered and not agg.credentials:
            return []
        payload = d.officer_changed_payload(agg, as_of)
        return [outbound("officer.changed", payload, dept=payload["dept"] or "", source="personnel",
                         occurred_at=as_of, event_id=derived_event_id(cause, "officer.changed", agg.officer_id))]


def _settings(plugins) -> d.PersonnelSettings:
    preset = plugins.preset(config.get("JURISDICTION_PRESET")).get("personnel", {})
    return d.PersonnelSettings.from_mapping(**preset)


class PersonnelService(EventSourcedService):
    """Officers, credentials, agencies and training; the source of `officer.changed`."""

    name = "personnel"

    db = Mongo("personnel", indexes=store.ensure_indexes)
    plugins = Plugins()

    def repositories(self) -> list[EventSourcedRepository]:
        settings = _settings(self.plugins)
        return [
            EventSourcedRepository(store.officers(self.db), PersonnelAdapter("officer", settings), self.name),
            EventSourcedRepository(store.agencies(self.db), PersonnelAdapter("agency", settings), self.name),
        ]

    def _apply(self, envelope: dict):
        officers, agencies = self.repositories()
        try:
            return self.ingest(agencies if envelope["type"] in AGENCY_TYPES else officers, envelope)
        except DomainError as exc:  # a fact the domain can never accept: no retry will help
            raise PoisonMessage(f"{exc.code}: {exc}") from exc

    @reliable_event_handler("gateway", "agency.*")
    def handle_agency(self, envelope):
        """Agency (执法主体) facts from the ingress."""
        self._apply(envelope)

    @reliable_event_handler("gateway", "officer.*")
    def handle_officer(self, envelope):
        """Officer registration facts from the ingress."""
        self._apply(envelope)

    @reliable_event_handler("gateway", "credential.*")
    def handle_credential(self, envelope):
        """Credential lifecycle facts (issued/suspended/restored/revoked/cancelled/filed)."""
        self._apply(envelope)

    @reliable_event_handler("gateway", "training.*")
    def handle_training(self, envelope):
        """Training records."""
        self._apply(envelope)

    # ---- queries -----------------------------------------------------------------------------
    @rpc
    def list_officers(self, dept=None, status=None, q=None, limit=50, offset=0):
        """Officers filtered by department, status and name."""
        return store.list_officers(self.db, dept=dept, status=status, q=q, limit=int(limit), offset=int(offset))

    @rpc
    def list_findings(self, dept=None):
        """Open personnel findings (credentials, training, agencies), of one department when given."""
        found = store.open_findings(self.db, dept)
        return {"items": found, "total": len(found)}

    @rpc
    def get_officer(self, officer_id):
        """One officer with credentials (statuses as of now), open findings and fact history."""
        doc = store.officers(self.db).get(officer_id)
        if doc is None:
            return None
        now = self.clock()
        officer = PersonnelAdapter("officer", d.DEFAULT_SETTINGS).fold(doc["facts"])
        snap = d.to_snapshot(officer, now)
        history = [{k: f[k] for k in ("event_id", "type", "occurred_at", "dept", "source", "payload")}
                   for f in doc["facts"]]
        return {**snap, "findings": list(doc.get("findings_open", {}).values()), "history": history}

    @rpc
    def get_credential(self, number):
        """One credential by number, with its holder and status as of now."""
        doc = store.officer_by_credential(self.db, number)
        if doc is None:
            return None
        officer = self.get_officer(doc["_id"])
        cred = next((c for c in officer["credentials"] if c["number"] == number), None)
        holder = {k: officer[k] for k in ("officer_id", "name", "dept", "agency_id", "kind", "status")}
        return {**cred, "holder": holder}

    @rpc
    def verify_officer(self, officer_id, area, at=None, region=None):
        """May this officer enforce in `area` at time `at`? Every reason if not."""
        at_dt = datetime.fromisoformat(at) if at else self.clock()
        doc = store.officers(self.db).get(officer_id)
        officer = PersonnelAdapter("officer", d.DEFAULT_SETTINGS).fold(doc["facts"]) if doc else None
        verdict = d.can_act(officer, area, at_dt, region=region)
        return {"officer_id": officer_id, "area": area, "at": at_dt.isoformat(), "allowed": verdict.allowed,
                "credential_no": verdict.credential_no,
                "reasons": [{"code": r.code, "message": r.message, "credential_no": r.credential_no}
                            for r in verdict.reasons]}

    # ---- commands (departments that manage credentials in Zhifa itself) ---------------------------
    @rpc
    def change_credential(self, action, officer_id, number, at, dept, reason=None):
        """Suspend (暂扣) / restore (恢复) / revoke (收回) / cancel (注销) / file (备案) a credential."""
        commands = {"suspend": d.suspend_credential, "restore": d.restore_credential,
                    "revoke": d.revoke_credential, "cancel": d.cancel_credential}
        at_dt = datetime.fromisoformat(at)
        doc = store.officers(self.db).get(officer_id)
        officer = PersonnelAdapter("officer", d.DEFAULT_SETTINGS).fold(doc["facts"]) if doc else None
        event_id = str(uuid.uuid4())
        try:
            if action == "file":
                fact = d.file_credential(officer, number, at_dt, reason, event_id=event_id, dept=dept)
            elif action in commands:
                fact = commands[action](officer, number, at_dt, reason, event_id=event_id, dept=dept)
            else:
                return {"ok": False, "error": {"code": "unknown_action", "message": f"未知操作 {action}"}}
        except DomainError as exc:
            return {"ok": False, "error": exc.to_dict()}
        envelope = {"event_id": fact.event_id, "type": fact.type, "schema_version": 1,
                    "occurred_at": fact.occurred_at.isoformat(), "dept": dept, "source": "zhifa",
                    "payload": fact.payload}
        self._apply(envelope)
        return {"ok": True, "event_id": fact.event_id, "type": fact.type}
