"""Gateway storage: accepted event ids (dedupe), quarantine of rejected input, dead letters."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.kernel.mongo import insert_new

QUARANTINE_KEEP_BYTES = 1024 * 1024
# Raw input is kept as bytes (BSON binary), so any byte survives on every backend: FerretDB on
# PostgreSQL cannot store a NUL character in a string (jsonb). Records written before kept the text
# decoded as UTF-8 with replacement characters (no `raw_encoding` field); `raw_bytes` reads both.
RAW_ENCODING = "bytes"


def raw_bytes(value) -> bytes:
    """The bytes of a stored raw body (quarantine `raw`, dead letter `body`): bytes as stored, or the
    UTF-8 of the text an older record kept."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else b""


def storable_text(text):
    """Text fields next to a raw body (event id, routing key, violations' field paths, which may echo
    hostile keys) without NUL characters, which FerretDB on PostgreSQL refuses: shown as `\\u0000`."""
    if isinstance(text, str):
        text = text.replace("\x00", "\\u0000")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a JSON `\\ud800`): BSON cannot hold it
            text = text.encode("utf-8", errors="replace").decode("utf-8")
        return text
    if isinstance(text, dict):
        return {storable_text(k): storable_text(v) for k, v in text.items()}
    if isinstance(text, list):
        return [storable_text(v) for v in text]
    return text


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

    data = raw_bytes(doc.pop("body", None))
    doc.pop("body_encoding", None)
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

    def seen(self, event_ids: list[str]) -> dict[str, dict]:
        """The acceptance records of those of `event_ids` the gateway has accepted before, by id."""
        if not event_ids:
            return {}
        return {doc["_id"]: doc for doc in self.db.accepted.find({"_id": {"$in": sorted(set(event_ids))}})}

    def claim(self, envelopes: list[dict], channel: str, received_at: datetime,
              hashes: list[str] | None = None) -> list[dict | None]:
        """Record the event ids of a batch in one write (at most 50: callers batch so): for each
        envelope None when this is its first arrival, else the earlier record (`{}` if it vanished).
        The second of two envelopes of one batch with the same id finds the first one's record.
        `hashes`: the envelopes' digests when the caller has them already."""
        if not envelopes:
            return []
        taken = self._insert_accepted(envelopes, channel, received_at, hashes)
        if not taken:
            return [None] * len(envelopes)
        prior = self.seen([envelopes[i]["event_id"] for i in taken])
        return [prior.get(env["event_id"], {}) if i in taken else None for i, env in enumerate(envelopes)]

    def remember(self, envelopes: list[dict], channel: str, received_at: datetime,
                 hashes: list[str] | None = None) -> None:
        """Record event ids after their dispatch (HTTP); one already recorded (a concurrent request)
        stays as it was: both dispatches are idempotent downstream."""
        if envelopes:
            self._insert_accepted(envelopes, channel, received_at, hashes)

    def _insert_accepted(self, envelopes: list[dict], channel: str, received_at: datetime,
                         hashes: list[str] | None = None) -> set[int]:
        """One unordered `insert_many`; the positions whose id was taken already (duplicate key)."""
        if hashes is None:
            hashes = [digest(env) for env in envelopes]
        docs = [{"_id": env["event_id"], "hash": h, "type": env["type"], "dept": env["dept"],
                 "channel": channel, "received_at": received_at} for env, h in zip(envelopes, hashes, strict=True)]
        return insert_new(self.db.accepted, docs)

    def quarantine(self, items: list[dict], *, channel: str, received_at: datetime) -> list[str]:
        """Keep rejected input (one write for all): each item has `raw` (bytes or text, kept as bytes,
        byte-exact up to QUARANTINE_KEEP_BYTES), `violations`, `dept`, `routing_key`, `event_id`.
        Returns the quarantine ids in order."""
        docs = []
        for item in items:
            raw = item["raw"]
            data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else bytes(raw)
            docs.append({
                "_id": str(uuid.uuid4()),
                "event_id": storable_text(item.get("event_id")),
                "channel": channel,
                "dept": storable_text(item["dept"]),
                "routing_key": storable_text(item.get("routing_key") or ""),
                "received_at": received_at,
                "violations": storable_text(item["violations"]),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "raw": data[:QUARANTINE_KEEP_BYTES],
                "raw_encoding": RAW_ENCODING,
                "truncated": len(data) > QUARANTINE_KEEP_BYTES,
            })
        if docs:
            self.db.quarantine.insert_many(docs, ordered=False)
        return [d["_id"] for d in docs]

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
