"""Personnel credentials service (执法主体、人员、证件、培训).

Declared in manifest.py; the kernel (services/kernel/base.py) generates the event handlers of
the declared routes (`handle_agency`; `handle_officer`, one queue for an officer's officer,
credential and training facts), the findings query, the sweep and the command path. What is this service's own: the adapter over
the pure personnel domain, the officer/credential queries and the credential commands.
"""
from __future__ import annotations

from datetime import datetime

from nameko.rpc import rpc

from services.common.errors import DomainError
from services.common.ownership import may_report, only_reporter
from services.kernel.aggregates import derived_event_id, outbound
from services.kernel.base import EventSourcedService, bounded
from services.kernel.commands import CommandRefused
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.settings import DeptSettings
from services.personnel import domain as d
from services.personnel import store
from services.personnel.manifest import MANIFEST

CREDENTIAL_COMMANDS = {"suspend": d.suspend_credential, "restore": d.restore_credential,
                       "revoke": d.revoke_credential, "cancel": d.cancel_credential, "file": d.file_credential}
COMMAND_FACT_TYPES = {"suspend": "credential.suspended", "restore": "credential.restored",
                      "revoke": "credential.revoked", "cancel": "credential.cancelled", "file": "credential.filed"}


class PersonnelAdapter:
    """Runs the pure personnel domain for the kernel's event-sourced repository.

    `settings` is a department's PersonnelSettings, or a DeptSettings resolver: the rules of an
    officer or agency then run with the settings of the department that owns it.
    """

    def __init__(self, kind: str, settings: d.PersonnelSettings | DeptSettings):
        self.kind = kind
        self.settings = settings
        self.creating = (f"{kind}.registered",)  # the fact that creates it (kernel: inserted unread)
        # the aggregate (fold) whose findings this adapter judged last, and the last one it held a new
        # finding back on (`unsettled`): `due_at` of the same fold then knows whether the settle
        # instant is a moment to judge again (the kernel asks findings, unsettled, then due_at)
        self._judged = self._held = None

    def _settings(self, agg) -> d.PersonnelSettings:
        if isinstance(self.settings, DeptSettings):
            return self.settings.for_dept(agg.dept)
        return self.settings

    def aggregate_id(self, envelope: dict) -> str:
        payload = envelope["payload"]
        return payload["agency_id"] if self.kind == "agency" else payload["officer_id"]

    def admit(self, facts: list[dict], fact: dict) -> None:
        """Refuse (NotOwnerError) a fact from a department that does not own the officer/agency."""
        if only_reporter(facts, fact):
            return  # every earlier fact came from the same department: it owns the subject (or nobody yet)
        d.admit(self.fold(facts), d.Fact.from_envelope(fact, seq=len(facts)))

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
        found = d.evaluate(agg, as_of, self._settings(agg), self._rules(agg))
        self._judged = agg
        return found

    def _rules(self, agg):
        """The rules the plugin host gives this department (built-ins are the plugin builtin.rules)."""
        if isinstance(self.settings, DeptSettings):
            return self.settings.host.rules("personnel", agg.dept)
        return None

    def due_at(self, agg, as_of: datetime):
        """The next moment to judge again. The settle instant of the arrivals is one only when this
        evaluation held a new finding back (`unsettled`); when it is not known whether it did (the
        findings of this fold were not judged here), it is kept."""
        held = self._judged is not agg or self._held is agg
        return d.next_evaluation_at(agg, as_of, self._settings(agg), held_back=held)

    def unsettled(self, agg, finding, as_of: datetime) -> bool:
        """A new finding waits while the officer's or agency's facts are still arriving (kernel
        `judged_together`, docs/consistency.md)."""
        waits = d.waits_for_arrivals(agg, finding, as_of, self._settings(agg))
        if waits:
            self._held = agg
        return waits

    def changed_events(self, agg, snapshot: dict, cause: str, as_of: datetime) -> list[dict]:
        if self.kind != "officer" or not agg.registered and not agg.credentials:
            return []
        payload = d.officer_changed_payload(agg, as_of, snapshot)  # (the snapshot of this evaluation: same as_of)
        return [outbound("officer.changed", payload, dept=payload["dept"] or "", source="personnel",
                         occurred_at=as_of, event_id=derived_event_id(cause, "officer.changed", agg.officer_id))]


def _moment(value, default: datetime | None) -> datetime | None:
    """A caller's time: None/"" = `default`; an ISO 8601 datetime with its zone; None if invalid."""
    if value is None or value == "":
        return default
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


class PersonnelService(EventSourcedService):
    """Officers, credentials, agencies and training; the source of `officer.changed`."""

    manifest = MANIFEST

    db = Mongo("personnel", indexes=store.ensure_indexes)
    plugins = Plugins()

    def adapter(self, aggregate, envelope=None) -> PersonnelAdapter:
        return PersonnelAdapter(aggregate.name, self.settings)

    def _officer(self, officer_id: str):
        doc = self.aggregate_doc("officer", officer_id)
        return doc, (PersonnelAdapter("officer", d.DEFAULT_SETTINGS).fold(doc["facts"]) if doc else None)

    # ---- queries -----------------------------------------------------------------------------
    @rpc
    def list_officers(self, dept=None, status=None, q=None, limit=50, offset=0):
        """Officers filtered by department, status and name; {"error": ...} naming a bad argument."""
        try:
            limit, offset = bounded(limit, "limit", 1, 500), bounded(offset, "offset", 0, 1_000_000)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        return store.list_officers(self.db, dept=dept, status=status, q=q, limit=limit, offset=offset)

    @rpc
    def get_officer(self, officer_id):
        """One officer with credentials (statuses as of now), open findings and fact history."""
        doc, officer = self._officer(officer_id)
        if doc is None:
            return None
        return {**d.to_snapshot(officer, self.clock()), "findings": self.open_findings(doc),
                "history": self.history(doc)}

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
        """May this officer enforce in `area` at time `at`? Every reason if not.

        The answer names the officer's department (`dept`): the API shows it to a department user only
        for its own officers (scope "result"), like the officer and the credential themselves.
        """
        at_dt = _moment(at, self.clock())
        if at_dt is None:
            return {"error": {"code": "invalid_value", "field": "at", "message": "参数 at 必须是带时区的 ISO 8601 时间"}}
        _, officer = self._officer(officer_id)
        verdict = d.can_act(officer, area, at_dt, region=region)
        return {"officer_id": officer_id, "dept": officer.dept if officer is not None else None,
                "area": area, "at": at_dt.isoformat(), "allowed": verdict.allowed,
                "credential_no": verdict.credential_no,
                "reasons": [{"code": r.code, "message": r.message, "credential_no": r.credential_no}
                            for r in verdict.reasons]}

    # ---- commands (departments that manage credentials in Zhifa itself) ---------------------------
    @rpc
    def change_credential(self, action, officer_id, number, at, dept, reason=None, actor=None):
        """Suspend (暂扣) / restore (恢复) / revoke (收回) / cancel (注销) / file (备案) a credential.

        Decided on the officer's current state inside the compare-and-set loop (kernel `execute`).
        """
        command = CREDENTIAL_COMMANDS.get(action)
        if command is None:
            return {"ok": False, "error": {"code": "unknown_action", "field": "action",
                                           "message": f"未知操作 {action}，可选：{'、'.join(CREDENTIAL_COMMANDS)}"}}
        at_dt = _moment(at, None)
        if at_dt is None:
            return {"ok": False, "error": {"code": "invalid_value", "field": "at",
                                           "message": "参数 at 必须是带时区的 ISO 8601 时间"}}

        def decide(officer, event_id):
            if officer is not None and officer.dept and not may_report(officer.dept, dept, COMMAND_FACT_TYPES[action]):
                raise CommandRefused("forbidden", "dept", f"执法人员 {officer_id} 属于 {officer.dept}，{dept} 无权操作")
            return command(officer, number, at_dt, reason, event_id=event_id, dept=dept)

        return self.execute("officer", officer_id, decide, dept=dept)
