"""A short lease on one document (FerretDB v1 has no transactions): who may carry out a multi-step
change of one key at a time (the case list's and the findings index's syncs). The lease sits in the
key's own document (`lease: {token, until}`); a crashed holder's lease expires after `seconds`."""
from __future__ import annotations

import time
import uuid

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.kernel.mongo import ConcurrencyError


def try_acquire(col: Collection, key: str, *, seconds: float, only_if: dict | None = None,
                also: dict | None = None, before: bool = False) -> tuple[dict | None, str] | None:
    """One attempt at the lease of `key` in `col` (creating its document), when no live lease holds it
    and its document matches `only_if`; `also` is set in the same write. The document as it is now (as
    it was, with `before`; None when it is new) and the lease token, or None when it is not to be had."""
    lease, now = uuid.uuid4().hex, time.time()
    try:
        doc = col.find_one_and_update(
            {"_id": key, "$or": [{"lease": None}, {"lease.until": {"$lt": now}}], **(only_if or {})},
            {"$set": {"lease": {"token": lease, "until": now + seconds}, **(also or {})}},
            upsert=True, return_document=ReturnDocument.BEFORE if before else ReturnDocument.AFTER)
    except DuplicateKeyError:  # held by another, or not as asked (the upsert collided with its document)
        return None
    return doc, lease


def acquire(col: Collection, key: str, *, seconds: float, wait_seconds: float, what: str) -> tuple[dict, str]:
    """Take the lease of `key` in `col` (creating its document): the document as it is now, and the
    lease token. Waits (backing off) while another holder's lease runs; ConcurrencyError after
    `wait_seconds`."""
    deadline, delay = time.monotonic() + wait_seconds, 0.002
    while True:
        taken = try_acquire(col, key, seconds=seconds)
        if taken is not None:
            return taken
        if time.monotonic() > deadline:
            raise ConcurrencyError(f"{what} lease of {key} held for over {wait_seconds:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
