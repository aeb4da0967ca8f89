"""The one ingest path shared by every event-sourced service (personnel, registry, penalty).

A service supplies an adapter over its pure domain; this module does the rest: dedupe by
event id inside the aggregate, fold the facts in time order, evaluate the rules at `as_of`,
turn new/cleared findings into `finding.raised` / `finding.resolved`, store the snapshot and the
next due date, and put every resulting event in the outbox — all in one document write.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, Protocol

from services.common.findings import Finding
from services.kernel.aggregates import AggregateStore, Change, finding_events

MAX_FACTS = 5000


class DomainAdapter(Protocol):
    """What a service's domain must offer to be run by the kernel."""

    def aggregate_id(self, envelope: dict) -> str: ...

    def fold(self, facts: list[dict]) -> Any: ...

    def snapshot(self, agg: Any, as_of: datetime) -> dict: ...

    def findings(self, agg: Any, as_of: datetime) -> list[Finding]: ...

    def due_at(self, agg: Any, as_of: datetime) -> datetime | None: ...

    def changed_events(self, agg: Any, snapshot: dict, cause: str, as_of: datetime) -> list[dict]: ...


VOLATILE = ("version", "revision", "as_of")


def _unchanged_dropped(events: list[dict], emitted: dict[str, str]) -> tuple[list[dict], dict[str, str]]:
    """Drop state events (`officer.changed`, `item.changed`) whose content did not change since the
    last one sent (a training record does not change what a credential check reads)."""
    out, emitted = [], dict(emitted)
    for ev in events:
        body = {k: v for k, v in ev["payload"].items() if k not in VOLATILE}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        key = ev["type"].replace(".", "_")  # field names may not contain "."
        if emitted.get(key) != digest:
            out.append(ev)
            emitted[key] = digest
    return out, emitted


HISTORY_KEYS = ("event_id", "type", "occurred_at", "dept", "source", "payload")


def stored_fact(envelope: dict, received_at: datetime | None = None) -> dict:
    """The fact as the aggregate keeps it; `received_at` is when this service applied it (a held
    fact's grace period runs from its arrival, docs/consistency.md)."""
    fact = {k: envelope[k] for k in HISTORY_KEYS}
    if received_at is not None:
        fact["received_at"] = received_at.isoformat()
    return fact


def judged_together(adapter: Any, agg: Any, found: list[Finding], before: dict, as_of: datetime) -> list[Finding]:
    """The findings to keep open: a finding not open yet that the domain says waits for the facts
    still arriving (`adapter.unsettled(agg, finding, as_of)`, optional) is not raised now; its due date
    brings the aggregate back once they settle (docs/consistency.md). Open findings are not held back."""
    unsettled = getattr(adapter, "unsettled", None)
    if unsettled is None:
        return found
    return [f for f in found if f.key in before or not unsettled(agg, f, as_of)]


class EventSourcedRepository:
    def __init__(self, store: AggregateStore, adapter: DomainAdapter, service: str):
        self.store = store
        self.adapter = adapter
        self.service = service

    def _evaluate(self, doc: dict | None, facts: list[dict], cause: str, as_of: datetime) -> Change:
        agg = self.adapter.fold(facts)
        snap = self.adapter.snapshot(agg, as_of)
        before = (doc or {}).get("findings_open", {})
        found = judged_together(self.adapter, agg, self.adapter.findings(agg, as_of), before, as_of)
        settle = getattr(self.adapter, "resolutions", None)  # how findings that stop holding were settled
        events, open_now = finding_events(cause, before, found, source=self.service, as_of=as_of,
                                          resolutions=settle(agg, as_of) if settle else None)
        state_events, emitted = _unchanged_dropped(self.adapter.changed_events(agg, snap, cause, as_of),
                                                   (doc or {}).get("emitted", {}))
        events = state_events + events
        return Change(
            fields={
                "facts": facts,
                "fact_ids": [f["event_id"] for f in facts],
                "snapshot": snap,
                "dept": snap.get("dept") or (facts[0]["dept"] if facts else None),
                "findings_open": open_now,
                "findings_count": len(open_now),
                "emitted": emitted,
                "due_at": self.adapter.due_at(agg, as_of),
                "evaluated_at": as_of,
            },
            events=events,
        )

    def ingest(self, envelope: dict, as_of: datetime | Callable[[], datetime]) -> tuple[dict | None, list[dict]]:
        """Apply one validated fact; a redelivered or duplicate fact changes nothing.

        Pass the clock rather than a time: each compare-and-set attempt then evaluates at its own
        "now", so a retried evaluation saved after a competing one never carries an earlier as_of.
        """
        agg_id = self.adapter.aggregate_id(envelope)

        def decide(doc):
            if doc and envelope["event_id"] in doc.get("fact_ids", ()):
                return None
            admit = getattr(self.adapter, "admit", None)
            if admit is not None:  # the domain may refuse the fact on the state it would join (not_owner…)
                admit(list((doc or {}).get("facts", [])), stored_fact(envelope))
            now = as_of() if callable(as_of) else as_of
            facts = list((doc or {}).get("facts", [])) + [stored_fact(envelope, now)]
            if len(facts) > MAX_FACTS:
                raise ValueError(f"aggregate {agg_id} exceeds {MAX_FACTS} facts")
            return self._evaluate(doc, facts, envelope["event_id"], now)

        return self.store.update(agg_id, decide, probably_new=self.creates([envelope]))

    def creates(self, envelopes: list[dict]) -> bool:
        """Whether one of `envelopes` is a fact that creates its aggregate (the adapter's optional
        `creating`: fact types): the store then inserts without reading first (AggregateStore.update)."""
        creating = getattr(self.adapter, "creating", ())
        return bool(creating) and any(env["type"] in creating for env in envelopes)

    def ingest_many(self, envelopes: list[dict],
                    as_of: datetime | Callable[[], datetime]) -> tuple[dict | None, list[dict]]:
        """Apply several validated facts of one aggregate in one compare-and-set write (a batch).

        Each new fact is admitted on the state it joins, in order, as `ingest` would; facts already
        applied (or twice in the list) change nothing. The rules run once, on all of them, at one
        `as_of`, with the last new fact as the cause (derived event ids stay deterministic). A
        DomainError of any fact fails the whole write: the caller applies the facts one by one then.
        """
        agg_id = self.adapter.aggregate_id(envelopes[0])
        if any(self.adapter.aggregate_id(env) != agg_id for env in envelopes[1:]):
            raise ValueError("ingest_many takes facts of one aggregate")
        admit = getattr(self.adapter, "admit", None)

        def decide(doc):
            known = set((doc or {}).get("fact_ids", ()))
            facts = list((doc or {}).get("facts", []))
            now = as_of() if callable(as_of) else as_of
            cause = None
            for envelope in envelopes:
                if envelope["event_id"] in known:
                    continue
                if admit is not None:
                    admit(list(facts), stored_fact(envelope))
                facts.append(stored_fact(envelope, now))
                known.add(envelope["event_id"])
                cause = envelope["event_id"]
            if cause is None:
                return None
            if len(facts) > MAX_FACTS:
                raise ValueError(f"aggregate {agg_id} exceeds {MAX_FACTS} facts")
            return self._evaluate(doc, facts, cause, now)

        return self.store.update(agg_id, decide, probably_new=self.creates(envelopes))

    def command(self, agg_id: str, build: Callable[[dict | None], dict],
                as_of: datetime | Callable[[], datetime]) -> tuple[dict | None, list[dict]]:
        """Decide and apply one command inside the compare-and-set loop.

        `build(current document)` returns the command's envelope or raises a refusal; it runs again
        on the fresh document whenever a concurrent writer saved first, so the decision is always
        taken on the state it is saved over.
        """

        def decide(doc):
            envelope = build(doc)
            now = as_of() if callable(as_of) else as_of
            facts = list((doc or {}).get("facts", [])) + [stored_fact(envelope, now)]
            if len(facts) > MAX_FACTS:
                raise ValueError(f"aggregate {agg_id} exceeds {MAX_FACTS} facts")
            return self._evaluate(doc, facts, envelope["event_id"], now)

        return self.store.update(agg_id, decide)

    def reevaluate(self, agg_id: str, as_of: datetime) -> tuple[dict | None, list[dict]]:
        """Re-run the rules at a later time with no new fact (deadline sweep, settings change)."""

        def decide(doc):
            if doc is None:
                return None
            change = self._evaluate(doc, doc["facts"], f"sweep:{as_of.isoformat()}", as_of)
            # only finding changes travel on a sweep; no new fact means no new state event
            change.events = [e for e in change.events if e["type"].startswith("finding.")]
            was_due = doc.get("due_at") is not None and doc["due_at"] <= as_of
            if not change.events and not was_due and change.fields["due_at"] == doc.get("due_at"):
                return None
            return change

        return self.store.update(agg_id, decide)
