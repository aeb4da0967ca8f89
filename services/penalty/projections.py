"""Read models of the penalty service and the local projections its rules read (no RPC).

Projections. Personnel's `officer.changed` and the registry's `item.changed` are self-contained
snapshots carrying a growing `version` / `revision`; the service keeps the newest one per officer
and per item code (an older snapshot arriving late is dropped), so rules answer "may this officer
act at T?" and "does this department hold this item at T, and in which fine range?" from local
documents. `case_facts` turns the documents one case needs into the domain's `CaseFacts`.

- Officer verdict: the officer is rebuilt from `officer.changed` (status history and credentials
  with their suspensions, filing and end) and personnel's own pure `can_act` answers, with every
  reason and its dates (services/common/qualification.py). The area is the enforcement area
  (执法领域) of the item version in force (`ItemView.area`, from `item.changed`); an item
  published without an area gives an empty area, which means "any area".
- Item view: the projected versions and standards are rebuilt as a registry `ItemRecord`, so the
  registry's own `holds_item` / `standard_at` decide holding and the tier in force. Tiers are
  given only when every tier of that standard is a yuan range; a standard in multiples of
  illegal gains cannot be checked against a fine without the gains, so the tier rule stays silent.
- Decisions index: one entry per decided case (the current decision) for the double-fine rule.

Overdue. A case is overdue when it has an open finding of a time-limit rule (DEADLINE_RULES):
the finding appears when the limit passes (on ingest, or by the deadline sweep) and goes away
when the obligation is met late enough to clear it, so `overdue=true` lists exactly the cases a
supervisor must chase for lateness. Other open findings do not make a case overdue.
"""
from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from services.kernel import config
from services.kernel.process_memo import ProcessMemo
from services.common.findings import SEVERITY_RANK, Finding  # noqa: F401  (SEVERITY_RANK: re-exported)
from services.common.ondemand import OnDemand
from services.common.qualification import Holder, can_act, holder_from_payload
from services.penalty.domain import rules as r
from services.penalty.domain.case import Case, parse_time
from services.penalty.domain.rules import CaseFacts, ItemView
from services.penalty.domain.settings import PenaltySettings
from services.registry import domain as reg

DEADLINE_RULES = frozenset({
    r.FILING_LATE, r.DECISION_OVERDUE, r.SERVICE_LATE, r.PUBLICATION_LATE, r.WITHDRAWAL_LATE,
    r.MAJOR_NOT_FILED, r.PAYMENT_OVERDUE,
})


# -- case read model --------------------------------------------------------------------------

def references(case: Case) -> dict[str, Any]:
    """What a case points at in other services' data: acting officers, item codes, the party."""
    officers = {o for a in case.acts for o in a.officers} | {o for d in case.decisions for o in d.officers}
    codes = {case.item_code} | {d.item_code for d in case.decisions}
    party_id = case.party.get("id") or next((d.party.get("id") for d in reversed(case.decisions)
                                             if d.party.get("id")), None)
    return {"officer_ids": sorted(officers), "item_codes": sorted(c for c in codes if c), "party_id": party_id}


def case_snapshot(case: Case, findings: Sequence[Finding], settings: PenaltySettings | None = None) -> dict[str, Any]:
    """The stored query document: the folded case plus references and a findings digest; with the
    department's settings, also `late_payment` (a fine paid late: the late fee at the payment date)."""
    rule_ids = sorted({f.rule_id for f in findings})
    d = case.decision
    return {
        **case.to_dict(),
        **references(case),
        "open_findings": len(findings),
        "finding_rules": rule_ids,
        "overdue": bool(DEADLINE_RULES.intersection(rule_ids)),
        "late_payment": r.late_payment(d, settings) if d is not None and settings is not None else None,
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def case_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the case list (JSON-safe)."""
    snap = doc.get("snapshot") or {}
    decision = (snap.get("decisions") or [None])[-1] or {}
    return {
        "case_id": doc["_id"], "dept": doc.get("dept"), "case_no": snap.get("case_no"),
        "stage": snap.get("stage"), "stage_label": snap.get("stage_label"), "procedure": snap.get("procedure"),
        "item_code": snap.get("item_code"), "party": snap.get("party"), "act_code": snap.get("act_code"),
        "filed_at": snap.get("filed_at"), "decided_at": decision.get("at"),
        "decision_no": decision.get("decision_no"), "fine_amount": decision.get("fine_amount"),
        "closed_at": snap.get("closed_at"), "archived_at": snap.get("archived_at"),
        "open_findings": snap.get("open_findings", 0), "finding_rules": snap.get("finding_rules", []),
        "overdue": bool(snap.get("overdue")), "held": len(snap.get("held") or ()),
        "anomalies": len(snap.get("anomalies") or ()), "due_at": _iso(doc.get("due_at")),
        "evaluated_at": _iso(doc.get("evaluated_at")), "version": doc.get("version"),
    }


TIMELINE_KEYS = ("record", "held", "anomalies")


def case_detail(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One case: summary, the folded case, its full-process record, open findings, held/anomalous
    facts and every fact received (JSON-safe)."""
    snap = dict(doc.get("snapshot") or {})
    findings = sorted(doc.get("findings_open", {}).values(),
                      key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), f["finding_key"]))
    return {
        **case_summary(doc),
        "case": {k: v for k, v in snap.items() if k not in TIMELINE_KEYS},
        "timeline": snap.get("record", []),
        "findings": findings,
        "held_facts": snap.get("held", []),
        "anomaly_facts": snap.get("anomalies", []),
        "facts": [{k: f.get(k) for k in ("event_id", "type", "occurred_at", "dept", "source", "payload")}
                  for f in doc.get("facts", [])],
    }


def decision_entry(case_id: str, snapshot: Mapping[str, Any]) -> dict[str, Any] | None:
    """The decisions-index entry of a case (its current decision), or None before any decision."""
    decisions = snapshot.get("decisions") or []
    if not decisions:
        return None
    d = decisions[-1]
    return {
        "case_id": case_id, "dept": snapshot.get("dept"), "decision_no": d.get("decision_no"),
        "party_id": (d.get("party") or {}).get("id"), "act_code": d.get("act_code"),
        "decided_at": d.get("at"), "fine_amount": d.get("fine_amount", 0), "kinds": list(d.get("kinds") or ()),
        "revoked": d.get("revoked_at") is not None,
    }


# The only facts that add a decision to a case (services/penalty/domain/case.py, fold).
DECIDING_FACTS = frozenset({"case.decided", "case.decided_on_spot"})


def judged_reads(snapshot: Mapping[str, Any]) -> tuple[tuple, tuple, str | None, bool]:
    """What judging the case of this snapshot reads of other data: (officer ids, item codes, party id,
    whether the double-fine check reads the party's other decisions of the current decision:
    `rules.double_fine_checked`). A guess for reading ahead (`PenaltyService.prefetch`): what the rules
    then read is theirs."""
    entry = decision_entry("", snapshot)
    fined = bool(entry) and r.double_fine_checked(entry["revoked"], entry["fine_amount"], entry["party_id"],
                                                  entry["act_code"])
    return (_interned(snapshot.get("officer_ids")), _interned(snapshot.get("item_codes")), snapshot.get("party_id"), fined)


def _interned(values: Any) -> tuple:
    """(Officer ids and item codes recur across a county's cases: a memo of many cases holds each once.)"""
    return tuple(sys.intern(v) if type(v) is str else v for v in values or ())


def fact_reads(fact_type: str, payload: Mapping[str, Any]) -> tuple[list, list, str | None, bool]:
    """What one fact adds to `judged_reads` of its case (the fold: officers acting or deciding, the
    item code, the party; a deciding fact with a fine makes the party's other decisions read)."""
    party, officers = payload.get("party"), payload.get("officers")
    return ([str(o) for o in officers] if isinstance(officers, (list, tuple)) else [],
            [str(payload["item_code"])] if payload.get("item_code") else [],
            str(party["id"]) if isinstance(party, Mapping) and party.get("id") else None,
            fact_type in DECIDING_FACTS and isinstance(payload.get("fine_amount"), (int, float))
            and payload["fine_amount"] > 0)


def never_decided(doc: Mapping[str, Any]) -> bool:
    """True when no fact the case document holds (applied, held or anomalous) is a decision: then no
    version of the case ever had a decisions-index entry, so there is none to read or to drop (a
    decision only enters through one of `DECIDING_FACTS`, and a version's facts are a subset of the
    next one's). False when it cannot tell (no facts in the document)."""
    facts = doc.get("facts")
    return bool(facts) and not any(f.get("type") in DECIDING_FACTS for f in facts)


# -- officer projection ---------------------------------------------------------------------------

def officer_verdict(payload: Mapping[str, Any] | Holder | None, area: str, at: datetime) -> tuple[bool, list[str]]:
    """May the projected officer enforce in `area` (empty = any) at `at`? Every reason if not.

    The one pure answer personnel gives (services/common/qualification.py), asked of the officer
    rebuilt from its `officer.changed` snapshot: penalty keeps no rule of its own about credentials.
    """
    holder = payload if isinstance(payload, Holder) or payload is None else holder_from_payload(payload)
    verdict = can_act(holder, area, at)
    return verdict.allowed, [r.message for r in verdict.reasons]


# -- item projection -----------------------------------------------------------------------------

class ProjectedItem(reg.ItemRecord):
    """A registry ItemRecord rebuilt from `item.changed` (versions and standards, without facts),
    so the registry's own holding and standard look-ups run on the projection unchanged."""

    def __init__(self, code: str, versions: Iterable[reg.ItemVersion], standards: Iterable[reg.DiscretionStandard]):
        self.code = code
        self.facts = []
        self.versions = sorted(versions, key=lambda v: v.version)
        self.standards = tuple(sorted(standards, key=lambda s: (s.effective_from, s.published_at, s.standard_no)))
        self.held = ()
        self.evaluations = ()


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def projected_item(payload: Mapping[str, Any]) -> ProjectedItem:
    code = payload["item_code"]
    versions = [reg.ItemVersion(
        code=code, version=v["version"], change=v["change"], name=v["name"], category=v["category"],
        owning_dept=v["owning_dept"], cooperating_depts=tuple(v.get("cooperating_depts") or ()),
        legal_basis=tuple(reg.LegalBasis(b.get("law", ""), b.get("article", "")) for b in v.get("legal_basis") or ()),
        delegated_to_township=bool(v.get("delegated_to_township")),
        delegated_depts=tuple(v.get("delegated_depts") or ()), effective_from=_date(v["effective_from"]),
        effective_to=_date(v.get("effective_to")), repealed=bool(v.get("repealed")), event_id="",
        document_no=v.get("document_no") or "", area=v.get("area") or None,
    ) for v in payload.get("versions") or ()]
    standards = [reg.DiscretionStandard(
        item_code=code, dept=s["dept"], event_id="", published_at=parse_time(s["published_at"]),
        effective_from=_date(s["effective_from"]), effective_to=_date(s.get("effective_to")),
        kind=(s.get("legal_limit") or {}).get("kind", ""), legal_max=(s.get("legal_limit") or {}).get("max"),
        legal_min=(s.get("legal_limit") or {}).get("min"), max_only=bool((s.get("legal_limit") or {}).get("max_only")),
        tiers=tuple(reg.Tier(t["tier"], t["name"], "", t.get("kind"), t.get("min"), t.get("max"))
                    for t in s.get("tiers") or ()),
        standard_no=s.get("standard_no") or "",
    ) for s in payload.get("standards") or ()]
    return ProjectedItem(code, versions, standards)


def _tiers(standard: reg.DiscretionStandard | None) -> dict[str, tuple[float, float]]:
    if standard is None or not standard.tiers or any(t.kind != "amount" for t in standard.tiers):
        return {}
    out: dict[str, tuple[float, float]] = {}
    for t in standard.tiers:  # a decision may name a tier by identifier ('normal') or by name ('一般')
        out[t.tier] = out[t.name] = (float(t.min), float(t.max))
    return out


def item_view(item: ProjectedItem | None, dept: str, code: str, at: datetime) -> ItemView | None:
    """What the projected registry says about item `code` for `dept` at `at` (None: not listed)."""
    if item is None or not item.versions:
        return None
    holding = reg.holds_item([item], dept, code, at)
    version = item.latest_version_on(at) or item.versions[0]
    basis = version.legal_basis
    complete = bool(basis) and all(b.law and b.article for b in basis)
    return ItemView(code=code, held=holding.held,
                    legal_basis="；".join(f"{b.law}{b.article}" for b in basis) if complete else "",
                    bases=tuple((b.law, b.article) for b in basis if b.law and b.article),
                    category=version.category, area=version.area or "", tiers=_tiers(item.standard_at(at)))


# -- CaseFacts ----------------------------------------------------------------------------------
#
# What is built from one projected payload — the registry record, the officer, and the answers
# asked of them (item views, credential verdicts: pure functions of that payload and their
# arguments) — is kept while the same payload *object* is served for the code or officer id: the
# unit of work's memo and the process projection cache hand out one object per stored version, so
# the next fact of a case (or another case of the batch) does not rebuild them (issue 14). A newer
# payload is another object: the entry is rebuilt. Entries hold their payload, so an id is never
# reused while kept.

# The answers are kept in two process memos (services/kernel/process_memo.py; their shares of
# PROCESS_MEMO_MB), least recently asked forgotten first, keyed by the entry and the question: a newer
# payload's entry asks afresh and the older one's answers age out. Before the seventeenth session
# each entry kept up to 512 answers of its own (one per instant asked: every fact of every case an
# officer worked on), which grew penalty's memory by tens of MB over a long run.
ITEM_ANSWER_BYTES = 1400     # one item view at an instant (measured: tests/unit/test_process_memo.py)
OFFICER_ANSWER_BYTES = 320   # one credential verdict (measured: the same test)
_ITEM_ANSWERS = ProcessMemo("penalty.item_answers", share=0.22, entry_bytes=ITEM_ANSWER_BYTES)
_OFFICER_ANSWERS = ProcessMemo("penalty.officer_answers", share=0.2, entry_bytes=OFFICER_ANSWER_BYTES)


class _Built:
    __slots__ = ("payload", "value")

    def __init__(self, payload: Mapping[str, Any], value: Any):
        self.payload, self.value = payload, value


_ITEMS: dict[str, _Built] = {}
_HOLDERS: dict[str, _Built] = {}


def _built(kept: dict[str, _Built], key: str, payload: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Any]) -> _Built:
    """The entry built from `payload` for `key`; the kind's entries start afresh past as many as the
    projection cache keeps (PROJECTION_CACHE_ENTRIES: the payloads they are built from)."""
    entry = kept.get(key)
    if entry is None or entry.payload is not payload:
        if len(kept) >= max(1, config.checked("PROJECTION_CACHE_ENTRIES")):
            kept.clear()
        entry = kept[key] = _Built(payload, build(payload))
    return entry


def item_record(payload: Mapping[str, Any]) -> ProjectedItem:
    """`projected_item(payload)`, built once while the same payload object is served."""
    return _built(_ITEMS, str(payload["item_code"]), payload, projected_item).value


def _when(at: datetime | None) -> tuple:
    return (at, at.tzinfo) if at is not None else (None, None)  # equal instants in other zones read apart


def case_facts(officers: Mapping[str, Mapping[str, Any]], items: Mapping[str, Mapping[str, Any]],
               crime_thresholds: Sequence[Mapping[str, Any]],
               other_decisions: Sequence[Mapping[str, Any]]) -> CaseFacts:
    """CaseFacts over the projected documents of one case (officer and item payloads by id)."""
    records = {code: _built(_ITEMS, str(code), payload, projected_item) for code, payload in items.items()}
    holders = {officer_id: _built(_HOLDERS, str(officer_id), payload, holder_from_payload)
               for officer_id, payload in officers.items()}

    def credentials(officer_id: str, area: str, at: datetime) -> tuple[bool, list[str]]:
        entry = holders.get(officer_id)
        if entry is None:
            return officer_verdict(None, area, at)
        allowed, reasons = _OFFICER_ANSWERS.answer((entry, area, *_when(at)),
                                                   lambda: officer_verdict(entry.value, area, at))
        return allowed, list(reasons)

    def item(dept: str, code: str, at: datetime) -> ItemView | None:
        entry = records.get(code)
        if entry is None:
            return None
        return _ITEM_ANSWERS.answer((entry, dept, *_when(at)), lambda: item_view(entry.value, dept, code, at))

    return CaseFacts(
        credentials=credentials,
        items=item,
        crime_thresholds=tuple(crime_thresholds),
        other_decisions=other_decisions if isinstance(other_decisions, OnDemand) else tuple(other_decisions),
        officer_kinds=lambda officer_id: (officers.get(officer_id) or {}).get("kind"),
    )
