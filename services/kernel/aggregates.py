"""Event-sourced aggregate documents with an embedded outbox.

One MongoDB document per aggregate holds: the facts applied (so a redelivered event changes
nothing and out-of-order facts are folded in time order), a snapshot for queries, the open
findings, the next due date, and the outbox of events still to be dispatched. All of it is
written in one single-document write with a version check, so "state saved" and "events to
send" can never disagree; the relay (service.py + timer) empties the outbox afterwards.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.common.findings import Finding, diff_findings
from services.kernel.mongo import ConcurrencyError
from services.kernel.packing import pack, unpack_from

NAMESPACE = uuid.UUID("6f1c1e0e-4f6e-4a55-9a53-7a68e9b7c001")
MAX_ATTEMPTS = 20


def derived_event_id(*parts: str) -> str:
    """Deterministic id for an event caused by another, so re-processing yields the same id."""
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def outbound(type_: str, payload: dict, *, dept: str, source: str, occurred_at: datetime,
             event_id: str) -> dict:
    return {
        "event_id": event_id,
        "type": type_,
        "schema_version": 1,
        "occurred_at": occurred_at.isoformat(),
        "dept": dept,
        "source": source,
        "payload": payload,
    }


def finding_events(cause: str, before: dict[str, dict], after: list[Finding], *, source: str,
                   as_of: datetime, resolutions: dict[str, dict] | None = None) -> tuple[list[dict], dict[str, dict]]:
    """Outbox events for the difference between open findings and a fresh evaluation.

    A finding still open keeps the time it was first raised (`as_of`) but takes the evidence and
    message of the fresh evaluation, so it always describes the subject as it stands now (an
    overdue decision that has since been made no longer says "no decision"). A resolved finding
    carries what the domain says about how it was settled (`resolutions[key]`: evidence merged,
    message replaced), e.g. the late fee of a fine paid late.
    """
    raised, resolved = diff_findings(before, after)
    events = []
    for f in raised:
        events.append(outbound("finding.raised", f.to_payload(), dept=f.dept, source=source,
                               occurred_at=as_of, event_id=derived_event_id(cause, "raised", f.key)))
    for key in resolved:
        old = before[key]
        payload = {**old, "as_of": as_of.isoformat()}
        settled = (resolutions or {}).get(key)
        if settled:
            payload["evidence"] = {**(old.get("evidence") or {}), **settled.get("evidence", {})}
            payload["message"] = settled.get("message") or old.get("message", "")
        events.append(outbound("finding.resolved", payload, dept=old["dept"], source=source,
                               occurred_at=as_of, event_id=derived_event_id(cause, "resolved", key)))
    open_now = {f.key: f.to_payload() for f in after}
    for key, old in before.items():  # first raised then; evidence and message as of now
        if key in open_now:
            open_now[key]["as_of"] = old["as_of"]
    return events, open_now


@dataclass
class Change:
    """What the domain decided for one aggregate: new state document fields and events to send."""

    fields: dict[str, Any]
    events: list[dict] = field(default_factory=list)


Listener = Callable[[dict | None, dict], None]


class AggregateStore:
    """Load-modify-save of aggregate documents with optimistic concurrency and an outbox.

    `listeners` are called with (old document or None, new document) after each successful save
    (`update`: facts, batches, commands, deadline sweeps, replays), e.g. to keep a side collection in
    step. When `decide` changes nothing (a redelivered fact, a sweep with nothing due) they are
    called with (document, document): a crash between a save and a listener is repaired by the
    redelivery that follows it, so a listener must be idempotent.
    """

    def __init__(self, collection: Collection, listeners: Iterable[Listener] = ()):
        self.col = collection
        self.listeners: list[Listener] = list(listeners)
        # small side index {_id, due_at}: the deadline sweep scans it instead of every aggregate
        # (FerretDB v1 pushes down only _id lookups, so a filtered find reads whole documents)
        self.deadlines = collection.database[f"{collection.name}_due"]

    @staticmethod
    def ensure_indexes(col: Collection, *extra: str) -> None:
        col.create_index("outbox_pending")
        col.create_index("due_at")
        for name in extra:
            col.create_index(name)
        deadlines = col.database[f"{col.name}_due"]
        if deadlines.estimated_document_count() == 0:  # first start on existing data
            for doc in col.find({"due_at": {"$ne": None}}, {"due_at": 1}):
                deadlines.replace_one({"_id": doc["_id"]}, {"due_at": doc["due_at"]}, upsert=True)

    def _set_due(self, agg_id: str, when: datetime | None) -> None:
        if when is None:
            self.deadlines.delete_one({"_id": agg_id})
        else:
            self.deadlines.replace_one({"_id": agg_id}, {"due_at": when}, upsert=True)

    def mark_due(self, agg_id: str, when: datetime) -> int:
        """Make an aggregate due at `when` (a projection it depends on changed)."""
        self._set_due(agg_id, when)
        return self.col.update_one({"_id": agg_id}, {"$set": {"due_at": when}, "$inc": {"version": 1}}).modified_count

    def get(self, agg_id: str) -> dict | None:
        return unpack_from(self.col, self.col.find_one({"_id": agg_id}))  # facts packed (kernel/packing.py)

    def update(self, agg_id: str, decide: Callable[[dict | None], Change | None]) -> tuple[dict | None, list[dict]]:
        """Run `decide` on the current document and save its result atomically; retry on conflict.

        `decide` returns None when nothing changes (e.g. a duplicate fact).
        """
        for _ in range(MAX_ATTEMPTS):
            doc = self.get(agg_id)
            change = decide(doc)
            if change is None:
                if doc is not None:
                    self._notify(doc, doc)
                return doc, []  # a leftover outbox (failed relay) is the sweep's job
            new = {**(doc or {}), **change.fields, "_id": agg_id}
            pending = list((doc or {}).get("outbox", [])) + change.events
            new["outbox"] = pending
            new["outbox_pending"] = bool(pending)
            old_due, new_due = (doc or {}).get("due_at"), new.get("due_at")
            indexed = old_due
            if new_due is not None and new_due != old_due:
                # before the write, the earlier of both: a crash can make the sweep early, never late
                indexed = min(d for d in (old_due, new_due) if d is not None)
                self._set_due(agg_id, indexed)
            try:
                if doc is None:
                    new["version"] = 1
                    self.col.insert_one(pack(new))
                else:
                    new["version"] = doc["version"] + 1
                    res = self.col.replace_one({"_id": agg_id, "version": doc["version"]}, pack(new))
                    if res.matched_count == 0:
                        continue
            except DuplicateKeyError:
                continue
            if new_due != indexed:  # (an earlier due date is in the side index already)
                self._set_due(agg_id, new_due)
            self._notify(doc, new)
            return new, pending
        raise ConcurrencyError(f"too many concurrent updates of {agg_id}")

    def _notify(self, old: dict | None, new: dict) -> None:
        for listener in self.listeners:
            listener(old, new)

    def mark_dispatched(self, agg_id: str, event_ids: list[str], version: int | None = None) -> None:
        """Remove relayed events from the outbox (a version bump keeps writers honest).

        `version` is the version the caller wrote together with exactly these events: if nobody
        wrote since, one blind compare-and-set clears the outbox without reading it first.
        """
        if version is not None:
            res = self.col.update_one({"_id": agg_id, "version": version},
                                      {"$set": {"outbox": [], "outbox_pending": False, "version": version + 1}})
            if res.matched_count:
                return
        for _ in range(MAX_ATTEMPTS):
            doc = self.col.find_one({"_id": agg_id}, {"outbox": 1, "version": 1})
            if doc is None:
                return
            rest = [e for e in doc.get("outbox", []) if e["event_id"] not in set(event_ids)]
            res = self.col.update_one(
                {"_id": agg_id, "version": doc["version"]},
                {"$set": {"outbox": rest, "outbox_pending": bool(rest), "version": doc["version"] + 1}},
            )
            if res.matched_count:
                return
        raise ConcurrencyError(f"could not clear outbox of {agg_id}")

    def pending(self, limit: int = 200) -> list[dict]:
        return list(self.col.find({"outbox_pending": True}, {"outbox": 1, "evaluated_at": 1}).limit(limit))

    def due(self, as_of: datetime, limit: int = 500) -> list[dict]:
        return list(self.deadlines.find({"due_at": {"$lte": as_of}}, {"_id": 1, "due_at": 1}).limit(limit))
