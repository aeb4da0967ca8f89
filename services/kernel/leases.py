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


def acquire(col: Collection, key: str, *, seconds: float, wait_seconds: float, what: str) -> tuple[dict, str]:
    """Take the lease of `key` in `col` (creating its document): the document as it is now, and the
    lease token. Waits (backing off) while another holder's lease runs; ConcurrencyError after
    `wait_seconds`."""
    lease = uuid.uuid4().hex
    deadline, delay = time.monotonic() + wait_seconds, 0.002
    while True:
        now = time.time()
        try:
            doc = col.find_one_and_update(
                {"_id": key, "$or": [{"lease": None}, {"lease.until": {"$lt": now}}]},
                {"$set": {"lease": {"token": lease, "until": now + seconds}}},
                upsert=True, return_document=ReturnDocument.AFTER)
            return doc, lease
        except DuplicateKeyError:  # held by another (the upsert collided with its document)
            pass
        if time.monotonic() > deadline:
            raise ConcurrencyError(f"{what} lease of {key} held for over {wait_seconds:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
