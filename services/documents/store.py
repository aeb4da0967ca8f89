"""Documents repository: number counters, document records, file bytes (pymongo, FerretDB v1).

Numbers (文号) without gaps and without reuse, with single-document atomicity only:

1. The document record is inserted first, `_id` = the request id, `status: "numbering"`, no
   number. A retry of the same request finds it and resumes (idempotent).
2. The number is claimed on the counter document `{_id: "<dept>|<kind>|<year>", seq, claims}` by
   one compare-and-set `find_one_and_update({_id, seq: k, claims.<doc_id>: absent},
   {$inc: {seq: 1}, $set: {claims.<doc_id>: {seq: k+1, at}}})`: the new number and the fact that
   it belongs to this document are written in the same atomic write. Racing requests re-read and
   try again, so each number is handed to exactly one document and the sequence never goes back.
3. The number is copied onto the document record (`seq: null` guard), then rendering happens.

A crash after (2) and before (3) leaves the claim on the counter: `resume()` (the service's sweep,
and any retry of the request) copies it onto the record, so the number is neither lost (no gap)
nor handed out again (no reuse). A crash after (1) and before (2) has spent no number; the sweep
continues the request. Claims stay on the counter for `claim_keep_seconds` after their number
reached the record (longer than any resume can lag behind), so a late resumer always sees an
existing claim instead of claiming a second number.

Files: DOCX and PDF bytes are stored in the database (collection `files`, `_id` = sha256,
BSON binary, content-addressed, so the same bytes are kept once). GridFS is not in FerretDB v1;
a document is far below the 16 MB BSON limit (`max_file_bytes` refuses anything near it). One
database keeps records and bytes together for backup and for every process of the suite.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pymongo
from bson import Binary
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

MAX_CLAIM_ATTEMPTS = 200
SUMMARY_FIELDS = ("_id", "dept", "addressees", "kind", "title", "subject_type", "subject_id", "number", "year", "seq", "status",
                  "sha256", "created_at", "rendered_at", "basis", "files", "pdf_error", "actor", "template")


def ensure_indexes(db: Database) -> None:
    db.documents.create_index([("subject_type", 1), ("subject_id", 1)], name="by_subject")
    db.documents.create_index([("dept", 1), ("created_at", -1)], name="by_dept")
    db.documents.create_index([("status", 1)], name="by_status")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class NumberingError(RuntimeError):
    """No number could be claimed (contention beyond MAX_CLAIM_ATTEMPTS)."""


class DocumentStore:
    def __init__(self, db: Database):
        self.db = db
        self.documents = db.documents
        self.counters = db.counters
        self.files = db.files

    # ---- records --------------------------------------------------------------------------
    def create(self, record: dict) -> tuple[dict, bool]:
        """Insert the record (status "numbering"); (existing record, False) if the id is taken."""
        try:
            self.documents.insert_one(record)
            return record, True
        except DuplicateKeyError:
            return self.documents.find_one({"_id": record["_id"]}), False

    def get(self, doc_id: str) -> dict | None:
        return self.documents.find_one({"_id": doc_id})

    def update(self, doc_id: str, changes: dict) -> None:
        self.documents.update_one({"_id": doc_id}, {"$set": changes})

    def page(self, query: dict, limit: int, offset: int) -> dict:
        total = self.documents.count_documents(query)
        items = list(self.documents.find(query, {k: 1 for k in SUMMARY_FIELDS})
                     .sort([("created_at", pymongo.DESCENDING), ("_id", pymongo.ASCENDING)]).skip(offset).limit(limit))
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def unfinished(self, older_than: datetime, limit: int = 100) -> list[dict]:
        """Records a crash or a failed conversion left behind, oldest first."""
        return list(self.documents.find({"status": {"$in": ["numbering", "numbered"]}, "created_at": {"$lt": older_than}})
                    .sort("created_at", pymongo.ASCENDING).limit(limit))

    # ---- numbers --------------------------------------------------------------------------
    def claim(self, counter: str, doc_id: str, now: datetime) -> int:
        """This document's number on `counter`: its existing claim, or a new one (compare-and-set)."""
        for _ in range(MAX_CLAIM_ATTEMPTS):
            current = self.counters.find_one({"_id": counter})
            if current is None:
                try:
                    self.counters.insert_one({"_id": counter, "seq": 0, "claims": {}})
                except DuplicateKeyError:
                    pass
                continue
            mine = (current.get("claims") or {}).get(doc_id)
            if mine is not None:
                return int(mine["seq"])
            seq = int(current.get("seq") or 0)
            won = self.counters.find_one_and_update(
                {"_id": counter, "seq": seq, f"claims.{doc_id}": {"$exists": False}},
                {"$inc": {"seq": 1}, "$set": {f"claims.{doc_id}": {"seq": seq + 1, "at": now}}},
                return_document=ReturnDocument.AFTER)
            if won is not None:
                return int(won["claims"][doc_id]["seq"])
        raise NumberingError(f"counter {counter}: no number after {MAX_CLAIM_ATTEMPTS} attempts")

    def assign(self, doc_id: str, seq: int, number: str, now: datetime) -> dict | None:
        """Copy a claimed number onto its record (only once); the record as it is afterwards."""
        self.documents.update_one({"_id": doc_id, "seq": None},
                                  {"$set": {"seq": seq, "number": number, "status": "numbered", "numbered_at": now}})
        return self.get(doc_id)

    def orphan_claims(self, limit: int = 100) -> list[tuple[str, str, int]]:
        """(counter, doc_id, seq) of claims whose record has no number yet."""
        out = []
        for counter in self.counters.find({}, {"claims": 1}):
            for doc_id, claim in (counter.get("claims") or {}).items():
                record = self.documents.find_one({"_id": doc_id}, {"seq": 1})
                if record is None or record.get("seq") is None:
                    out.append((counter["_id"], doc_id, int(claim["seq"])))
                    if len(out) >= limit:
                        return out
        return out

    def prune_claims(self, keep_after: datetime) -> int:
        """Drop claims older than `keep_after` whose number reached its record."""
        dropped = 0
        for counter in self.counters.find({}, {"claims": 1}):
            for doc_id, claim in (counter.get("claims") or {}).items():
                at = claim.get("at")
                if at is None or at >= keep_after:
                    continue
                record = self.documents.find_one({"_id": doc_id}, {"seq": 1})
                if record is not None and record.get("seq") == claim["seq"]:
                    self.counters.update_one({"_id": counter["_id"]}, {"$unset": {f"claims.{doc_id}": ""}})
                    dropped += 1
        return dropped

    def counter(self, counter: str) -> dict | None:
        return self.counters.find_one({"_id": counter})

    # ---- files ----------------------------------------------------------------------------
    def put_file(self, data: bytes, content_type: str) -> dict:
        digest = sha256(data)
        try:
            self.files.insert_one({"_id": digest, "content_type": content_type, "size": len(data), "data": Binary(data)})
        except DuplicateKeyError:
            pass  # the same bytes are already kept
        return {"sha256": digest, "size": len(data), "content_type": content_type}

    def get_file(self, digest: str) -> bytes | None:
        found = self.files.find_one({"_id": digest})
        return bytes(found["data"]) if found else None


def older(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
