"""Gateway storage: accepted event ids (dedupe), quarantine of rejected input, dead letters."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

QUARANTINE_KEEP_BYTES = 1024 * 1024


def ensure_indexes(db: Database) -> None:
    db.quarantine.create_index([("received_at", DESCENDING)])
    db.quarantine.create_index("dept")
    db.dead_letters.create_index([("dead_at", DESCENDING)])
    db.dead_letters.create_index("status")


def digest(envelope: dict) -> str:
    import json

    return hashlib.sha256(json.dumps(envelope, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


ENVELOPE_SUMMARY = ("event_id", "type", "schema_version", "dept", "source", "occurred_at")


def _without_payload(doc: dict) -> dict:
    """A dead letter as an operator lists it: the body replaced by the envelope's summary."""
    import json

    body = doc.pop("body", None)
    data = body.encode("utf-8", errors="replace") if isinstance(body, str) else bytes(body or b"")
    try:
        envelope = json.loads(data)
    except ValueError:
        envelope = None
    doc["event"] = ({k: envelope.get(k) for k in ENVELOPE_SUMMARY if isinstance(envelope.get(k), (str, int))}
                    if isinstance(envelope, dict) else {})
    doc["size"], doc["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    return doc


class GatewayStore:
    def __init__(self, db: Database):
        self.db = db

    def seen(self, event_id: str) -> dict | None:
        return self.db.accepted.find_one({"_id": event_id})

    def claim(self, envelope: dict, channel: str, received_at: datetime) -> dict | None:
        """Record the event id; None when this is its first arrival, else the earlier record."""
        try:
            self.db.accepted.insert_one({
                "_id": envelope["event_id"], "hash": digest(envelope), "type": envelope["type"],
                "dept": envelope["dept"], "channel": channel, "received_at": received_at,
            })
            return None
        except DuplicateKeyError:
            return self.seen(envelope["event_id"]) or {}

    def remember(self, envelope: dict, channel: str, received_at: datetime) -> None:
        try:
            self.db.accepted.insert_one({
                "_id": envelope["event_id"], "hash": digest(envelope), "type": envelope["type"],
                "dept": envelope["dept"], "channel": channel, "received_at": received_at,
            })
        except DuplicateKeyError:
            pass  # a concurrent redelivery got here first; both dispatches are idempotent downstream

    def quarantine(self, raw: bytes | str, violations: list[dict], *, channel: str, dept: str,
                   routing_key: str, received_at: datetime, event_id: str | None) -> str:
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        qid = str(uuid.uuid4())
        self.db.quarantine.insert_one({
            "_id": qid,
            "event_id": event_id,
            "channel": channel,
            "dept": dept,
            "routing_key": routing_key,
            "received_at": received_at,
            "violations": violations,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "raw": data[:QUARANTINE_KEEP_BYTES].decode("utf-8", errors="replace"),
            "truncated": len(data) > QUARANTINE_KEEP_BYTES,
        })
        return qid

    def add_dead_letter(self, doc: dict) -> None:
        try:
            self.db.dead_letters.insert_one(doc)
        except DuplicateKeyError:
            pass

    def get_dead_letter(self, dl_id: str) -> dict | None:
        return self.db.dead_letters.find_one({"_id": dl_id})

    # ---- read and replay through the API service (operator role) -----------------------------------
    def page_dead_letters(self, status: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        """A page of dead letters, newest first, with the true total. Operators see what and where
        (the envelope's event id, type, department, source, times; size and digest of the body), not
        the payload (case or officer data, personal data), the traceback or the raw headers."""
        query = {"status": status} if status else {}
        hidden = {"traceback": 0, "headers": 0}
        items = [_without_payload(d) for d in self.db.dead_letters.find(query, hidden)
                 .sort([("dead_at", DESCENDING), ("_id", 1)]).skip(offset).limit(limit)]
        return {"items": items, "total": self.db.dead_letters.count_documents(query), "limit": limit,
                "offset": offset}

    def page_quarantine(self, dept: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        query = {"dept": dept} if dept else {}
        items = list(self.db.quarantine.find(query, {"raw": 0}).sort([("received_at", DESCENDING), ("_id", 1)])
                     .skip(offset).limit(limit))
        return {"items": items, "total": self.db.quarantine.count_documents(query), "limit": limit,
                "offset": offset}

    def claim_dead_letter(self, dl_id: str, actor: str, at: datetime) -> dict | None:
        """Flip `dead` -> `replaying` atomically; the dead letter if this caller won, else None.

        One document, one conditional write: of any number of concurrent replays exactly one sees the
        document, so a dead letter is republished at most once.
        """
        return self.db.dead_letters.find_one_and_update(
            {"_id": dl_id, "status": "dead"},
            {"$set": {"status": "replaying", "replay_by": actor, "replay_started_at": at}})

    def finish_replay(self, dl_id: str, status: str, at: datetime, **extra) -> None:
        """`replaying` -> `replayed` | `refused` (contracts) | `dead` (publishing failed: may be retried)."""
        self.db.dead_letters.update_one({"_id": dl_id, "status": "replaying"},
                                        {"$set": {"status": status, f"{status}_at": at, **extra}})

    # ---- what became of one event (GET /api/v1/events/<event_id>) --------------------------------
    def event_trail(self, event_id: str, dept: str) -> dict:
        """Every record the gateway keeps of `event_id` sent by `dept`: its acceptance, its newest
        quarantine entry and its newest dead letter (scans; status queries are rare)."""
        accepted = self.db.accepted.find_one({"_id": event_id, "dept": dept})
        rejected = next(iter(self.db.quarantine.find({"event_id": event_id, "dept": dept}, {"raw": 0})
                             .sort("received_at", DESCENDING).limit(1)), None)
        dead = next(iter(self.db.dead_letters.find({"headers.x-zhifa-event-id": event_id,
                                                     "headers.x-zhifa-dept": dept},
                                                    {"body": 0, "traceback": 0})
                         .sort("dead_at", DESCENDING).limit(1)), None)
        return {"accepted": accepted, "rejected": rejected, "dead": dead}
